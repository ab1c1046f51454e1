package pluginhost

import (
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// acquire pins the serving version of p, or returns nil when none is loaded.
func (p *plugin) acquire() *version {
	for {
		v := p.cur.Load()
		if v == nil || v.tryAcquire() {
			return v
		}
	}
}

func (p *plugin) observe(result string, d time.Duration, err error) {
	p.calls.Add(1)
	if err != nil {
		p.failures.Add(1)
		p.smu.Lock()
		p.lastError = err.Error()
		p.smu.Unlock()
		p.log.Warn("plugin call failed", "result", result, "error", err)
	}
	if result != metrics.PluginQuarantined {
		p.lat.add(d)
	}
	p.r.obs.PluginCall(p.id, result, d.Seconds())
}

func (v *version) filterKinds() []directory.Kind {
	var ks []directory.Kind
	if !v.hasFilter {
		return nil
	}
	if k, ok := strings.CutPrefix(v.p.id, "filter."); ok {
		if kk, ok := directory.ParseKind(k); ok && kk != directory.KindService {
			ks = append(ks, kk)
		}
	}
	for _, k := range v.info.GetFilterKinds() {
		if kk, ok := directory.ParseKind(k); ok && !slices.Contains(ks, kk) {
			ks = append(ks, kk)
		}
	}
	return ks
}

// rebuildKinds recomputes which plugin serves which filter kind: filter.<kind> first, then a
// plugin listing the kind in filter_kinds (the lowest id wins, for determinism).
func (r *Registry) rebuildKinds() {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[directory.Kind]*plugin{}
	ids := make([]string, 0, len(r.plugins))
	for id := range r.plugins {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := r.plugins[id]
		v := p.cur.Load()
		if v == nil {
			continue
		}
		for _, k := range v.filterKinds() {
			exact := id == "filter."+k.String()
			if cur, ok := m[k]; !ok || exact && cur.id != id {
				m[k] = p
			}
		}
	}
	r.kinds.Store(&m)
}

// latency is a lock-free log-scale histogram of call durations (about 19% wide buckets).
type latency struct{ b [256]atomic.Uint64 }

func latBucket(ns uint64) int {
	if ns < 8 {
		return int(ns)
	}
	n := bits.Len64(ns) // ≥ 4
	frac := (ns >> (n - 3)) & 3
	return min(4*(n-2)+int(frac), 255)
}

func (l *latency) add(d time.Duration) { l.b[latBucket(uint64(max(d, 0)))].Add(1) }

// quantile returns the upper bound of the bucket holding quantile q, in microseconds.
func (l *latency) quantile(q float64) float64 {
	var counts [256]uint64
	var total uint64
	for i := range l.b {
		counts[i] = l.b[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= want {
			return float64(bucketUpper(i)) / 1e3
		}
	}
	return 0
}

func bucketUpper(i int) uint64 {
	if i < 8 {
		return uint64(i)
	}
	n := i/4 + 2
	frac := uint64(i % 4)
	return (4 + frac + 1) << (n - 3)
}
