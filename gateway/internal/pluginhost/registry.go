package pluginhost

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"

	"github.com/teragate/teragate/gateway/internal/directory"
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
