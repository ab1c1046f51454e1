package hub

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// BenchmarkHistoryFanout measures the cost of the event history on the whole live path: publish
// on the in-memory bus (through the history when on), the router's subscription and lanes,
// filter, encode, queue to 1000 sockets, writers drained. One op is one event delivered to every
// socket. Modes: off (no history: the path before resume existed), on (history kept, plain
// sockets), on-resume (history kept, every socket resume=1: positioned frames). Run with -count
// to alternate them.
func BenchmarkHistoryFanout(b *testing.B) {
	const n = 1000
	snap := directory.Demo()
	for _, mode := range []string{"off", "on", "on-resume"} {
		b.Run("mode="+mode, func(b *testing.B) {
			m := metrics.New()
			h := New(Config{Metrics: m, MaxQueueFrames: 1 << 20, MaxQueueBytes: 1 << 30})
			mb := bus.NewMemory(bus.MemoryConfig{})
			defer mb.Close(context.Background())
			var pub bus.Bus = mb
			if mode != "off" {
				pub = &history.Bus{Bus: mb, Store: history.NewMemory(mb, history.Config{MaxEvents: 100000}), Record: Recorded}
			}
			r := NewRouter(h, mb, RouterConfig{})
			r.SetFilter(directory.KindUser, &filter.Native{})
			if err := r.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer r.Stop(context.Background())
			a, _ := snap.Principal(directory.KindUser, directory.DemoAdminUUID)
			for range n {
				h.RegisterWith(&discardConn{}, directory.KindUser, directory.DemoAdminUUID, a, ConnOptions{Format: FormatJSON, Positions: mode == "on-resume"})
			}
			payload := stopEvent(b)
			delivered := func() float64 { return counterSum(b, m, "_deliveries_total") }
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				if err := pub.Publish(ctx, topic.UserManagerEvents, payload); err != nil {
					b.Fatal(err)
				}
				if i%512 == 511 { // keep the lanes from overflowing
					for delivered() < float64((i-1024)*n) {
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			for delivered() < float64(b.N*n) {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
		})
	}
}

// BenchmarkHistoryRecord measures what recording costs a publish by itself (no subscriber), and
// reports the memory 10,000 kept events hold (heap growth after a GC, and the history's own
// estimate), history off and on in the same run.
func BenchmarkHistoryRecord(b *testing.B) {
	payload := participantEvent(b, directory.DemoPatUUID)
	for _, mode := range []string{"off", "on"} {
		b.Run("mode="+mode, func(b *testing.B) {
			mb := bus.NewMemory(bus.MemoryConfig{})
			defer mb.Close(context.Background())
			var pub bus.Bus = mb
			var hist *history.Memory
			if mode == "on" {
				hist = history.NewMemory(mb, history.Config{MaxEvents: 10000})
				pub = &history.Bus{Bus: mb, Store: hist, Record: Recorded}
			}
			ctx := context.Background()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				// A fresh payload per event, as the bus gets from its publishers.
				p := append([]byte(nil), payload...)
				if err := pub.Publish(ctx, topic.UserManagerEvents, p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
			runtime.GC()
			runtime.ReadMemStats(&after)
			kept := min(b.N, 10000)
			if kept >= 1000 {
				grown := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(kept) * 10000
				b.ReportMetric(max(grown, 0)/(1<<20), "heap-MiB/10k-events")
			}
			if hist != nil && kept > 0 {
				b.ReportMetric(float64(hist.Bytes())/float64(kept)*10000/(1<<20), "est-MiB/10k-events")
			}
			runtime.KeepAlive(hist)
		})
	}
}
