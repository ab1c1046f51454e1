package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	"github.com/teragate/teragate/sdk/abi"
)

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

func protoUnmarshal(b []byte, m proto.Message) error { return proto.Unmarshal(b, m) }
