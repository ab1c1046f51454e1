package pluginhost

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/teragate/teragate/gateway/internal/wasmguard"
)

// liveCounts is the host's own account of what plugin versions hold: every version built and not
// yet closed, every compiled module not yet closed (one per version), every instance not yet
// closed. A reload adds a version and releases the old one once its last call returned, so after
// any number of reloads the counts come back to one version, one compiled module and the pooled
// instances of each serving plugin.
type liveCounts struct {
	versions, compiled, instances atomic.Int64
}

// Live is a snapshot of [Registry.Live].
type Live struct {
	// Versions built and not yet closed: the serving ones plus old ones still finishing calls.
	Versions int64 `json:"versions"`
	// CompiledModules not yet closed (each holds the guest's machine code).
	CompiledModules int64 `json:"compiled_modules"`
	// Instances not yet closed (each holds a linear memory and, for a Go guest, its heap).
	Instances int64 `json:"instances"`
}

// Live returns how many versions, compiled modules and instances are open now.
func (r *Registry) Live() Live {
	return Live{
		Versions:        r.live.versions.Load(),
		CompiledModules: r.live.compiled.Load(),
		Instances:       r.live.instances.Load(),
	}
}

// TrimDelay is how long after the last release of a version's code the registry returns freed
// memory to the OS, when [Config.TrimAfterRelease] is set: a burst of reloads trims once.
const TrimDelay = 2 * time.Second

// trimmer runs debug.FreeOSMemory once reloads have been quiet for TrimDelay. A compiled Go guest
// leaves tens of MiB of garbage (decoding, instrumenting, compiling) and its release frees as much
// again; the runtime would hand that back to the OS only slowly, and keeps up to the GC's heap
// goal (twice the live heap) resident, so after a burst of reloads the process would stay far
// above its size before them.
type trimmer struct {
	mu    sync.Mutex
	timer *time.Timer
	runs  atomic.Int64 // trims done (tests)
}

// codeReleased is called after a version's runtime and compiled module closed.
func (r *Registry) codeReleased() { r.scheduleTrim() }

// scheduleTrim returns freed memory to the OS TrimDelay after the last call, when
// [Config.TrimAfterRelease] is set: after a version's code was released, and after a cold
// version was compiled for its first call (compiling a Go guest leaves tens of MiB of garbage,
// which would otherwise stay resident until the heap reached twice its live size).
func (r *Registry) scheduleTrim() {
	if !r.cfg.TrimAfterRelease {
		return
	}
	t := &r.trim
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Reset(TrimDelay)
		return
	}
	t.timer = time.AfterFunc(TrimDelay, func() {
		t.mu.Lock()
		t.timer = nil
		t.mu.Unlock()
		ReturnMemory()
		t.runs.Add(1)
	})
}

// ReturnMemory collects garbage and returns the free memory to the OS. wazero unmaps a released
// module's machine code from a finalizer, and what a finalized object references is freed only
// by the collection after the finalizer ran, so one debug.FreeOSMemory right after releasing a
// version leaves its decoded module and code in place until the next collection, which an idle
// process may not run for minutes. ReturnMemory collects, waits (up to a second) for the
// finalizers queued by that collection to run, and then frees and returns memory.
func ReturnMemory() {
	done := make(chan struct{})
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) { close(done) })
	sentinel = nil //nolint:ineffassign,wastedassign // drop the last reference before collecting
	runtime.GC()
	select { // finalizers run one at a time on one goroutine: the sentinel's comes with the others
	case <-done:
	case <-time.After(time.Second):
	}
	runtime.Gosched()
	debug.FreeOSMemory()
}

// stopTrim cancels a pending trim (Close).
func (r *Registry) stopTrim() {
	t := &r.trim
	t.mu.Lock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.mu.Unlock()
}

// goCold releases the code and the instances of v, just built and not serving yet, keeping what
// validation learned (the InitResult, the exports): v compiles again at its first call ([warm]).
// A Go guest's compiled code is ~11 MiB of machine code plus ~4 MiB of decoded module, and its
// instance ~4 MiB of linear memory: at start, four built-ins held ~100 MiB before any client
// came. The compilation cache keeps the compiled code on disk, so the warm-up reads it back
// instead of compiling again.
func (v *version) goCold() {
	for {
		select {
		case in := <-v.pool:
			in.close()
			v.mu.Lock()
			v.live--
			v.mu.Unlock()
			continue
		default:
		}
		break
	}
	v.codeMu.Lock()
	v.dropCode()
	v.cold.Store(true)
	v.codeMu.Unlock()
}

// warm compiles a cold version's module again (one warm-up at a time; other callers wait for
// it). It waits at most until ctx is done ([ErrBusy]), but the warm-up itself goes on, bounded by
// the init timeout, so the next call finds the version warm.
func (v *version) warm(ctx context.Context) error {
	if !v.cold.Load() {
		return nil
	}
	v.codeMu.Lock()
	if !v.cold.Load() {
		v.codeMu.Unlock()
		return nil
	}
	ch := v.warming
	if ch == nil && v.tryAcquire() { // the warm-up's own reference: the version stays open
		ch = make(chan struct{})
		v.warming = ch
		go v.warmUp(ch)
	}
	v.codeMu.Unlock()
	if ch == nil {
		return fmt.Errorf("%w: version closed", ErrBusy)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return fmt.Errorf("%w: compiling the plugin: %v", ErrBusy, ctx.Err())
	}
	v.codeMu.Lock()
	defer v.codeMu.Unlock()
	if v.cold.Load() {
		return fmt.Errorf("compiling the plugin: %w", v.warmErr)
	}
	return nil
}

// warmUp compiles v's module into a new runtime, as its build did, and closes ch.
func (v *version) warmUp(ch chan struct{}) {
	defer v.release()
	r := v.p.r
	ctx, cancel := context.WithTimeout(context.Background(), r.initTimeout)
	defer cancel()
	start := time.Now()
	code, err := v.data, error(nil)
	guarded := v.deadline == DeadlineInstrumented
	if guarded {
		code, err = wasmguard.Instrument(v.data)
	}
	var rt wazero.Runtime
	var cm wazero.CompiledModule
	if err == nil {
		rt, cm, err = r.compileIn(ctx, v, v.settings, code, guarded)
	}
	v.codeMu.Lock()
	v.warmErr = err
	if err == nil {
		// No instance exists and nobody reads rt and cm while cold is set.
		v.rt, v.cm = rt, cm
		v.cold.Store(false)
	}
	v.warming = nil
	close(ch)
	v.codeMu.Unlock()
	if err != nil {
		v.p.log.Error("could not compile the plugin for its first call", "hash", v.hash[:16], "error", err)
		return
	}
	v.p.log.Debug("plugin compiled for its first call", "hash", v.hash[:16], "took", time.Since(start))
	r.scheduleTrim()
}
