package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestMemoryOrderAndPatterns(t *testing.T) {
	ctx := context.Background()
	b := NewMemory(MemoryConfig{})
	t.Cleanup(func() { _ = b.Close(ctx) })
	all, allMu, _ := collect(t, b, "websocket.*")
	one, oneMu, _ := collect(t, b, "websocket.user.u1.events")
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
	allMu.Lock()
	for i, m := range *all {
		require.Equal(t, fmt.Sprint(i), string(m.Payload), "order")
		require.Equal(t, "websocket.*", m.Pattern)
	}
	allMu.Unlock()
}

func TestMemoryUnsubscribeAndClose(t *testing.T) {
	ctx := context.Background()
	b := NewMemory(MemoryConfig{})
	got, mu, s := collect(t, b, "a")
	require.NoError(t, b.Publish(ctx, "a", []byte("1")))
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(*got) == 1 })
	require.NoError(t, s.Unsubscribe(ctx))
	require.NoError(t, s.Unsubscribe(ctx))
	require.NoError(t, b.Publish(ctx, "a", []byte("2")))
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	require.Len(t, *got, 1)
	mu.Unlock()
	require.NoError(t, b.Close(ctx))
	require.ErrorIs(t, b.Publish(ctx, "a", nil), ErrClosed)
	_, err := b.Subscribe(ctx, "a", func(Message) {})
	require.ErrorIs(t, err, ErrClosed)
	_, err = NewMemory(MemoryConfig{}).Subscribe(ctx, "a[", func(Message) {})
	require.ErrorIs(t, err, ErrBadPattern)
}

func TestMemoryPublishFromHandler(t *testing.T) {
	ctx := context.Background()
	b := NewMemory(MemoryConfig{})
	t.Cleanup(func() { _ = b.Close(ctx) })
	out, mu, _ := collect(t, b, "out")
	_, err := b.Subscribe(ctx, "in", func(m Message) { _ = b.Publish(ctx, "out", m.Payload) })
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		require.NoError(t, b.Publish(ctx, "in", []byte{byte(i)}))
	}
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(*out) == 100 })
}

func TestMemoryDropWhenFull(t *testing.T) {
	ctx := context.Background()
	var drops atomic.Int64
	b := NewMemory(MemoryConfig{MaxPending: 10, OnDrop: func(string, string) { drops.Add(1) }})
	t.Cleanup(func() { _ = b.Close(ctx) })
	block := make(chan struct{})
	_, err := b.Subscribe(ctx, "x", func(Message) { <-block })
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		require.NoError(t, b.Publish(ctx, "x", nil))
	}
	close(block)
	require.GreaterOrEqual(t, drops.Load(), int64(80))
}

// TestMemoryHammer publishes, subscribes and unsubscribes from many goroutines at once.
func TestMemoryHammer(t *testing.T) {
	ctx := context.Background()
	b := NewMemory(MemoryConfig{})
	t.Cleanup(func() { _ = b.Close(ctx) })
	p, n := 8, 2000
	if testing.Short() {
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

// TestSubscribeAllKeepsOrderAcrossPatterns: one subscription over several patterns sees messages
// in publish order, whichever pattern matched.
func TestSubscribeAllKeepsOrderAcrossPatterns(t *testing.T) {
	ctx := context.Background()
	b := NewMemory(MemoryConfig{})
	t.Cleanup(func() { _ = b.Close(ctx) })
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
	for i, m := range got {
		require.Equal(t, fmt.Sprint(i), string(m.Payload))
		if i%3 == 0 {
			require.Equal(t, "direct.*", m.Pattern)
		} else {
			require.Equal(t, "family.events", m.Pattern)
		}
	}
	require.NoError(t, s.Unsubscribe(ctx))
	require.NoError(t, b.Publish(ctx, "family.events", nil))
	_, err = b.SubscribeAll(ctx, nil, func(Message) {})
	require.ErrorIs(t, err, ErrBadPattern)
}
