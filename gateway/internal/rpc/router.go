package rpc

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves one RPC method.
type Handler interface {
	// ServeRPC runs the method with its positional arguments and returns a value that
	// [AppendJSON] can encode, or an error (wrap [ErrBadArgs] or [ErrForbidden] when they apply).
	ServeRPC(ctx context.Context, args Args) (any, error)
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, args Args) (any, error)

// ServeRPC implements [Handler].
func (f HandlerFunc) ServeRPC(ctx context.Context, args Args) (any, error) { return f(ctx, args) }

// Methods maps method names to their handlers.
type Methods map[string]Handler

// RouterConfig configures a [Router].
type RouterConfig struct {
	// Observe, if set, is called after every call with the module, the method, the status (one of
	// the Status* constants) and the duration. Module and method are "_unknown" when the call
	// named one that is not registered, so labels stay a bounded set.
	Observe func(module, method, status string, d time.Duration)
}

// Router dispatches calls to the registered modules' methods. The zero value is not usable; create
// it with [NewRouter].
type Router struct {
	cfg RouterConfig

	mu       sync.Mutex      // serialises changes
	reserved map[string]bool // modules of built-in methods ([Router.Reserve]): never replaced or removed
	table    atomic.Pointer[table]
	watchers map[int]func()
	nextW    int
}

// table is an immutable method table.
type table struct {
	modules map[string]Methods
}

// NewRouter returns a router without modules.
func NewRouter(cfg RouterConfig) *Router {
	r := &Router{cfg: cfg, watchers: map[int]func(){}, reserved: map[string]bool{}}
	r.table.Store(&table{modules: map[string]Methods{}})
	return r
}

// ValidName reports whether s can name a module or a method: not empty, at most 200 bytes,
// printable ASCII without spaces or the bus's glob characters (* ? [ ] \).
func ValidName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c > '~' || strings.IndexByte(`*?[]\`, c) >= 0 {
			return false
		}
	}
	return true
}

// Register adds methods to module, creating the module if needed. It fails (changing nothing)
// with [ErrBadName] for an invalid name or a nil handler and [ErrDuplicate] if a method exists.
func (r *Router) Register(module string, methods Methods) error {
	return r.change(module, func(old Methods) (Methods, error) {
		nm := maps.Clone(old)
		if nm == nil {
			nm = Methods{}
		}
		for name, h := range methods {
			if _, dup := nm[name]; dup {
				return nil, fmt.Errorf("%w: %s.%s", ErrDuplicate, module, name)
			}
			nm[name] = h
		}
		return nm, nil
	}, methods)
}

// Replace sets module's methods to exactly methods (a plugin reload), or removes the module when
// methods is empty. On a reserved module ([Router.Reserve]) it fails with [ErrReserved] and
// changes nothing.
func (r *Router) Replace(module string, methods Methods) error {
	return r.change(module, func(Methods) (Methods, error) {
		if r.reserved[module] {
			return nil, fmt.Errorf("%w: %s", ErrReserved, module)
		}
		return maps.Clone(methods), nil
	}, methods)
}

// Reserve marks modules as the gateway's own (built-in methods): [Router.Replace] refuses them
// and [Router.Unregister] leaves them, so no plugin can take them over or remove them.
func (r *Router) Reserve(modules ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range modules {
		r.reserved[m] = true
	}
}

// Reserved reports whether module is reserved ([Router.Reserve]).
func (r *Router) Reserved(module string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reserved[module]
}

// Unregister removes the named methods of module, or the whole module when none are named.
// Unknown names are ignored, and so is a reserved module (built-in methods stay).
func (r *Router) Unregister(module string, methods ...string) {
	_ = r.change(module, func(old Methods) (Methods, error) {
		if r.reserved[module] {
			return old, nil
		}
		if len(methods) == 0 {
			return nil, nil
		}
		nm := maps.Clone(old)
		for _, m := range methods {
			delete(nm, m)
		}
		return nm, nil
	}, nil)
}

func (r *Router) change(module string, f func(Methods) (Methods, error), check Methods) error {
	if !ValidName(module) {
		return fmt.Errorf("%w: module %q", ErrBadName, module)
	}
	for name, h := range check {
		if !ValidName(name) || h == nil {
			return fmt.Errorf("%w: method %q of %s", ErrBadName, name, module)
		}
	}
	r.mu.Lock()
	old := r.table.Load()
	nm, err := f(old.modules[module])
	if err != nil {
		r.mu.Unlock()
		return err
	}
	mods := maps.Clone(old.modules)
	if len(nm) == 0 {
		delete(mods, module)
	} else {
		mods[module] = nm
	}
	r.table.Store(&table{modules: mods})
	watchers := slices.Collect(maps.Values(r.watchers))
	r.mu.Unlock()
	for _, w := range watchers {
		w()
	}
	return nil
}

// Watch calls fn (from the goroutine making the change) after every registration change, and
// returns a function that stops watching.
func (r *Router) Watch(fn func()) (stop func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextW
	r.nextW++
	r.watchers[id] = fn
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.watchers, id)
	}
}

// Modules returns the registered module names, sorted.
func (r *Router) Modules() []string {
	return slices.Sorted(maps.Keys(r.table.Load().modules))
}

// Methods returns the method names of module, sorted (nil for an unknown module).
func (r *Router) Methods(module string) []string {
	return slices.Sorted(maps.Keys(r.table.Load().modules[module]))
}

// Lookup returns the handler of module.method, or an error matching [ErrUnknownModule] or
// [ErrUnknownMethod].
func (r *Router) Lookup(module, method string) (Handler, error) {
	ms, ok := r.table.Load().modules[module]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModule, module)
	}
	h, ok := ms[method]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMethod, method)
	}
	return h, nil
}

// Call looks up module.method and runs it. A handler panic is recovered and returned as an
// error matching [ErrHandlerPanic].
func (r *Router) Call(ctx context.Context, module, method string, args Args) (v any, err error) {
	var start time.Time
	if r.cfg.Observe != nil {
		start = time.Now()
	}
	h, err := r.Lookup(module, method)
	if err != nil {
		if r.cfg.Observe != nil {
			mod := module
			if StatusOf(err) == StatusUnknownModule {
				mod = "_unknown"
			}
			r.cfg.Observe(mod, "_unknown", StatusOf(err), time.Since(start))
		}
		return nil, err
	}
	if r.cfg.Observe != nil {
		defer func() { r.cfg.Observe(module, method, StatusOf(err), time.Since(start)) }()
	}
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("%w: %s.%s: %v", ErrHandlerPanic, module, method, p)
		}
	}()
	return h.ServeRPC(ctx, args)
}

var _ Handler = HandlerFunc(nil)
