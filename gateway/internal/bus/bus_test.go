package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/testutil"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name, pattern, channel string
		want                   bool
	}{
		{"exact", "module.TeraServer.UserManagerModule.events", "module.TeraServer.UserManagerModule.events", true},
		{"exact differs", "module.a.events", "module.a.events.x", false},
		{"star crosses dots", "websocket.*", "websocket.user.u-1.events", true},
		{"star middle", "websocket.*.events", "websocket.device.d1.events", true},
		{"star middle no suffix", "websocket.*.events", "websocket.device.d1.event", false},
		{"star empty", "a*b", "ab", true},
		{"double star", "a**b", "axxb", true},
		{"question", "log.?", "log.x", true},
		{"question needs one", "log.?", "log.", false},
		{"class", "h[ae]llo", "hello", true},
		{"class miss", "h[ae]llo", "hillo", false},
		{"class negated", "h[^e]llo", "hallo", true},
		{"class negated miss", "h[^e]llo", "hello", false},
		{"range", "v[0-9]", "v7", true},
		{"range miss", "v[0-9]", "vx", false},
		{"escape star", `a\*b`, "a*b", true},
		{"escape star literal only", `a\*b`, "axb", false},
		{"trailing star", "service.*", "service.", true},
		{"empty channel", "*", "", true},
		{"pathological", "*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Match(tt.pattern, tt.channel))
		})
	}
}

func TestValidPattern(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{"a.b", true}, {"", false}, {"a[", false}, {"a[b]", true}, {`a\`, false}, {`a\[`, true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) { require.Equal(t, tt.want, ValidPattern(tt.pattern)) })
	}
}

// busKind builds one implementation of [Bus] for the behavioural tests, which run against every
// implementation so Memory and Redis are proven equivalent.
type busKind struct {
	name string
	new  func(t *testing.T, maxPending int, onDrop func(string, string)) Bus
}

func busKinds() []busKind {
	return []busKind{
		{"memory", func(t *testing.T, maxPending int, onDrop func(string, string)) Bus {
			b := NewMemory(MemoryConfig{MaxPending: maxPending, OnDrop: onDrop})
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			return b
		}},
		{"redis", func(t *testing.T, maxPending int, onDrop func(string, string)) Bus {
			srv := testutil.StartRedis(t)
			return newRedisBus(t, srv.URL, RedisConfig{MaxPending: maxPending, OnDrop: onDrop})
		}},
	}
}

// newRedisBus returns a Redis bus on its own client, closed at the end of the test.
func newRedisBus(t *testing.T, url string, cfg RedisConfig) *Redis {
	t.Helper()
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	cfg.Client = redis.NewClient(opt)
	b, err := NewRedis(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()); _ = cfg.Client.Close() })
	return b
}

// forEachBus runs f once per implementation, as a subtest.
func forEachBus(t *testing.T, f func(t *testing.T, k busKind)) {
	for _, k := range busKinds() {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

func collect(t *testing.T, b Bus, pattern string) (*[]Message, *sync.Mutex, Subscription) {
	t.Helper()
	var mu sync.Mutex
	got := &[]Message{}
	s, err := b.Subscribe(context.Background(), pattern, func(m Message) {
		mu.Lock()
		*got = append(*got, m)
		mu.Unlock()
	})
	require.NoError(t, err)
	return got, &mu, s
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBusOrderAndPatterns(t *testing.T) {
	forEachBus(t, func(t *testing.T, k busKind) {
		ctx := context.Background()
		b := k.new(t, 0, nil)
		all, allMu, _ := collect(t, b, "websocket.*")
		one, oneMu, _ := collect(t, b, "websocket.user.u1.events")
		cls, clsMu, _ := collect(t, b, "websocket.[d]evice.?1.*")
		for i := 0; i < 1000; i++ {
			ch := "websocket.user.u1.events"
			if i%2 == 1 {
				ch = "websocket.device.d1.events"
			}
			require.NoError(t, b.Publish(ctx, ch, []byte(fmt.Sprint(i))))
		}
		require.NoError(t, b.Publish(ctx, "module.x.events", []byte("nobody")))
		eventually(t, func() bool { allMu.Lock(); defer allMu.Unlock(); return len(*all) == 1000 })
		eventually(t, func() bool { oneMu.Lock(); defer oneMu.Unlock(); return len(*one) == 500 })
		eventually(t, func() bool { clsMu.Lock(); defer clsMu.Unlock(); return len(*cls) == 500 })
		allMu.Lock()
		defer allMu.Unlock()
		for i, m := range *all {
			require.Equal(t, fmt.Sprint(i), string(m.Payload), "order")
			require.Equal(t, "websocket.*", m.Pattern)
		}
		oneMu.Lock()
		defer oneMu.Unlock()
		require.Equal(t, "websocket.user.u1.events", (*one)[0].Pattern)
		require.Equal(t, "websocket.user.u1.events", (*one)[0].Channel)
	})
}

func TestBusUnsubscribeAndClose(t *testing.T) {
	forEachBus(t, func(t *testing.T, k busKind) {
		ctx := context.Background()
		b := k.new(t, 0, nil)
		got, mu, s := collect(t, b, "a")
		other, otherMu, _ := collect(t, b, "a")
		require.NoError(t, b.Publish(ctx, "a", []byte("1")))
		eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(*got) == 1 })
		require.NoError(t, s.Unsubscribe(ctx))
		require.NoError(t, s.Unsubscribe(ctx))
		require.NoError(t, b.Publish(ctx, "a", []byte("2")))
		// The other subscription sees "2": by then the unsubscribed one would have too.
		eventually(t, func() bool { otherMu.Lock(); defer otherMu.Unlock(); return len(*other) == 2 })
		mu.Lock()
		require.Len(t, *got, 1)
		mu.Unlock()
		require.NoError(t, b.Close(ctx))
		require.NoError(t, b.Close(ctx))
		require.ErrorIs(t, b.Publish(ctx, "a", nil), ErrClosed)
		_, err := b.Subscribe(ctx, "a", func(Message) {})
		require.ErrorIs(t, err, ErrClosed)
	})
}

func TestBusBadPatterns(t *testing.T) {
	forEachBus(t, func(t *testing.T, k busKind) {
		ctx := context.Background()
		b := k.new(t, 0, nil)
		tests := []struct {
			name     string
			patterns []string
			h        Handler
		}{
			{"unterminated class", []string{"a["}, func(Message) {}},
			{"trailing backslash", []string{`a\`}, func(Message) {}},
			{"empty", []string{""}, func(Message) {}},
			{"no pattern", nil, func(Message) {}},
			{"nil handler", []string{"a"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := b.SubscribeAll(ctx, tt.patterns, tt.h)
				require.ErrorIs(t, err, ErrBadPattern)
			})
		}
	})
}

func TestBusPublishFromHandler(t *testing.T) {
	forEachBus(t, func(t *testing.T, k busKind) {
		ctx := context.Background()
		b := k.new(t, 0, nil)
		out, mu, _ := collect(t, b, "out")
		_, err := b.Subscribe(ctx, "in", func(m Message) { _ = b.Publish(ctx, "out", m.Payload) })
		require.NoError(t, err)
		for i := 0; i < 100; i++ {
			require.NoError(t, b.Publish(ctx, "in", []byte{byte(i)}))
		}
		eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(*out) == 100 })
		mu.Lock()
		defer mu.Unlock()
		for i, m := range *out {
			require.Equal(t, []byte{byte(i)}, m.Payload)
		}
	})
}

func TestBusDropWhenFull(t *testing.T) {
	forEachBus(t, func(t *testing.T, k busKind) {
		ctx := context.Background()
		var drops atomic.Int64
		b := k.new(t, 10, func(string, string) { drops.Add(1) })
		block := make(chan struct{})
		unblock := sync.OnceFunc(func() { close(block) })
		t.Cleanup(unblock) // before the bus closes (cleanups run last first)
		var got atomic.Int64
		_, err := b.Subscribe(ctx, "x", func(Message) { <-block; got.Add(1) })
		require.NoError(t, err)
		for i := 0; i < 100; i++ {
			require.NoError(t, b.Publish(ctx, "x", nil))
		}
		// The delivery goroutine holds at most one batch (≤ 10) and the queue at most 10 more:
		// every other message is dropped and counted.
		eventually(t, func() bool { return drops.Load() >= 80 })
		unblock()
		eventually(t, func() bool { return got.Load()+drops.Load() == 100 })
		require.LessOrEqual(t, got.Load(), int64(20))
	})
}

// TestBusHammer publishes, subscribes and unsubscribes from many goroutines at once.
func TestBusHammer(t *testing.T) {
	forEachBus(t, func(t *testing.T, k busKind) {
		ctx := context.Background()
		b := k.new(t, 0, nil)
		p, n := 8, 2000
		if testing.Short() || k.name == "redis" {
			n = 300
		}
		var received atomic.Int64
		_, err := b.Subscribe(ctx, "h.*", func(Message) { received.Add(1) })
		require.NoError(t, err)
		var wg sync.WaitGroup
		for g := 0; g < p; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < n; i++ {
					_ = b.Publish(ctx, fmt.Sprintf("h.%d", g), nil)
					if i%50 == 0 {
						s, err := b.Subscribe(ctx, fmt.Sprintf("h.%d", g), func(Message) {})
						if err == nil {
							_ = s.Unsubscribe(ctx)
						}
					}
				}
			}(g)
		}
		wg.Wait()
		eventually(t, func() bool { return received.Load() == int64(p*n) })
	})
}

// TestSubscribeAllKeepsOrderAcrossPatterns: one subscription over several patterns sees messages
// in publish order, whichever pattern matched.
func TestSubscribeAllKeepsOrderAcrossPatterns(t *testing.T) {
	forEachBus(t, func(t *testing.T, k busKind) {
		ctx := context.Background()
		b := k.new(t, 0, nil)
		var mu sync.Mutex
		var got []Message
		s, err := b.SubscribeAll(ctx, []string{"family.events", "direct.*"}, func(m Message) {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		})
		require.NoError(t, err)
		for i := 0; i < 1000; i++ {
			ch := "family.events"
			if i%3 == 0 {
				ch = fmt.Sprintf("direct.%d", i)
			}
			require.NoError(t, b.Publish(ctx, ch, []byte(fmt.Sprint(i))))
		}
		eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1000 })
		mu.Lock()
		for i, m := range got {
			require.Equal(t, fmt.Sprint(i), string(m.Payload))
			if i%3 == 0 {
				require.Equal(t, "direct.*", m.Pattern)
			} else {
				require.Equal(t, "family.events", m.Pattern)
			}
		}
		mu.Unlock()
		require.NoError(t, s.Unsubscribe(ctx))
		require.NoError(t, b.Publish(ctx, "family.events", nil))
	})
}

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Match("websocket.*.events", "websocket.participant.7f1c2a3e-0000-4000-8000-000000000001.events")
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("websocket.*", "websocket.user.u.events")
	f.Add("h[^a-c]?*", "hdxyz")
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		if !ValidPattern(pattern) {
			return
		}
		_ = Match(pattern, channel)
		if !HasMeta(pattern) {
			require.Equal(t, pattern == channel, Match(pattern, channel))
		}
	})
}
