package station

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/internal/atomicfile"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
	"github.com/teragate/teragate/sdk/abi"
)

// Errors of role plugin calls.
var (
	// ErrFetch: the plugin could not be fetched from the manager or did not match its hash.
	ErrFetch = errors.New("station: role plugin fetch failed")
	// ErrPlugin: the plugin is not a valid role plugin (compile, exports, ABI version, init).
	ErrPlugin = errors.New("station: invalid role plugin")
	// ErrCall: a call into a role instance failed (trap, timeout, error result).
	ErrCall = errors.New("station: role call failed")
)

// module is a compiled role plugin and the facts it declared.
type module struct {
	script string
	cm     wazero.CompiledModule
	info   *pluginv1.RoleInfo
}

// instance is one running role uuid: its own Wasm instance.
type instance struct {
	role, uuid, script string
	options            []byte
	mod                api.Module
	mem                api.Memory
	fns                map[string]api.Function
	state              string
	failures           int
	retryAt            time.Time
	exits              []*pluginv1.ProgramExit
	procs              map[string]*os.Process
	status             string
}

func key(role, uuid string) string { return role + "/" + uuid }

// newRuntime builds the wazero runtime roles run in: compiled, with the on-disk compilation
// cache, a memory limit and guests stopped at their call's deadline.
func newRuntime(ctx context.Context, cfg Config, logf func(level int32, msg string)) (wazero.Runtime, error) {
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithMemoryLimitPages(cfg.MemoryPages)
	dir := cfg.CacheDir
	if dir == "" {
		dir = filepath.Join(cfg.StateDir, "wasm-cache")
	}
	if cache, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	denied := func(_ context.Context, _ api.Module, stack []uint64) { stack[0] = api.EncodeI32(abi.HostErrDenied) }
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, stack []uint64) {
		level, ptr, n := api.DecodeI32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
		if n > 64<<10 {
			n = 64 << 10
		}
		if b, ok := m.Memory().Read(ptr, n); ok {
			logf(level, string(b))
		}
	}), []api.ValueType{i32, i32, i32}, nil).Export(abi.ImportLog).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(denied), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportDirectory).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(denied), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportPresence).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(denied), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export(abi.ImportPublish).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(denied), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export(abi.ImportRPCCall).
		Instantiate(ctx)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	return rt, nil
}

// fetch returns the bytes of the plugin with hash script ("sha256:<hex>"): from the disk cache,
// or from the manager (then cached). Both are verified against the hash.
func (a *Agent) fetch(ctx context.Context, script string) ([]byte, error) {
	h, ok := strings.CutPrefix(script, "sha256:")
	if !ok || len(h) != 64 {
		return nil, fmt.Errorf("%w: bad script hash %q", ErrFetch, script)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return nil, fmt.Errorf("%w: bad script hash %q", ErrFetch, script)
	}
	verify := func(b []byte) bool { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) == h }
	cached := filepath.Join(a.cfg.StateDir, "roles", h+".wasm")
	if b, err := os.ReadFile(cached); err == nil && verify(b) {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.URL+"/api/stations/roles/"+h, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	req.Header.Set("Authorization", "OpenTera "+a.cfg.Token)
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: %s", ErrFetch, h, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	if !verify(b) {
		return nil, fmt.Errorf("%w: the bytes served for %s do not match the hash", ErrFetch, h)
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o700); err == nil {
		if err := atomicfile.Write(cached, b, 0o600); err != nil {
			a.log.Warn("caching role plugin", "script", script, "error", err)
		}
	}
	return b, nil
}

// load returns the compiled module of script, fetching, compiling and reading its RoleInfo on
// first use. a.mu is held.
func (a *Agent) load(ctx context.Context, script string) (*module, error) {
	if m := a.modules[script]; m != nil {
		return m, nil
	}
	b, err := a.fetch(ctx, script)
	if err != nil {
		return nil, err
	}
	cm, err := a.rt.CompileModule(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("%w: compile: %w", ErrPlugin, err)
	}
	exp := cm.ExportedFunctions()
	for _, name := range abi.RoleExports() {
		if _, ok := exp[name]; !ok {
			_ = cm.Close(ctx)
			return nil, fmt.Errorf("%w: missing export %s", ErrPlugin, name)
		}
	}
	m := &module{script: script, cm: cm}
	in, err := a.instantiate(ctx, m, "", "")
	if err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	res, err := a.call(ctx, in, abi.ExportRoleInfo, nil)
	_ = in.mod.Close(ctx)
	if err != nil {
		_ = cm.Close(ctx)
		return nil, fmt.Errorf("%w: %w", ErrPlugin, err)
	}
	m.info = &pluginv1.RoleInfo{}
	if err := proto.Unmarshal(res, m.info); err != nil {
		_ = cm.Close(ctx)
		return nil, fmt.Errorf("%w: RoleInfo: %w", ErrPlugin, err)
	}
	a.modules[script] = m
	return m, nil
}

// instantiate creates an instance of m, checks its ABI version and runs tg_init.
func (a *Agent) instantiate(ctx context.Context, m *module, role, uuid string) (*instance, error) {
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	defer cancel()
	mod, err := a.rt.InstantiateModule(cctx, m.cm, wazero.NewModuleConfig().WithName("").
		WithStartFunctions(abi.ExportInitialize).WithStdout(io.Discard).WithStderr(io.Discard))
	if err != nil {
		return nil, fmt.Errorf("%w: instantiate: %w", ErrPlugin, err)
	}
	in := &instance{role: role, uuid: uuid, script: m.script, mod: mod, mem: mod.Memory(), fns: map[string]api.Function{},
		procs: map[string]*os.Process{}}
	for _, name := range append(abi.RoleExports(), abi.ExportRoleOffer) {
		if f := mod.ExportedFunction(name); f != nil {
			in.fns[name] = f
		}
	}
	if in.mem == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("%w: no memory export", ErrPlugin)
	}
	v, err := in.fns[abi.ExportABIVersion].Call(cctx)
	if err != nil || len(v) != 1 || api.DecodeI32(v[0]) != abi.Version {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("%w: tg_abi_version is not %d", ErrPlugin, abi.Version)
	}
	req, _ := proto.Marshal(&pluginv1.InitRequest{PluginId: "role." + m.script, AbiVersion: abi.Version})
	if _, err := a.call(ctx, in, abi.ExportInit, req); err != nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("%w: tg_init: %w", ErrPlugin, err)
	}
	return in, nil
}

// call writes req into the instance's buffer, calls export under the call deadline and returns
// a copy of the result. Any error means the instance must be discarded.
func (a *Agent) call(ctx context.Context, in *instance, export string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	defer cancel()
	if len(req) > abi.MaxResult {
		return nil, fmt.Errorf("%w: request too large", ErrCall)
	}
	r, err := in.fns[abi.ExportBuffer].Call(ctx, uint64(len(req)))
	if err != nil {
		return nil, classify(ctx, err)
	}
	if !in.mem.Write(uint32(r[0]), req) {
		return nil, fmt.Errorf("%w: tg_buffer returned a pointer outside memory", ErrCall)
	}
	r, err = in.fns[export].Call(ctx, uint64(len(req)))
	if err != nil {
		return nil, classify(ctx, err)
	}
	ptr, n, failed := abi.Unpack(r[0])
	if n > abi.MaxResult {
		return nil, fmt.Errorf("%w: result of %d bytes", ErrCall, n)
	}
	out, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%w: result outside memory", ErrCall)
	}
	if failed {
		if len(out) > 1024 {
			out = out[:1024]
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrCall, export, string(out))
	}
	return bytes.Clone(out), nil
}

func classify(ctx context.Context, err error) error {
	var ee *sys.ExitError
	if ctx.Err() != nil || errors.As(err, &ee) && (ee.ExitCode() == sys.ExitCodeDeadlineExceeded || ee.ExitCode() == sys.ExitCodeContextCanceled) {
		return fmt.Errorf("%w: deadline exceeded", ErrCall)
	}
	return fmt.Errorf("%w: trap: %w", ErrCall, err)
}

// lifecycle calls a lifecycle export of in and handles its RoleResult (status, programs).
// On failure the instance is closed and marked failed for a restart with backoff. a.mu is held.
func (a *Agent) lifecycle(ctx context.Context, in *instance, export string) error {
	_, err := a.roleCall(ctx, in, export, nil)
	return err
}

// roleCall is lifecycle with the RoleCall adjusted by with (a job offer) and the result returned.
func (a *Agent) roleCall(ctx context.Context, in *instance, export string, with func(*pluginv1.RoleCall)) (*pluginv1.RoleResult, error) {
	rc := &pluginv1.RoleCall{Role: in.role, Uuid: in.uuid, Options: in.options, NowMs: time.Now().UnixMilli()}
	if export == abi.ExportRoleTick {
		rc.Exits, in.exits = in.exits, nil
	}
	if with != nil {
		with(rc)
	}
	req, _ := proto.Marshal(rc)
	out, err := a.call(ctx, in, export, req)
	if err != nil {
		a.fail(ctx, in, err)
		return nil, err
	}
	var res pluginv1.RoleResult
	if err := proto.Unmarshal(out, &res); err != nil {
		err = fmt.Errorf("%w: RoleResult: %w", ErrCall, err)
		a.fail(ctx, in, err)
		return nil, err
	}
	if res.HasStatus && len(res.Status) > MaxStatusBytes {
		// The manager treats a larger status as an invalid frame: report the problem instead.
		a.log.Warn("role status too large; reporting an error status instead", "role", in.role, "uuid", in.uuid,
			"bytes", len(res.Status), "limit", MaxStatusBytes)
		res.Status = fmt.Sprintf(`{"error":"status too large","bytes":%d,"limit":%d}`, len(res.Status), MaxStatusBytes)
	}
	if res.HasStatus && res.Status != in.status {
		in.status = res.Status
		a.sendAsync(&stationv1.StationMessage{Body: &stationv1.StationMessage_Status{Status: &stationv1.RoleStatus{
			Role: in.role, Uuid: in.uuid, Status: res.Status, Timestamp: time.Now().UnixMilli()}}})
	}
	for _, r := range res.Run {
		a.runProgram(in, r)
	}
	return &res, nil
}

// offer asks the running instances of the offer's role in turn (by uuid) until one accepts.
func (a *Agent) offer(ctx context.Context, o *stationv1.JobOffer) *stationv1.JobOfferReply {
	a.mu.Lock()
	defer a.mu.Unlock()
	asked := 0
	for _, k := range slices.Sorted(maps.Keys(a.instances)) {
		x := a.instances[k]
		if x.role != o.Role || x.mod == nil || x.fns[abi.ExportRoleOffer] == nil {
			continue
		}
		asked++
		res, err := a.roleCall(ctx, x, abi.ExportRoleOffer, func(rc *pluginv1.RoleCall) {
			rc.Job, rc.JobConfig = o.Job, []byte(o.Config)
		})
		if err == nil && res.Accepted {
			a.log.Info("job accepted", "role", x.role, "uuid", x.uuid, "job", o.Job)
			return &stationv1.JobOfferReply{Accepted: true, Uuid: x.uuid}
		}
	}
	if asked == 0 {
		return &stationv1.JobOfferReply{Reason: "no running instance of role " + o.Role + " takes offers"}
	}
	return &stationv1.JobOfferReply{Reason: "declined"}
}

// fail discards in's Wasm instance after a failed call; the tick loop starts it again after a
// backoff (1 s doubling to 1 min).
func (a *Agent) fail(ctx context.Context, in *instance, err error) {
	a.log.Warn("role instance failed", "role", in.role, "uuid", in.uuid, "error", err)
	if in.mod != nil {
		_ = in.mod.Close(ctx)
		in.mod = nil
	}
	in.failures++
	in.state = "failed: " + err.Error()
	in.retryAt = time.Now().Add(min(time.Second<<min(in.failures-1, 6), time.Minute))
}

// start creates and starts an instance of role/uuid. a.mu is held. A start that fails leaves a
// failed instance, restarted later.
func (a *Agent) start(ctx context.Context, role, uuid string, in Instance) *instance {
	opts := []byte(in.Options)
	if len(opts) == 0 {
		opts = []byte("{}")
	}
	x := &instance{role: role, uuid: uuid, script: in.Script, options: opts, procs: map[string]*os.Process{}}
	a.instances[key(role, uuid)] = x
	a.boot(ctx, x)
	return x
}

// boot instantiates x's plugin and calls tg_role_start. a.mu is held.
func (a *Agent) boot(ctx context.Context, x *instance) {
	m, err := a.load(ctx, x.script)
	if err != nil {
		a.fail(ctx, x, err)
		return
	}
	in, err := a.instantiate(ctx, m, x.role, x.uuid)
	if err != nil {
		a.fail(ctx, x, err)
		return
	}
	x.mod, x.mem, x.fns = in.mod, in.mem, in.fns
	x.state = "running"
	if a.lifecycle(ctx, x, abi.ExportRoleStart) == nil {
		x.failures = 0
	}
}

// stop calls tg_role_stop on x (errors are logged), kills its programs and closes it. a.mu is
// held.
func (a *Agent) stop(ctx context.Context, x *instance) {
	if x.mod != nil {
		_ = a.lifecycle(ctx, x, abi.ExportRoleStop)
		if x.mod != nil {
			_ = x.mod.Close(ctx)
			x.mod = nil
		}
	}
	for _, p := range x.procs {
		_ = p.Kill()
	}
	delete(a.instances, key(x.role, x.uuid))
}

// configError is a refused configuration.
type configError struct {
	code  stationv1.ErrorCode
	msg   string
	roles []string
}

func (e *configError) Error() string { return e.code.String() + ": " + e.msg }

// validate checks roles in the reference's order, loading the plugins it needs. a.mu is held.
func (a *Agent) validate(ctx context.Context, roles Roles) *configError {
	names := slices.Sorted(maps.Keys(roles))
	var blocked []string
	for _, r := range names {
		if slices.Contains(a.cfg.BlockedRoles, r) {
			blocked = append(blocked, r)
		}
	}
	if len(blocked) > 0 {
		return &configError{stationv1.ErrorCode_ROLE_BLOCKED,
			"Invalid config received. See logs for more information. Blocked roles: " + strings.Join(blocked, ", "), blocked}
	}
	var missing, why []string
	mods := map[string]*module{}
	for _, r := range names {
		script := ""
		for _, in := range roles[r] {
			if in.Script != "" && script != "" && in.Script != script {
				missing, why = append(missing, r), append(why, r+" (uuids name different plugins)")
				script = ""
				break
			}
			script = in.Script
		}
		if len(roles[r]) == 0 {
			continue
		}
		if script == "" {
			if !slices.Contains(missing, r) {
				missing, why = append(missing, r), append(why, r+" (the manager has no plugin for it)")
			}
			continue
		}
		m, err := a.load(ctx, script)
		if err != nil {
			missing, why = append(missing, r), append(why, r+" ("+err.Error()+")")
			continue
		}
		if m.info.GetName() != r {
			missing, why = append(missing, r), append(why, r+" (its plugin implements role "+m.info.GetName()+")")
			continue
		}
		mods[r] = m
	}
	if len(missing) > 0 {
		return &configError{stationv1.ErrorCode_MISSING_ROLE_FACTORY,
			"Invalid config received. Missing role factories: " + strings.Join(why, "; "), missing}
	}
	var bad, badWhy []string
	for _, r := range names {
		if m := mods[r]; m != nil && m.info.GetInstances() > 0 && len(roles[r]) > int(m.info.GetInstances()) {
			bad, badWhy = append(bad, r), append(badWhy, fmt.Sprintf("Role{%s} -> too many uuids: %d uuids > max %d instances",
				r, len(roles[r]), m.info.GetInstances()))
			continue
		}
		for _, uuid := range slices.Sorted(maps.Keys(roles[r])) {
			if o := roles[r][uuid].Options; len(o) > 0 {
				var obj map[string]any
				if json.Unmarshal(o, &obj) != nil {
					bad, badWhy = append(bad, r), append(badWhy, fmt.Sprintf("Role{%s} -> options of %s are not a JSON object", r, uuid))
					break
				}
			}
		}
	}
	if len(bad) > 0 {
		return &configError{stationv1.ErrorCode_INVALID_CONFIGURATION, strings.Join(badWhy, "; "), bad}
	}
	return nil
}

// apply validates roles and applies them per uuid. a.mu is held.
func (a *Agent) apply(ctx context.Context, roles Roles) *configError {
	if err := a.validate(ctx, roles); err != nil {
		return err
	}
	for k, x := range a.instances {
		role, uuid, _ := strings.Cut(k, "/")
		if _, ok := roles[role][uuid]; !ok {
			a.log.Info("stopping role instance", "role", role, "uuid", uuid)
			a.stop(ctx, x)
		}
	}
	for _, role := range slices.Sorted(maps.Keys(roles)) {
		for _, uuid := range slices.Sorted(maps.Keys(roles[role])) {
			in := roles[role][uuid]
			opts := []byte(in.Options)
			if len(opts) == 0 {
				opts = []byte("{}")
			}
			x := a.instances[key(role, uuid)]
			switch {
			case x == nil:
				a.log.Info("starting role instance", "role", role, "uuid", uuid, "script", in.Script)
				a.start(ctx, role, uuid, in)
			case x.script != in.Script:
				t0 := time.Now()
				a.stop(ctx, x)
				y := a.start(ctx, role, uuid, in)
				d := time.Since(t0)
				a.stats.Swaps++
				a.stats.LastSwap = d
				a.log.Info("role instance swapped to a new plugin", "role", role, "uuid", uuid, "from", x.script, "to", in.Script,
					"state", y.state, "took", d)
			case !bytes.Equal(x.options, opts):
				x.options = opts
				if x.mod != nil {
					_ = a.lifecycle(ctx, x, abi.ExportRoleUpdate)
				}
			}
		}
	}
	a.applied = roles.Clone()
	a.stats.Updates++
	if err := a.saveApplied(); err != nil {
		a.log.Error("saving the applied role config", "error", err)
	}
	return nil
}

// running lists the instances. a.mu is held.
func (a *Agent) running() []*stationv1.RunningRole {
	out := make([]*stationv1.RunningRole, 0, len(a.instances))
	for _, k := range slices.Sorted(maps.Keys(a.instances)) {
		x := a.instances[k]
		out = append(out, &stationv1.RunningRole{Role: x.role, Uuid: x.uuid, Script: x.script, State: x.state})
	}
	return out
}

// tick calls tg_role_tick on every running instance and restarts failed ones whose backoff
// has passed.
func (a *Agent) tick(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	changed := false
	for _, k := range slices.Sorted(maps.Keys(a.instances)) {
		x := a.instances[k]
		if x.mod == nil {
			if time.Now().After(x.retryAt) {
				a.stats.Restarts++
				a.boot(ctx, x)
				changed = true
			}
			continue
		}
		if a.lifecycle(ctx, x, abi.ExportRoleTick) != nil {
			changed = true
		}
	}
	if changed {
		a.sendAsync(&stationv1.StationMessage{Body: &stationv1.StationMessage_Running{Running: &stationv1.Running{Roles: a.running()}}})
	}
}

func (a *Agent) saveApplied() error {
	b, err := json.Marshal(a.applied) // options byte for byte as pushed
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(a.cfg.StateDir, "roles.json"), b, 0o600)
}
