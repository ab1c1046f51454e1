package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	"github.com/teragate/teragate/sdk/abi"
)

// Plugin states shown by the admin API.
const (
	StateActive      = "active"
	StateQuarantined = "quarantined"
	StateRejected    = "rejected" // no version serves: the only file seen was invalid
)

// Registry holds the loaded plugins. Create it with [New]; Close it when done.
type Registry struct {
	cfg         Config
	log         hclog.Logger
	obs         Observer
	cache       wazero.CompilationCache
	initTimeout time.Duration
	// noInstrument makes every version use wazero's termination checks (tests compare the paths).
	noInstrument bool

	mu      sync.Mutex
	plugins map[string]*plugin
	closed  bool // set by Close (guarded by mu): no new built-in retries
	// done is closed by Close: it ends the retries of built-ins that failed to build.
	done    chan struct{}
	retries sync.WaitGroup
	// kinds maps a filter kind to the plugin serving it, rebuilt on every change.
	kinds atomic.Pointer[map[directory.Kind]*plugin]
	// live counts what versions hold open ([Registry.Live]).
	live liveCounts
	// trim returns freed memory to the OS a while after versions closed (release.go).
	trim trimmer
}

// plugin is one plugin id: its serving version and its statistics across versions.
type plugin struct {
	r      *Registry
	id     string
	log    hclog.Logger
	cur    atomic.Pointer[version]
	loadMu sync.Mutex // serialises loads of this id

	calls, failures atomic.Uint64
	lat             latency
	// prev is the last version that served without being quarantined before the current one
	// replaced it: a quarantine rolls back to it. Guarded by loadMu.
	prev *source
	// gen counts the changes of cur (loads, reconfigurations, rollbacks, unloads): a retry of
	// the built-in stops once another change happened. Guarded by loadMu.
	gen uint64

	smu           sync.Mutex
	state         string
	lastError     string
	lastRejection string
	file          string
}

// New creates a registry. It loads nothing: call [Registry.LoadDir] or [Registry.Load].
func New(cfg Config) (*Registry, error) {
	r := &Registry{cfg: cfg, log: cfg.Logger, obs: cfg.Observer, plugins: map[string]*plugin{}, initTimeout: cfg.InitTimeout, done: make(chan struct{})}
	if r.log == nil {
		r.log = hclog.NewNullLogger()
	}
	if cfg.Router != nil {
		// RPC plugins are served on the router, and rpc_call goes through it.
		m := &rpcModules{r: r, router: cfg.Router, byID: map[string]string{}}
		user := cfg.OnChange
		r.cfg.OnChange = func(id string, info *Info) {
			m.changed(id, info)
			if user != nil {
				user(id, info)
			}
		}
		if r.cfg.Deps.RPC == nil {
			r.cfg.Deps.RPC = routerJSON{cfg.Router}
		}
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	if r.initTimeout <= 0 {
		r.initTimeout = DefaultInitTimeout
	}
	for id, s := range cfg.Settings {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("pluginhost: settings of %s: %w", id, err)
		}
	}
	c, err := newCache(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	r.cache = c
	empty := map[directory.Kind]*plugin{}
	r.kinds.Store(&empty)
	return r, nil
}

func newCache(dir string) (wazero.CompilationCache, error) {
	if dir == "" {
		return wazero.NewCompilationCache(), nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: compilation cache: %w", err)
	}
	return c, nil
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ValidID reports whether id can name a plugin: lower-case letters, digits, '_', '-' and '.',
// starting with a letter, at most 100 bytes ("filter.user", "rpc.sessions"). It is the one rule
// for plugin ids: the plugins directory (<id>.wasm), PUT/DELETE /api/plugins/{id} and the
// plugin_config keys all check it.
//
// It differs on purpose from the station role name rule (stations.ValidRoleName: 1 to 100 of
// A-Z a-z 0-9 '_' '-'): a plugin id is "<kind>.<name>", the dot is part of its syntax ("filter.user"
// serves user connections), and it is a metric label and a log scope, kept lower case; a role
// name is one flat name chosen by stations' configurations and carried in the station protocol,
// where upper case has been accepted from the start. Either rule narrowed to the other would
// refuse names that were valid until now.
func ValidID(id string) bool {
	if id == "" || len(id) > 100 || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (r *Registry) plugin(id string) *plugin {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.plugins[id]
	if p == nil {
		p = &plugin{r: r, id: id, log: r.log.Named("plugin." + id)}
		r.plugins[id] = p
	}
	return p
}

// LoadFile loads (or reloads) plugin id from a file. It returns nil without doing anything when
// the file has the serving version's bytes (unless that version is quarantined).
// The file is read as [Registry.Watch] reads it.
func (r *Registry) LoadFile(id, path string) error {
	return r.loadFile(context.Background(), id, filepath.Dir(path), filepath.Base(path))
}

// Load loads (or reloads) plugin id from its bytes; file is only reported.
func (r *Registry) Load(id string, wasm []byte) error { return r.load(id, "", wasm) }

func (r *Registry) load(id, file string, data []byte) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: bad plugin id %q", ErrInvalid, id)
	}
	p := r.plugin(id)
	p.loadMu.Lock()
	defer p.loadMu.Unlock()
	return r.loadLocked(p, file, data)
}

// loadLocked is load with p.loadMu held.
func (r *Registry) loadLocked(p *plugin, file string, data []byte) error {
	id := p.id
	hash := hashOf(data)
	if cur := p.cur.Load(); cur != nil && cur.hash == hash && !cur.quarantined.Load() {
		r.obs.PluginLoad(id, metrics.PluginUnchanged)
		return nil
	}
	start := time.Now()
	// A version replacing one that served calls is kept warm (calls are coming); any other
	// (at start, or a plugin nobody called yet) goes cold after validation.
	cur := p.cur.Load()
	v, err := r.build(p, file, hash, data, cur != nil && cur.called.Load())
	if err != nil {
		p.reject(file, err)
		return fmt.Errorf("%w: %s: %w", ErrInvalid, id, err)
	}
	old := p.cur.Swap(v)
	p.gen++
	if old != nil && !old.quarantined.Load() {
		p.prev = old.source()
	}
	p.smu.Lock()
	p.state, p.lastError, p.file = StateActive, "", file
	p.smu.Unlock()
	r.rebuildKinds()
	r.obs.PluginLoad(id, metrics.PluginLoaded)
	r.obs.PluginVersion(id, v.hash[:16], StateActive)
	what := "loaded"
	if old != nil {
		what = "reloaded"
		old.release()
	}
	p.log.Info("plugin "+what, "hash", v.hash[:16], "name", v.info.GetName(), "version", v.info.GetVersion(),
		"filter_kinds", v.filterKinds(), "rpc_module", v.info.GetRpcModule(), "pool", v.settings.PoolSize, "took", time.Since(start))
	if r.cfg.OnChange != nil {
		info := p.info()
		r.cfg.OnChange(id, &info)
	}
	return nil
}

func (p *plugin) reject(file string, err error) {
	p.smu.Lock()
	p.lastRejection = err.Error()
	if p.cur.Load() == nil {
		p.state, p.file = StateRejected, file
	}
	p.smu.Unlock()
	p.r.obs.PluginLoad(p.id, metrics.PluginRejected)
	p.log.Error("plugin file rejected; the serving version (if any) stays", "file", file, "error", err)
}

func (p *plugin) setState(state, lastErr string) {
	p.smu.Lock()
	p.state, p.lastError = state, lastErr
	p.smu.Unlock()
}

// build compiles, validates, initialises and pre-warms a version; unless warm, it then releases
// the version's code and instance until its first call ([version.goCold]). On error nothing is
// left open.
func (r *Registry) build(p *plugin, file, hash string, data []byte, warm bool) (_ *version, err error) {
	ctx := context.Background()
	r.mu.Lock()
	s := r.cfg.Settings[p.id]
	r.mu.Unlock()
	v := &version{p: p, hash: hash, file: file, data: data, loadedAt: time.Now()}
	defer func() {
		if err != nil {
			v.closeCode()
		}
	}()
	if err := r.compile(ctx, v, s); err != nil { // sets v.rt, v.cm and v.deadline (deadline.go)
		return nil, err
	}
	cm := v.cm
	exports := cm.ExportedFunctions()
	for _, name := range []string{abi.ExportABIVersion, abi.ExportBuffer, abi.ExportInit} {
		if _, ok := exports[name]; !ok {
			return nil, fmt.Errorf("missing export %s", name)
		}
	}
	_, v.hasFilter = exports[abi.ExportFilter]
	_, v.hasRPC = exports[abi.ExportRPC]
	if !v.hasFilter && !v.hasRPC {
		return nil, fmt.Errorf("exports neither %s nor %s", abi.ExportFilter, abi.ExportRPC)
	}
	if err := checkSignatures(exports); err != nil {
		return nil, err
	}
	for name, imp := range importsOf(cm) {
		if name != abi.ImportModule && name != wasi_snapshot_preview1.ModuleName && !v.guarded(name) {
			return nil, fmt.Errorf("imports module %q (%s)", name, imp)
		}
	}
	v.settings = s.withDefaults(v.hasFilter)
	v.pool = make(chan *instance, v.settings.PoolSize)
	v.initReq, _ = proto.Marshal(&pluginv1.InitRequest{PluginId: p.id, Config: v.settings.Config, AbiVersion: abi.Version})

	// The first instance validates: ABI version, then tg_init.
	ictx, cancel := context.WithTimeout(ctx, r.initTimeout)
	defer cancel()
	in, err := v.instantiate(ictx)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	ver, err := in.mod.ExportedFunction(abi.ExportABIVersion).Call(ictx)
	if err != nil {
		in.close()
		return nil, fmt.Errorf("%s: %w", abi.ExportABIVersion, classify(ictx, err))
	}
	if uint32(ver[0]) != abi.Version {
		in.close()
		return nil, fmt.Errorf("ABI version %d, this host speaks %d", uint32(ver[0]), abi.Version)
	}
	out, err := in.call(ictx, in.init, v.initReq)
	if err != nil {
		in.close()
		return nil, fmt.Errorf("tg_init: %w", err)
	}
	info := &pluginv1.InitResult{}
	if err := protoUnmarshal(out, info); err != nil {
		in.close()
		return nil, fmt.Errorf("%w: tg_init result: %v", ErrProtocol, err)
	}
	v.info = info
	for _, k := range info.GetFilterKinds() {
		if kk, ok := directory.ParseKind(k); !ok || kk == directory.KindService {
			in.close()
			return nil, fmt.Errorf("InitResult.filter_kinds: unknown kind %q", k)
		}
	}
	if (info.GetRpcModule() != "" || len(info.GetRpcMethods()) > 0) && !v.hasRPC {
		in.close()
		return nil, fmt.Errorf("declares RPC methods but does not export %s", abi.ExportRPC)
	}
	if m := info.GetRpcModule(); m != "" && r.cfg.Router != nil && r.cfg.Router.Reserved(m) {
		in.close()
		return nil, fmt.Errorf("InitResult.rpc_module %q is reserved: the gateway serves that module itself", m)
	}
	r.live.versions.Add(1)
	if err := v.prewarm(in); err != nil {
		v.close()
		return nil, fmt.Errorf("pre-warm: %w", err)
	}
	if !warm {
		v.goCold()
	}
	v.refs.Store(1)
	return v, nil
}

func memPages(s Settings) uint32 {
	if s.MemoryPages == 0 {
		return abi.DefaultMemoryPages
	}
	return s.MemoryPages
}

// checkSignatures verifies the exports' types, so a call never fails on a signature mismatch.
func checkSignatures(exports map[string]api.FunctionDefinition) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	want := map[string][2][]api.ValueType{
		abi.ExportABIVersion: {nil, {i32}},
		abi.ExportBuffer:     {{i32}, {i32}},
		abi.ExportInit:       {{i32}, {i64}},
		abi.ExportFilter:     {{i32}, {i64}},
		abi.ExportRPC:        {{i32}, {i64}},
		abi.ExportInitialize: {nil, nil},
	}
	for name, sig := range want {
		d, ok := exports[name]
		if !ok {
			continue
		}
		if !slices.Equal(d.ParamTypes(), sig[0]) || !slices.Equal(d.ResultTypes(), sig[1]) {
			return fmt.Errorf("export %s has the wrong signature", name)
		}
	}
	return nil
}

func importsOf(cm wazero.CompiledModule) map[string]string {
	out := map[string]string{}
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		out[mod] = name
	}
	return out
}

// Reconfigure replaces every plugin's settings (ids not in settings get the defaults) and
// rebuilds, from the same bytes, each serving plugin whose settings changed: the new version is
// validated and initialised with its new config before it is swapped in, as a reload. It returns
// the ids rebuilt; a plugin whose rebuild fails keeps serving its current version and its error is
// joined in the result.
func (r *Registry) Reconfigure(settings map[string]Settings) ([]string, error) {
	for id, s := range settings {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, id, err)
		}
	}
	r.mu.Lock()
	old := r.cfg.Settings
	r.cfg.Settings = settings
	ids := make([]string, 0, len(r.plugins))
	for id := range r.plugins {
		if !reflect.DeepEqual(old[id], settings[id]) {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	slices.Sort(ids)
	var rebuilt []string
	var errs []error
	for _, id := range ids {
		p := r.plugin(id)
		p.loadMu.Lock()
		cur := p.cur.Load()
		if cur == nil {
			p.loadMu.Unlock()
			continue
		}
		v, err := r.build(p, cur.file, cur.hash, cur.data, cur.called.Load())
		if err != nil {
			p.loadMu.Unlock()
			p.log.Error("new settings rejected; the plugin keeps its current settings", "error", err)
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrInvalid, id, err))
			continue
		}
		p.cur.Store(v)
		p.gen++
		p.smu.Lock()
		p.state, p.lastError = StateActive, ""
		p.smu.Unlock()
		p.loadMu.Unlock()
		r.rebuildKinds()
		r.obs.PluginLoad(id, metrics.PluginLoaded)
		r.obs.PluginVersion(id, v.hash[:16], StateActive)
		p.log.Info("plugin reconfigured", "hash", v.hash[:16], "pool", v.settings.PoolSize, "timeout", v.settings.Timeout)
		cur.release()
		if r.cfg.OnChange != nil {
			info := p.info()
			r.cfg.OnChange(id, &info)
		}
		rebuilt = append(rebuilt, id)
	}
	return rebuilt, errors.Join(errs...)
}

// source is where a version came from.
type source struct {
	file, hash string
	data       []byte
}

func (v *version) source() *source { return &source{file: v.file, hash: v.hash, data: v.data} }

// rollback (OnQuarantine [Rollback]) replaces bad, just quarantined, by the version it replaced
// (if that one was never quarantined) or else by the built-in of the id, so that a reload that
// passed validation but keeps failing on real traffic does not leave its clients failing closed.
// Without either, or if it fails to build, bad stays quarantined (calls fail closed) until a new
// file loads.
func (r *Registry) rollback(p *plugin, bad *version, cause error) {
	p.loadMu.Lock()
	defer p.loadMu.Unlock()
	if p.cur.Load() != bad {
		return // already replaced
	}
	to := p.prev
	if to == nil || to.hash == bad.hash {
		to = nil
		if b, ok := r.cfg.Builtin[p.id]; ok {
			if h := hashOf(b); h != bad.hash {
				to = &source{file: BuiltinFile, hash: h, data: b}
			}
		}
	}
	if to == nil {
		return
	}
	v, err := r.build(p, to.file, to.hash, to.data, bad.called.Load())
	if err != nil {
		p.log.Error("rollback failed; the quarantined version stays (calls fail closed)", "to", to.hash[:16], "error", err)
		return
	}
	p.cur.Store(v)
	p.gen++
	p.prev = nil
	msg := fmt.Sprintf("rolled back from %s (%s) after repeated failures: %v", bad.hash[:16], bad.file, cause)
	p.smu.Lock()
	p.state, p.lastError, p.file = StateActive, msg, to.file
	p.smu.Unlock()
	r.rebuildKinds()
	r.obs.PluginLoad(p.id, metrics.PluginRollback)
	r.obs.PluginVersion(p.id, v.hash[:16], StateActive)
	p.log.Warn("plugin rolled back", "from", bad.hash[:16], "to", v.hash[:16], "file", to.file)
	bad.release()
	if r.cfg.OnChange != nil {
		info := p.info()
		r.cfg.OnChange(p.id, &info)
	}
}

// Unload stops serving plugin id (its file was removed). In-flight calls finish first. It does
// not fall back to a built-in: the directory watcher loads that instead of unloading.
func (r *Registry) Unload(id string) {
	r.mu.Lock()
	p := r.plugins[id]
	r.mu.Unlock()
	if p == nil {
		return
	}
	p.loadMu.Lock()
	old := p.unloadLocked()
	p.loadMu.Unlock()
	r.unloaded(p, old)
}

// unloadLocked stops serving p's version, if any, and returns it (p.loadMu held). The caller
// finishes with [Registry.unloaded] once it released p.loadMu.
func (p *plugin) unloadLocked() *version {
	old := p.cur.Swap(nil)
	p.gen++
	p.prev = nil
	p.smu.Lock()
	p.state = ""
	p.smu.Unlock()
	return old
}

// unloaded reports the unload of old (nil: nothing was serving) and releases it.
func (r *Registry) unloaded(p *plugin, old *version) {
	id := p.id
	if old == nil {
		return
	}
	r.rebuildKinds()
	r.obs.PluginLoad(id, metrics.PluginUnloaded)
	r.obs.PluginVersion(id, "", "")
	p.log.Info("plugin unloaded", "hash", old.hash[:16])
	old.release()
	if r.cfg.OnChange != nil {
		r.cfg.OnChange(id, nil)
	}
}

// Close unloads every plugin. In-flight calls finish on their versions, which close after them.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.done)
	}
	r.mu.Unlock()
	r.retries.Wait()
	r.mu.Lock()
	ids := make([]string, 0, len(r.plugins))
	for id := range r.plugins {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.Unload(id)
	}
	r.stopTrim()
	return r.cache.Close(ctx)
}

// acquire pins the serving version of p, or returns nil when none is loaded.
func (p *plugin) acquire() *version {
	for {
		v := p.cur.Load()
		if v == nil || v.tryAcquire() {
			return v
		}
	}
}

func (p *plugin) observe(result string, d time.Duration, err error) {
	p.calls.Add(1)
	if err != nil {
		p.failures.Add(1)
		p.smu.Lock()
		p.lastError = err.Error()
		p.smu.Unlock()
		p.log.Warn("plugin call failed", "result", result, "error", err)
	}
	if result != metrics.PluginQuarantined {
		p.lat.add(d)
	}
	p.r.obs.PluginCall(p.id, result, d.Seconds())
}

func (v *version) filterKinds() []directory.Kind {
	var ks []directory.Kind
	if !v.hasFilter {
		return nil
	}
	if k, ok := strings.CutPrefix(v.p.id, "filter."); ok {
		if kk, ok := directory.ParseKind(k); ok && kk != directory.KindService {
			ks = append(ks, kk)
		}
	}
	for _, k := range v.info.GetFilterKinds() {
		if kk, ok := directory.ParseKind(k); ok && !slices.Contains(ks, kk) {
			ks = append(ks, kk)
		}
	}
	return ks
}

// rebuildKinds recomputes which plugin serves which filter kind: filter.<kind> first, then a
// plugin listing the kind in filter_kinds (the lowest id wins, for determinism).
func (r *Registry) rebuildKinds() {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[directory.Kind]*plugin{}
	ids := make([]string, 0, len(r.plugins))
	for id := range r.plugins {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := r.plugins[id]
		v := p.cur.Load()
		if v == nil {
			continue
		}
		for _, k := range v.filterKinds() {
			exact := id == "filter."+k.String()
			if cur, ok := m[k]; !ok || exact && cur.id != id {
				m[k] = p
			}
		}
	}
	r.kinds.Store(&m)
}

// BuiltinFile is the File an [Info] reports for a plugin served from [Config.Builtin].
const BuiltinFile = "(built-in)"

// Delays between the attempts to build a built-in that failed to build in LoadBuiltin.
const (
	builtinRetryFirst = 100 * time.Millisecond
	builtinRetryMax   = 5 * time.Second
)

// LoadBuiltin makes the built-in module of id serve id, if there is one; it reports whether there
// is. It is what a removed file (and, at start, a missing or rejected one) comes back to, so the
// version serving id before, quarantined or not, never keeps serving: when the built-in fails to
// build (its instantiation or tg_init missed the init deadline on a starved machine, say), that
// version is unloaded (a filter kind falls back to the native filter) and the built-in is retried
// in the background, with backoff, until it builds, another load or unload of id happens, or the
// registry closes. The error is the first build's.
func (r *Registry) LoadBuiltin(id string) (bool, error) {
	wasm, ok := r.cfg.Builtin[id]
	if !ok {
		return false, nil
	}
	if !ValidID(id) {
		return true, fmt.Errorf("%w: bad plugin id %q", ErrInvalid, id)
	}
	p := r.plugin(id)
	p.loadMu.Lock()
	err := r.loadLocked(p, BuiltinFile, wasm)
	if err == nil {
		p.loadMu.Unlock()
		return true, nil
	}
	var old *version
	if cur := p.cur.Load(); cur != nil && cur.hash != hashOf(wasm) {
		old = p.unloadLocked()
		p.smu.Lock()
		p.state, p.file = StateRejected, BuiltinFile // the admin API shows why nothing serves
		p.smu.Unlock()
	}
	gen := p.gen
	p.loadMu.Unlock()
	if old != nil {
		p.log.Warn("the built-in failed to build: the removed file's version stops serving until it builds", "hash", old.hash[:16], "error", err)
	}
	r.unloaded(p, old)
	r.mu.Lock()
	if !r.closed {
		r.retries.Add(1)
		go r.retryBuiltin(p, gen, wasm)
	}
	r.mu.Unlock()
	return true, err
}

// retryBuiltin builds the built-in wasm of p until it serves, p changes (gen) or r closes.
func (r *Registry) retryBuiltin(p *plugin, gen uint64, wasm []byte) {
	defer r.retries.Done()
	delay := builtinRetryFirst
	for attempt := 2; ; attempt++ {
		t := time.NewTimer(delay)
		select {
		case <-r.done:
			t.Stop()
			return
		case <-t.C:
		}
		p.loadMu.Lock()
		if p.gen != gen {
			p.loadMu.Unlock()
			return
		}
		err := r.loadLocked(p, BuiltinFile, wasm)
		p.loadMu.Unlock()
		if err == nil {
			p.log.Info("built-in restored", "attempt", attempt)
			return
		}
		delay = min(2*delay, builtinRetryMax)
	}
}

// LoadDir loads every <id>.wasm file of dir (an empty dir means none), then the built-ins whose
// id has no loaded file: a rejected file leaves its id to the built-in. Plugins compile in
// parallel, GOMAXPROCS at a time. Rejected files are logged and reported by [Registry.Infos];
// the error joins them.
func (r *Registry) LoadDir(dir string) error { return r.loadDir(context.Background(), dir) }

func (r *Registry) loadDir(ctx context.Context, dir string) error {
	_, err := r.loadDirFiles(ctx, dir)
	return err
}

// loadDirFiles is loadDir that also returns the bytes of each file that loaded, by id.
func (r *Registry) loadDirFiles(ctx context.Context, dir string) (map[string][]byte, error) {
	var files []string
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("pluginhost: %w", err)
		}
		for _, e := range ents {
			if _, ok := idOfFile(e.Name()); ok { // a directory named <id>.wasm is rejected with its reason
				files = append(files, e.Name())
			}
		}
	}
	var (
		mu     sync.Mutex
		errs   []error
		loaded = map[string]bool{}
		bytes  = map[string][]byte{}
	)
	parallel(len(files), func(i int) {
		id, _ := idOfFile(files[i])
		data, err := r.readLoad(ctx, id, dir, files[i])
		mu.Lock()
		loaded[id] = err == nil
		if err == nil {
			bytes[id] = data
		}
		errs = append(errs, err)
		mu.Unlock()
	})
	var ids []string
	for id := range r.cfg.Builtin {
		if !loaded[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	parallel(len(ids), func(i int) {
		if _, err := r.LoadBuiltin(ids[i]); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return bytes, errors.Join(errs...)
}

// parallel runs f(0)…f(n-1), GOMAXPROCS at a time, and waits for them.
func parallel(n int, f func(i int)) {
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

func idOfFile(name string) (string, bool) {
	id, ok := strings.CutSuffix(name, ".wasm")
	return id, ok && ValidID(id)
}

// Info describes one plugin for the admin API.
type Info struct {
	ID            string   `json:"id"`
	Kind          string   `json:"kind"` // "filter", "rpc" or "filter+rpc"
	File          string   `json:"file,omitempty"`
	Hash          string   `json:"version_hash,omitempty"`
	Name          string   `json:"name,omitempty"`
	Version       string   `json:"version,omitempty"`
	FilterKinds   []string `json:"filter_kinds,omitempty"`
	RPCModule     string   `json:"rpc_module,omitempty"`
	RPCMethods    []string `json:"rpc_methods,omitempty"`
	LoadedAt      string   `json:"loaded_at,omitempty"`
	State         string   `json:"state"`
	Calls         uint64   `json:"calls"`
	Failures      uint64   `json:"failures"`
	P50Micros     float64  `json:"p50_us"`
	P99Micros     float64  `json:"p99_us"`
	LastError     string   `json:"last_error,omitempty"`
	LastRejection string   `json:"last_rejection,omitempty"`
	PoolSize      int      `json:"pool_size,omitempty"`
	MemoryPages   uint32   `json:"memory_pages,omitempty"`
	TimeoutMillis float64  `json:"timeout_ms,omitempty"`
	// Deadline says how the per-call deadline is enforced: DeadlineInstrumented or DeadlineChecks.
	Deadline string `json:"deadline,omitempty"`
	// Cold: the version was validated but nobody has called it yet, so its code is not loaded
	// (the first call compiles it, from the on-disk compilation cache when it is there).
	Cold bool `json:"cold,omitempty"`
}

func (p *plugin) info() Info {
	p.smu.Lock()
	in := Info{ID: p.id, State: p.state, LastError: p.lastError, LastRejection: p.lastRejection, File: p.file}
	p.smu.Unlock()
	in.Calls, in.Failures = p.calls.Load(), p.failures.Load()
	in.P50Micros, in.P99Micros = p.lat.quantile(0.5), p.lat.quantile(0.99)
	if v := p.cur.Load(); v != nil {
		in.Hash, in.LoadedAt = v.hash, v.loadedAt.UTC().Format(time.RFC3339Nano)
		in.Name, in.Version = v.info.GetName(), v.info.GetVersion()
		for _, k := range v.filterKinds() {
			in.FilterKinds = append(in.FilterKinds, k.String())
		}
		in.RPCModule, in.RPCMethods = v.info.GetRpcModule(), v.info.GetRpcMethods()
		switch {
		case v.hasFilter && v.hasRPC:
			in.Kind = "filter+rpc"
		case v.hasFilter:
			in.Kind = "filter"
		default:
			in.Kind = "rpc"
		}
		in.PoolSize, in.MemoryPages = v.settings.PoolSize, v.settings.MemoryPages
		in.TimeoutMillis = float64(v.settings.Timeout) / 1e6
		in.Deadline = v.deadline
		in.Cold = v.cold.Load()
		if v.quarantined.Load() {
			in.State = StateQuarantined
		}
	}
	return in
}

// Infos lists every plugin seen (loaded, quarantined or rejected), sorted by id.
func (r *Registry) Infos() []Info {
	r.mu.Lock()
	ps := make([]*plugin, 0, len(r.plugins))
	for _, p := range r.plugins {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	out := make([]Info, 0, len(ps))
	for _, p := range ps {
		if in := p.info(); in.State != "" {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Info returns plugin id's description.
func (r *Registry) Info(id string) (Info, bool) {
	r.mu.Lock()
	p := r.plugins[id]
	r.mu.Unlock()
	if p == nil {
		return Info{}, false
	}
	in := p.info()
	return in, in.State != ""
}

// latency is a lock-free log-scale histogram of call durations (about 19% wide buckets).
type latency struct{ b [256]atomic.Uint64 }

func latBucket(ns uint64) int {
	if ns < 8 {
		return int(ns)
	}
	n := bits.Len64(ns) // ≥ 4
	frac := (ns >> (n - 3)) & 3
	return min(4*(n-2)+int(frac), 255)
}

func (l *latency) add(d time.Duration) { l.b[latBucket(uint64(max(d, 0)))].Add(1) }

// quantile returns the upper bound of the bucket holding quantile q, in microseconds.
func (l *latency) quantile(q float64) float64 {
	var counts [256]uint64
	var total uint64
	for i := range l.b {
		counts[i] = l.b[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= want {
			return float64(bucketUpper(i)) / 1e3
		}
	}
	return 0
}

func bucketUpper(i int) uint64 {
	if i < 8 {
		return uint64(i)
	}
	n := i/4 + 2
	frac := uint64(i % 4)
	return (4 + frac + 1) << (n - 3)
}

func protoUnmarshal(b []byte, m proto.Message) error { return proto.Unmarshal(b, m) }
