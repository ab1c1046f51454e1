package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/teragate/teragate/gateway/internal/metrics"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// version is one loaded plugin file: its runtime, compiled module, init result and warm pool.
type version struct {
	p         *plugin
	hash      string
	file      string
	data      []byte // the module's bytes, kept to roll back to this version
	loadedAt  time.Time
	settings  Settings
	rt        wazero.Runtime
	cm        wazero.CompiledModule
	info      *pluginv1.InitResult
	initReq   []byte
	hasFilter bool
	hasRPC    bool
	cache     ruleCache
	deadline  string // DeadlineInstrumented or DeadlineChecks

	// refs counts the registry's reference (1 while serving) plus calls and refills in flight;
	// the version closes when it drops to zero.
	refs        atomic.Int64
	consecutive atomic.Int32
	quarantined atomic.Bool

	pool   chan *instance
	mu     sync.Mutex // guards live and closed
	live   int        // instances in the pool or in use, plus ones being created
	closed bool
	// codeOnce closes rt and cm once: the version's last release, or a build that failed.
	codeOnce sync.Once

	// A version nobody has called yet may be cold: validated and initialised once, its code and
	// instances then released, and compiled again by its first call (release.go). cold is set
	// while rt and cm are nil; codeMu guards the transitions and warming.
	cold    atomic.Bool
	called  atomic.Bool // a call got an instance of this version
	codeMu  sync.Mutex
	warming chan struct{} // closed when the warm-up in flight ends; nil when none is
	warmErr error         // the last warm-up's error
	making  atomic.Int32  // calls making an instance (and warming the version) for themselves
}

// tryAcquire pins v for a call; it fails once v has been released for good.
func (v *version) tryAcquire() bool {
	for {
		n := v.refs.Load()
		if n <= 0 {
			return false
		}
		if v.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release unpins v and closes it after the last reference.
func (v *version) release() {
	if v.refs.Add(-1) == 0 {
		v.close()
	}
}

// close closes every pooled instance, then the runtime and the compiled module.
func (v *version) close() {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	for {
		select {
		case in := <-v.pool:
			in.close()
			continue
		default:
		}
		break
	}
	v.closeCode()
	v.p.r.live.versions.Add(-1)
}

// closeCode closes v's runtime (its module instances, the host modules and their code) and then
// its compiled module. The runtime shares the registry's compilation cache, so closing it does not
// free the compiled guest: wazero keeps compiled modules in the cache's engine, counted by
// reference, until each CompiledModule is closed. Without the second step every reload leaked
// the previous version's machine code (about 11 MiB for a Go guest) for the life of the process.
func (v *version) closeCode() {
	v.codeOnce.Do(func() {
		v.codeMu.Lock()
		v.dropCode()
		v.codeMu.Unlock()
		v.p.r.codeReleased()
	})
}

// dropCode closes and forgets rt and cm (v.codeMu held).
func (v *version) dropCode() {
	ctx := context.Background()
	if v.rt != nil {
		_ = v.rt.Close(ctx)
		v.rt = nil
	}
	if v.cm != nil {
		_ = v.cm.Close(ctx)
		v.cm = nil
		v.p.r.live.compiled.Add(-1)
	}
}

// newInstance instantiates and initialises one instance (tg_init with the plugin's config).
func (v *version) newInstance() (*instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), v.p.r.initTimeout)
	defer cancel()
	if err := v.warm(ctx); err != nil {
		return nil, err
	}
	in, err := v.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	out, err := in.call(ctx, in.init, v.initReq)
	if err != nil {
		in.close()
		return nil, fmt.Errorf("tg_init: %w", err)
	}
	if v.info == nil { // the first instance of a version: keep what the plugin declares
		info := &pluginv1.InitResult{}
		if err := protoUnmarshal(out, info); err != nil {
			in.close()
			return nil, fmt.Errorf("%w: tg_init result: %v", ErrProtocol, err)
		}
		v.info = info
	}
	return in, nil
}

// get takes an idle instance, creates one if the pool is below its size, or waits.
//
// A call that has to wait for an instance being made (a cold version compiling for its first
// call, a new instance running its init) waits for it as long as the making may take (see
// [version.makeContext]), not just until the caller's deadline: on a loaded machine a Go guest's
// warm-up can take longer than a filter call's deadline, and failing the call would drop an event
// that a moment later would have been delivered.
func (v *version) get(ctx context.Context) (*instance, error) {
	select {
	case in := <-v.pool:
		return in, nil
	default:
	}
	v.mu.Lock()
	if v.live < v.settings.PoolSize {
		v.live++
		v.mu.Unlock()
		v.making.Add(1)
		defer v.making.Add(-1)
		mctx, cancel := v.makeContext(ctx)
		defer cancel()
		if err := v.warm(mctx); err != nil {
			v.mu.Lock()
			v.live--
			v.mu.Unlock()
			return nil, err
		}
		in, err := v.newInstance()
		if err != nil {
			v.mu.Lock()
			v.live--
			v.mu.Unlock()
			return nil, err
		}
		return in, nil
	}
	v.mu.Unlock()
	wctx := ctx
	if v.making.Load() > 0 || v.cold.Load() { // the pool is still being filled
		var cancel context.CancelFunc
		wctx, cancel = v.makeContext(ctx)
		defer cancel()
	}
	select {
	case in := <-v.pool:
		return in, nil
	case <-wctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrBusy, wctx.Err())
	}
}

// makeContext bounds a call's wait for an instance being made: the init timeout from now, or the
// caller's deadline when that is later. The caller's cancellation (it gave up: a client that left)
// still ends the wait at once; only its deadline is extended.
func (v *version) makeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(v.p.r.initTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.After(d) {
		d = cd
	}
	mctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), d)
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return mctx, func() { stop(); cancel() }
}

// put returns a healthy instance to the pool (never blocks: the pool holds at most live).
func (v *version) put(in *instance) { v.pool <- in }

// discard closes a failed instance and refills the pool in the background.
func (v *version) discard(in *instance) {
	in.close()
	v.mu.Lock()
	v.live--
	v.mu.Unlock()
	if !v.tryAcquire() {
		return
	}
	go func() {
		defer v.release()
		v.mu.Lock()
		if v.closed || v.live >= v.settings.PoolSize || v.quarantined.Load() {
			v.mu.Unlock()
			return
		}
		v.live++
		v.mu.Unlock()
		in, err := v.newInstance()
		if err != nil {
			v.mu.Lock()
			v.live--
			v.mu.Unlock()
			v.p.log.Warn("could not replace a discarded instance", "hash", v.hash, "error", err)
			return
		}
		v.put(in)
	}()
}

// prewarm puts the instance made by validation in the pool. Further instances, up to PoolSize,
// are made when concurrent calls need them ([version.get]) and then kept: an idle gateway holds
// one instance per plugin instead of PoolSize (a Go guest's instance is several MiB).
func (v *version) prewarm(first *instance) error {
	v.live = 1
	v.put(first)
	return nil
}

// do runs fn on an instance under the per-call deadline, with the failure policy: an error
// discards the instance and counts toward quarantine; a success resets the count. fn must not
// keep the result view after it returns.
func (v *version) do(ctx context.Context, export func(*instance) api.Function, fn func(in *instance, call func(req []byte) ([]byte, error)) error) error {
	p := v.p
	if v.quarantined.Load() {
		p.observe(metrics.PluginQuarantined, 0, ErrQuarantined)
		return fmt.Errorf("%s: %w", p.id, ErrQuarantined)
	}
	start := time.Now()
	// Waiting for an instance is bounded by the caller's context; the per-call deadline bounds
	// the guest's own work and starts when it gets an instance.
	in, err := v.get(ctx)
	if err != nil {
		v.fail(start, err)
		return fmt.Errorf("%s: %w", p.id, err)
	}
	if !v.called.Load() {
		v.called.Store(true)
	}
	if err := ctx.Err(); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			// The caller gave up while the instance was being made (a cold version compiling):
			// not the guest's failure, so it does not count toward quarantine.
			v.put(in)
			err = fmt.Errorf("%w: %v", ErrBusy, err)
			v.fail(start, err)
			return fmt.Errorf("%s: %w", p.id, err)
		}
		// The caller's deadline passed while its instance was being made: the call still runs,
		// under the per-call deadline alone.
		ctx = context.WithoutCancel(ctx)
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > v.settings.Timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.settings.Timeout)
		defer cancel()
	}
	f := export(in)
	err = fn(in, func(req []byte) ([]byte, error) { return in.call(ctx, f, req) })
	if err != nil {
		v.discard(in)
		v.fail(start, err)
		return fmt.Errorf("%s: %w", p.id, err)
	}
	v.put(in)
	v.consecutive.Store(0)
	p.observe(metrics.PluginOK, time.Since(start), nil)
	return nil
}

func (v *version) fail(start time.Time, err error) {
	p := v.p
	p.observe(resultOf(err), time.Since(start), err)
	if errors.Is(err, ErrBusy) {
		return // overload is not the guest's fault (a looping guest is counted by its own call)
	}
	n := v.consecutive.Add(1)
	if int(n) >= v.settings.MaxFailures && v.quarantined.CompareAndSwap(false, true) {
		p.log.Error("plugin quarantined after repeated failures; drop in a new file (or touch this one) to reload it",
			"hash", v.hash, "failures", n, "on_quarantine", v.settings.OnQuarantine, "last_error", err)
		p.r.obs.PluginLoad(p.id, metrics.PluginQuarantine)
		p.r.obs.PluginVersion(p.id, v.hash, "quarantined")
		p.setState(StateQuarantined, err.Error())
		if v.settings.OnQuarantine == Rollback {
			go p.r.rollback(p, v, err)
		}
	}
}

func resultOf(err error) string {
	switch {
	case errors.Is(err, ErrTimeout):
		return metrics.PluginTimeout
	case errors.Is(err, ErrTrap):
		return metrics.PluginTrap
	case errors.Is(err, ErrGuest):
		return metrics.PluginGuestError
	case errors.Is(err, ErrBusy):
		return metrics.PluginBusy
	case errors.Is(err, ErrQuarantined):
		return metrics.PluginQuarantined
	}
	return metrics.PluginProtocol
}
