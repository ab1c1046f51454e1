package loadtest

import (
	"context"
	"fmt"
	"time"
)

// Sample is one second of a run: what its progress line shows, kept for the
// report's time series and its plot ([WritePlot]).
type Sample struct {
	// T is the end of the second, in seconds since the run started.
	T float64 `json:"t"`
	// Connected is how many clients had an open websocket.
	Connected int64 `json:"connected"`
	// ConnectsPerSec is the websocket opens (first connections and
	// reconnections) completed in that second.
	ConnectsPerSec float64 `json:"connects_per_sec"`
	// DeliveredPerSec is the bench frames received in that second.
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	// P50ms and P99ms are the latencies of the frames of that second
	// (0 when none arrived).
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	// OtherPerSec is the server's own frames (presence) in that second.
	OtherPerSec float64 `json:"other_per_sec"`
	// ServerRSSMiB is the server's resident memory (0: unknown pid, or the
	// server was down).
	ServerRSSMiB float64 `json:"server_rss_mib"`
}

// Sub returns the values recorded between prev and s (prev nil: all of s).
// Max is approximate: the upper bound of the highest bucket in use.
func (s *HistSnapshot) Sub(prev *HistSnapshot) *HistSnapshot {
	d := &HistSnapshot{counts: make([]uint64, len(s.counts)), Count: s.Count, Sum: s.Sum}
	copy(d.counts, s.counts)
	if prev != nil {
		for i := range d.counts {
			d.counts[i] -= min(d.counts[i], prev.counts[i])
		}
		d.Count -= min(d.Count, prev.Count)
		d.Sum -= min(d.Sum, prev.Sum)
	}
	for i := len(d.counts) - 1; i >= 0; i-- {
		if d.counts[i] != 0 {
			d.Max = min(bucketHigh(i), s.Max)
			break
		}
	}
	return d
}

// sampler turns the harness's counters into one [Sample] per second.
type sampler struct {
	h      *harness
	start  time.Time
	lastAt time.Time
	frames int64
	other  int64
	opens  int64
	hist   *HistSnapshot
}

func newSampler(h *harness, start time.Time) *sampler {
	return &sampler{h: h, start: start, lastAt: start, hist: h.hist.Snapshot()}
}

// next returns the sample of the time since the previous call.
func (s *sampler) next(now time.Time) Sample {
	h := s.h
	rec, _, out, other, _ := h.totals()
	opens := h.opens.Load()
	snap := h.hist.Snapshot()
	d := snap.Sub(s.hist)
	dt := now.Sub(s.lastAt).Seconds()
	smp := Sample{
		T:               now.Sub(s.start).Seconds(),
		Connected:       h.open.Load(),
		ConnectsPerSec:  float64(opens-s.opens) / dt,
		DeliveredPerSec: float64(rec+out-s.frames) / dt,
		P50ms:           float64(d.Quantile(0.50)) / 1000,
		P99ms:           float64(d.Quantile(0.99)) / 1000,
		OtherPerSec:     float64(other-s.other) / dt,
	}
	if pid := h.pid.Load(); pid > 0 {
		if ps, err := ReadProcStat(int(pid)); err == nil {
			smp.ServerRSSMiB = mib(ps.RSS)
		}
	}
	s.lastAt, s.frames, s.other, s.opens, s.hist = now, rec+out, other, opens, snap
	return smp
}

// progress samples the run once a second until ctx ends, keeps the samples
// and prints a line per sample to Progress (when not nil).
func (h *harness) progress(ctx context.Context, done chan<- struct{}, start time.Time) {
	defer close(done)
	s := newSampler(h, start)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			smp := s.next(now)
			h.seriesMu.Lock()
			h.series = append(h.series, smp)
			h.seriesMu.Unlock()
			if h.cfg.Progress != nil {
				h.printProgress(smp)
			}
		}
	}
}

// printProgress writes one progress line.
func (h *harness) printProgress(smp Sample) {
	rss := "-"
	if smp.ServerRSSMiB > 0 {
		rss = fmt.Sprintf("%.1fMiB", smp.ServerRSSMiB)
	}
	p99 := float64(h.hist.Snapshot().Quantile(0.99)) / 1000
	storm := ""
	if h.storm != nil {
		storm = h.storm.progressFields()
	}
	_, _ = fmt.Fprintf(h.cfg.Progress,
		"bench: %5.1fs connected=%d/%d failed=%d disconnected=%d%s published=%d delivered=%.0f/s p99=%.1fms (this second %.1fms) other=%.0f/s server_rss=%s\n",
		smp.T, smp.Connected, len(h.clients), h.connectErrs.Load(), h.disconnected.Load(), storm,
		h.published.Load(), smp.DeliveredPerSec, p99, smp.P99ms, smp.OtherPerSec, rss)
}

// takeSeries returns the samples taken so far.
func (h *harness) takeSeries() []Sample {
	h.seriesMu.Lock()
	defer h.seriesMu.Unlock()
	return append([]Sample(nil), h.series...)
}
