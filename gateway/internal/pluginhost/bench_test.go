package pluginhost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/pluginhost/wasmbuild"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// BenchmarkFilter: one filter call (one event, one batch) with the per-call deadline enforced,
// against the native table. ns/recipient is ns/op divided by the batch.
func BenchmarkFilter(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		vd := &pluginv1.Verdicts{Deliver: make([]byte, (n+7)/8)}
		for i := range vd.Deliver {
			vd.Deliver[i] = 0b01010101
		}
		paths := []struct {
			name          string
			first, second *pluginv1.FilterResult
			wasm          string
		}{
			{"native", nil, nil, ""},
			{"wat-rule", visibleRule("participant", directory.DemoPatUUID), nil, "echo"},
			{"wat-rule-cached", ruleResult(&pluginv1.Rule{Cacheable: true, AnyOf: []*pluginv1.Clause{{Visible: &pluginv1.Subject{Kind: "participant", Uuid: directory.DemoPatUUID}}}}), nil, "echo"},
			{"wat-verdicts", needRecipients, &pluginv1.FilterResult{Result: &pluginv1.FilterResult_Verdicts{Verdicts: vd}}, "echo"},
			{"go-filter.user", nil, nil, "go"},
			{"go-filter.user-uncached", nil, nil, "go"}, // a new subject each call: one tg_filter call each
		}
		for _, p := range paths {
			b.Run(fmt.Sprintf("%s/batch=%d", p.name, n), func(b *testing.B) {
				var f filter.Filter
				e := newEnv(b, map[string]Settings{"filter.user": {Config: echoConfig(b, &pluginv1.InitResult{}, p.first, p.second, nil)}})
				switch p.wasm {
				case "":
					f = &filter.Native{Sessions: e.pres}
				case "go":
					data, err := os.ReadFile(wasmbuild.Build(b, "./plugins/filter/user"))
					if err != nil {
						b.Fatal(err)
					}
					e.r.cfg.Settings = nil
					if err := e.r.Load("filter.user", data); err != nil {
						b.Fatal(err)
					}
					f = e.r.Filter(directory.KindUser, nil, e.pres)
				default:
					if err := e.r.Load("filter.user", wasmFile(b, p.wasm)); err != nil {
						b.Fatal(err)
					}
					f = e.r.Filter(directory.KindUser, nil, e.pres)
				}
				rs := e.recipients(n)
				out := make([]filter.Decision, n)
				ev := participantEvent(directory.DemoPatUUID)
				ctx := context.Background()
				if err := f.Decide(ctx, ev, directory.KindUser, rs, out); err != nil {
					b.Fatal(err)
				}
				evs := []*filter.Event{ev}
				if strings.HasSuffix(p.name, "-uncached") {
					evs = make([]*filter.Event, b.N)
					for i := range evs {
						evs[i] = participantEvent(fmt.Sprintf("p-%d", i))
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := f.Decide(ctx, evs[i%len(evs)], directory.KindUser, rs, out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/recipient")
			})
		}
	}
}

// BenchmarkReload measures rename → serving through the directory watcher: cold (bytes never
// compiled, empty cache) and cache hit (alternating between two files compiled before).
func BenchmarkReload(b *testing.B) {
	for _, guest := range []string{"wat-echo", "go-filter.user"} {
		for _, mode := range []string{"cold", "cache-hit"} {
			b.Run(guest+"/"+mode, func(b *testing.B) {
				var wasm []byte
				if guest == "go-filter.user" {
					var err error
					if wasm, err = os.ReadFile(wasmbuild.Build(b, "./plugins/filter/user")); err != nil {
						b.Fatal(err)
					}
				} else {
					wasm = wasmFile(b, "echo")
				}
				dir := b.TempDir()
				e := newEnv(b, nil)
				e.r.cfg.Settings = map[string]Settings{"filter.user": {Config: echoConfig(b, &pluginv1.InitResult{}, visibleRule("participant", directory.DemoPatUUID), nil, nil)}}
				cache := b.TempDir()
				e.r.cache.Close(context.Background())
				var err error
				if e.r.cache, err = newCache(cache); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				ready := make(chan struct{})
				go func() { _ = e.r.Watch(ctx, dir, func() { close(ready) }) }()
				<-ready
				variant := func(i int) []byte {
					return append(append([]byte(nil), wasm...), 0, 6, 1, 'v', byte(i), byte(i>>8), byte(i>>16), byte(i>>24))
				}
				if mode == "cache-hit" { // compile both once
					for i := 0; i < 2; i++ {
						if err := e.r.Load("filter.user", variant(i)); err != nil {
							b.Fatal(err)
						}
					}
				}
				var total time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					data := variant(i % 2)
					if mode == "cold" {
						data = variant(1000 + i)
					}
					start := time.Now()
					tmp := filepath.Join(dir, ".tmp")
					if err := os.WriteFile(tmp, data, 0o644); err != nil {
						b.Fatal(err)
					}
					if err := os.Rename(tmp, filepath.Join(dir, "filter.user.wasm")); err != nil {
						b.Fatal(err)
					}
					want := hashOf(data)
					for {
						if in, _ := e.r.Info("filter.user"); in.Hash == want {
							break
						}
						time.Sleep(200 * time.Microsecond)
					}
					total += time.Since(start)
				}
				b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/reload")
			})
		}
	}
}

// TestInstanceMemory reports the memory of one warm instance (linear memory and process RSS
// growth per instance). Figures only; nothing is asserted but that it runs.
func TestInstanceMemory(t *testing.T) {
	for _, guest := range []string{"wat-echo", "go-filter.user"} {
		t.Run(guest, func(t *testing.T) {
			wasm := wasmFile(t, "echo")
			if guest == "go-filter.user" {
				var err error
				if wasm, err = os.ReadFile(wasmbuild.Build(t, "./plugins/filter/user")); err != nil {
					t.Fatal(err)
				}
			}
			const n = 16
			e := newEnv(t, map[string]Settings{"filter.user": {PoolSize: 1, Config: echoConfig(t, &pluginv1.InitResult{}, visibleRule("participant", "x"), nil, nil)}})
			if err := e.r.Load("filter.user", wasm); err != nil {
				t.Fatal(err)
			}
			v := e.r.plugins["filter.user"].acquire()
			defer v.release()
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			rss0 := rss()
			ins := make([]*instance, n)
			var linear uint64
			for i := range ins {
				in, err := v.newInstance()
				if err != nil {
					t.Fatal(err)
				}
				ins[i] = in
				linear += uint64(in.mem.Size())
			}
			runtime.GC()
			runtime.ReadMemStats(&m1)
			rss1 := rss()
			t.Logf("%s: per warm instance: linear memory %d KiB, Go heap in use +%d KiB, process RSS +%d KiB",
				guest, linear/n>>10, (int64(m1.HeapInuse)-int64(m0.HeapInuse))/n>>10, (rss1-rss0)/n>>10)
			for _, in := range ins {
				in.close()
			}
		})
	}
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.ParseInt(f[1], 10, 64)
	return p * int64(os.Getpagesize())
}
