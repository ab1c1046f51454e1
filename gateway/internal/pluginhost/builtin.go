package pluginhost

import (
	"fmt"
	"time"
)

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
