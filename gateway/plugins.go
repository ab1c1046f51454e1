package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/teragate/teragate/gateway/internal/api"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/pluginhost"
	"github.com/teragate/teragate/gateway/internal/rpc"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// PluginConfig is one plugin's entry in the config file's plugin_config map, keyed by plugin id
// ("filter.user", "rpc.sessions"). Zero values mean the defaults.
type PluginConfig struct {
	// Config is passed to the plugin's tg_init: a string as its bytes, any other value re-encoded
	// as JSON. Empty means no config.
	Config any `yaml:"config"`
	// Timeout is the per-call deadline. Default 500ms for filter plugins, 1s for RPC plugins.
	Timeout Duration `yaml:"timeout"`
	// MemoryPages caps each instance's memory in 64 KiB pages. Default 1024 (64 MiB).
	MemoryPages uint32 `yaml:"memory_pages"`
	// PoolSize is the number of warm instances. Default GOMAXPROCS+1.
	PoolSize int `yaml:"pool_size"`
	// MaxFailures consecutive failures quarantine the plugin. Default 5.
	MaxFailures int `yaml:"max_failures"`
	// PublishTopics are the topics the plugin may publish on (a trailing * matches any suffix).
	// Default websocket.*, module.TeraServer.UserManagerModule.events and .messages, service.*.
	PublishTopics []string `yaml:"publish_topics"`
	// OnQuarantine is fail_closed (the default: a filter that keeps failing delivers nothing
	// until a new file loads, so it never leaks what it exists to hide) or rollback (the version
	// it replaced, or else the built-in, serves again).
	OnQuarantine string `yaml:"on_quarantine"`
}

func (p PluginConfig) settings() (pluginhost.Settings, error) {
	s := pluginhost.Settings{Timeout: time.Duration(p.Timeout), MemoryPages: p.MemoryPages, PoolSize: p.PoolSize,
		MaxFailures: p.MaxFailures, PublishTopics: p.PublishTopics, OnQuarantine: p.OnQuarantine}
	if str, ok := p.Config.(string); ok {
		s.Config = []byte(str)
	} else if p.Config != nil {
		b, err := json.Marshal(p.Config)
		if err != nil {
			return s, err
		}
		s.Config = b
	}
	return s, s.Validate()
}

// pluginParts are the plugin registry and the RPC modules its plugins declared.
type pluginParts struct {
	reg     *pluginhost.Registry
	mu      sync.Mutex
	modules map[string]string // plugin id → registered RPC module
	ready   chan struct{}
}

// initPlugins creates the plugin registry when a plugin directory is configured, loads it, puts
// the plugin filters (with the native table as fallback) in the router and mounts
// GET /api/plugins.
func (g *Gateway) initPlugins() error {
	g.api.Handle("GET /api/plugins", "plugins", g.handlePlugins)
	builtins := g.cfg.Builtins
	if g.cfg.BuiltinPlugins != nil && !*g.cfg.BuiltinPlugins {
		builtins = nil
	}
	if g.cfg.Plugins == "" && len(builtins) == 0 {
		return nil
	}
	settings := map[string]pluginhost.Settings{}
	for id, pc := range g.cfg.PluginConfig {
		s, err := pc.settings()
		if err != nil {
			return fmt.Errorf("%w: plugin_config.%s: %v", ErrInvalidConfig, id, err)
		}
		settings[id] = s
	}
	pp := &pluginParts{modules: map[string]string{}, ready: make(chan struct{})}
	reg, err := pluginhost.New(pluginhost.Config{
		CacheDir: filepath.Join(g.cfg.DataDir, "wasm-cache"),
		Settings: settings,
		Deps:     pluginhost.Deps{Directory: g.dir, Presence: g.pres, Publisher: g.bus, RPC: rpcJSON{g.rpc.router}},
		Observer: g.metrics,
		Logger:   g.log.Named("pluginhost"),
		OnChange: g.pluginChanged,
		Builtin:  builtins,
	})
	if err != nil {
		return err
	}
	pp.reg = reg
	g.plugins = pp
	if g.cfg.Plugins == "" { // built-ins only; a plugin directory is loaded once, by its watcher, at Start
		if err := reg.LoadDir(""); err != nil {
			g.log.Warn("some built-in plugins were rejected", "error", err)
		}
	}
	native := &filter.Native{Sessions: g.pres}
	for _, k := range []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice} {
		g.router.SetFilter(k, reg.Filter(k, native, g.pres))
	}
	return nil
}

// startPlugins loads the plugin directory and follows it until the gateway stops; it returns once
// the directory is loaded (every read is bounded in size and time).
func (g *Gateway) startPlugins(ctx context.Context) {
	if g.plugins == nil {
		return
	}
	if g.cfg.Plugins == "" {
		close(g.plugins.ready) // built-ins only, loaded by initPlugins
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := g.plugins.reg.Watch(ctx, g.cfg.Plugins, func() { close(g.plugins.ready) })
		if err != nil && ctx.Err() == nil {
			g.log.Error("plugin directory watch stopped", "error", err)
		}
	}()
	<-g.plugins.ready
}

func (g *Gateway) stopPlugins(ctx context.Context) error {
	if g.plugins == nil {
		return nil
	}
	return g.plugins.reg.Close(ctx)
}

// pluginChanged keeps the RPC router in step with the RPC plugins: a plugin's module serves
// exactly the methods of its serving version.
func (g *Gateway) pluginChanged(id string, info *pluginhost.Info) {
	pp := g.plugins
	if pp == nil {
		return
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	old := pp.modules[id]
	mod := ""
	if info != nil {
		mod = info.RPCModule
	}
	if old != "" && old != mod {
		g.rpc.router.Unregister(old)
		delete(pp.modules, id)
	}
	if mod == "" {
		return
	}
	methods := rpc.Methods{}
	for _, name := range info.RPCMethods {
		methods[name] = g.pluginMethod(id, name)
	}
	if err := g.rpc.router.Replace(mod, methods); err != nil {
		g.log.Error("could not register a plugin's RPC module", "plugin", id, "module", mod, "error", err)
		return
	}
	pp.modules[id] = mod
}

// pluginMethod serves one RPC plugin method: the arguments cross as a JSON array, the return
// value as JSON text.
func (g *Gateway) pluginMethod(id, method string) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, args rpc.Args) (any, error) {
		aj, err := json.Marshal(args.Decode())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", rpc.ErrBadArgs, err)
		}
		call := &pluginv1.RPCCall{ArgsJson: aj}
		if c, ok := rpc.CallerFrom(ctx); ok {
			call.Caller = &pluginv1.Subject{Kind: c.Kind.String(), Uuid: c.UUID}
			call.CallerAdmin = c.Admin
		}
		out, err := g.plugins.reg.CallRPC(ctx, id, method, call)
		if err != nil {
			return nil, err
		}
		py, err := rpc.PythonJSON(out)
		if err != nil {
			return nil, fmt.Errorf("plugin %s returned invalid JSON: %w", id, err)
		}
		return rpc.RawJSON(py), nil
	})
}

// rpcJSON adapts the RPC router to the plugins' rpc_call import (JSON in, JSON out).
type rpcJSON struct{ r *rpc.Router }

func (a rpcJSON) CallJSON(ctx context.Context, module, method string, argsJSON []byte) ([]byte, error) {
	var raw []json.RawMessage
	if len(argsJSON) > 0 {
		if err := json.Unmarshal(argsJSON, &raw); err != nil {
			return nil, fmt.Errorf("%w: args must be a JSON array: %v", rpc.ErrBadArgs, err)
		}
	}
	args := make(rpc.Args, 0, len(raw))
	for _, r := range raw {
		v, err := rpc.JSONArg(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", rpc.ErrBadArgs, err)
		}
		args = append(args, v)
	}
	v, err := a.r.Call(ctx, module, method, args)
	if err != nil {
		return nil, err
	}
	return rpc.AppendJSON(nil, v)
}

// handlePlugins serves GET /api/plugins to admin principals (superadmin users, admin services).
func (g *Gateway) handlePlugins(w http.ResponseWriter, r *http.Request) {
	p, err := g.api.Authenticate(r)
	if err != nil {
		api.WriteError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if !p.Admin {
		api.WriteError(w, http.StatusForbidden, "Forbidden: admin only")
		return
	}
	out := struct {
		Dir     string            `json:"dir"`
		Plugins []pluginhost.Info `json:"plugins"`
	}{Dir: g.cfg.Plugins, Plugins: []pluginhost.Info{}}
	if g.plugins != nil {
		out.Plugins = g.plugins.reg.Infos()
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// PluginsReady returns a channel closed once the plugin directory and the built-ins are loaded
// and the directory is watched (nil without plugins).
func (g *Gateway) PluginsReady() <-chan struct{} {
	if g.plugins == nil {
		return nil
	}
	return g.plugins.ready
}

// PluginStatus is one plugin as the startup banner shows it.
type PluginStatus struct {
	// ID is the plugin id ("filter.user").
	ID string
	// File is the plugin's file, or "(built-in)".
	File string
	// State is "active", "quarantined" or "rejected".
	State string
	// Error is the last rejection or error, if any.
	Error string
}

// Plugins lists the plugins seen so far (loaded, quarantined or rejected), sorted by id.
func (g *Gateway) Plugins() []PluginStatus {
	if g.plugins == nil {
		return nil
	}
	var out []PluginStatus
	for _, in := range g.plugins.reg.Infos() {
		e := in.LastError
		if e == "" {
			e = in.LastRejection
		}
		out = append(out, PluginStatus{ID: in.ID, File: in.File, State: in.State, Error: e})
	}
	return out
}
