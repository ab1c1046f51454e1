package pluginhost

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
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
func (r *Registry) codeReleased() {
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
		debug.FreeOSMemory()
		t.runs.Add(1)
	})
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
