package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/teragate/teragate/gateway/internal/api"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/modsync"
	"github.com/teragate/teragate/gateway/internal/pluginhost"
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
	// PoolSize bounds the plugin's instances: one is made at load, more as concurrent calls need
	// them (then kept). Default GOMAXPROCS+1.
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

// pluginParts are the plugin registry and its readiness.
type pluginParts struct {
	reg   *pluginhost.Registry
	ready chan struct{}
	store *modsync.Store // shares the plugins through Redis; nil on a single node
}

// initPlugins creates the plugin registry when a plugin directory is configured, loads it, puts
// the plugin filters (with the native table as fallback) in the router and mounts
// GET /api/plugins.
func (g *Gateway) initPlugins() error {
	g.api.Handle("GET /api/plugins", "plugins", api.AdminOnly(g.api.Authenticate, g.handlePlugins))
	g.api.Handle("PUT /api/plugins/{id}", "plugins_put", api.AdminOnly(g.api.Authenticate, g.handlePutPlugin))
	g.api.Handle("DELETE /api/plugins/{id}", "plugins_delete", api.AdminOnly(g.api.Authenticate, g.handleDeletePlugin))
	builtins := g.cfg.Builtins
	if g.cfg.BuiltinPlugins != nil && !*g.cfg.BuiltinPlugins {
		builtins = nil
	}
	if g.cfg.Plugins == "" && len(builtins) == 0 {
		return nil
	}
	var err error
	settings := map[string]pluginhost.Settings{}
	for id, pc := range g.cfg.PluginConfig {
		s, err := pc.settings()
		if err != nil {
			return fmt.Errorf("%w: plugin_config.%s: %v", ErrInvalidConfig, id, err)
		}
		settings[id] = s
	}
	pp := &pluginParts{ready: make(chan struct{})}
	hc := pluginhost.Config{
		CacheDir: filepath.Join(g.cfg.DataDir, "wasm-cache"),
		Settings: settings,
		Deps:     pluginhost.Deps{Directory: g.dir, Presence: g.pres, Publisher: g.bus},
		Router:   g.rpc.router,
		Observer: g.metrics,
		Logger:   g.log.Named("pluginhost"),
		Builtin:  builtins,
		// A reload frees the old version's code and garbage: hand it back to the OS.
		TrimAfterRelease: true,
	}
	// With Redis, the plugins are the cluster's: see modules.go.
	if pp.store, err = g.newModuleSync("plugins", pluginTarget{pp}); err != nil {
		return err
	}
	if pp.store != nil {
		hc.Share = sharer{g: g, kind: "plugins", store: func() *modsync.Store { return pp.store }}
	}
	reg, err := pluginhost.New(hc)
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
func (g *Gateway) startPlugins(ctx context.Context) error {
	if g.plugins == nil {
		return nil
	}
	if g.cfg.Plugins == "" {
		// Built-ins only, loaded by initPlugins; with Redis, then the cluster's plugins.
		g.startModuleSync(ctx, "plugins", g.plugins.store, nil)
		close(g.plugins.ready)
		return nil
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
	return nil
}

// pluginEntry is one plugin in GET /api/plugins: this node's view and, with Redis, the version
// each node serves.
type pluginEntry struct {
	pluginhost.Info
	Cluster *modsync.IDView `json:"cluster,omitempty"`
}

// handlePlugins serves GET /api/plugins to admin principals (superadmin users, admin services).
func (g *Gateway) handlePlugins(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Dir     string        `json:"dir"`
		Node    string        `json:"node,omitempty"`
		Plugins []pluginEntry `json:"plugins"`
		// Live: versions, compiled modules and instances open now (old versions close once
		// their last call returned).
		Live *pluginhost.Live `json:"live,omitempty"`
	}{Dir: g.cfg.Plugins, Node: g.NodeID(), Plugins: []pluginEntry{}}
	if g.plugins == nil {
		api.WriteJSON(w, http.StatusOK, out)
		return
	}
	infos := g.plugins.reg.Infos()
	live := g.plugins.reg.Live()
	out.Live = &live
	var view modsync.View
	if g.plugins.store != nil {
		var err error
		if view, err = g.plugins.store.View(r.Context()); err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "reading the cluster's plugins: "+err.Error())
			return
		}
	}
	seen := map[string]bool{}
	for _, in := range infos {
		e := pluginEntry{Info: in}
		if g.plugins.store != nil {
			idv := view.ID(in.ID)
			e.Cluster = &idv
		}
		seen[in.ID] = true
		out.Plugins = append(out.Plugins, e)
	}
	if g.plugins.store != nil {
		// A plugin other nodes serve but this one does not (it refused the first version it got).
		for _, id := range view.IDs() {
			if idv := view.ID(id); !seen[id] && idv.Hash != "" {
				out.Plugins = append(out.Plugins, pluginEntry{Info: pluginhost.Info{ID: id, State: "absent"}, Cluster: &idv})
			}
		}
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
