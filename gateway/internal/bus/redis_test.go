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

// TestRedisTwoNodes: two buses on one Redis (two gateway nodes) see each other's messages, and a
// raw PUBLISH (an OpenTera service) reaches them on the OpenTera channel name, bytes unchanged.
func TestRedisTwoNodes(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	a := newRedisBus(t, srv.URL, RedisConfig{})
	b := newRedisBus(t, srv.URL, RedisConfig{})
	gotA, muA, _ := collect(t, a, "module.TeraServer.*.events")
	gotB, muB, _ := collect(t, b, "module.TeraServer.*.events")
	require.NoError(t, a.Publish(ctx, "module.TeraServer.UserManagerModule.events", []byte("from a")))
	require.NoError(t, b.Publish(ctx, "module.TeraServer.UserManagerModule.events", []byte("from b")))
	opt, err := redis.ParseURL(srv.URL)
	require.NoError(t, err)
	raw := redis.NewClient(opt)
	t.Cleanup(func() { _ = raw.Close() })
	require.NoError(t, raw.Publish(ctx, "module.TeraServer.FlaskModule.events", []byte{0, 1, 0xff}).Err())
	for _, c := range []struct {
		got *[]Message
		mu  *sync.Mutex
	}{{gotA, muA}, {gotB, muB}} {
		eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(*c.got) == 3 })
		c.mu.Lock()
		require.Equal(t, "from a", string((*c.got)[0].Payload))
		require.Equal(t, "from b", string((*c.got)[1].Payload))
		require.Equal(t, []byte{0, 1, 0xff}, (*c.got)[2].Payload)
		require.Equal(t, "module.TeraServer.FlaskModule.events", (*c.got)[2].Channel)
		c.mu.Unlock()
	}
}

// TestRedisResubscribesAfterRestart: when redis-server restarts, every subscription is restored
// (logged and counted by OnReconnect) and messages published afterwards are delivered again.
func TestRedisResubscribesAfterRestart(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	var reconnects atomic.Int64
	b := newRedisBus(t, srv.URL, RedisConfig{OnReconnect: func([]string) { reconnects.Add(1) }, RetryBackoff: 50 * time.Millisecond})
	got, mu, _ := collect(t, b, "r.*")
	other, otherMu, err := func() (*[]Message, *sync.Mutex, error) {
		var m sync.Mutex
		var g []Message
		_, err := b.SubscribeAll(ctx, []string{"s.one", "s.two"}, func(msg Message) { m.Lock(); g = append(g, msg); m.Unlock() })
		return &g, &m, err
	}()
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "r.1", []byte("before")))
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(*got) == 1 })

	srv.Restart(t)
	eventually(t, func() bool { return reconnects.Load() == 2 })
	require.NoError(t, b.Publish(ctx, "r.2", []byte("after")))
	require.NoError(t, b.Publish(ctx, "s.two", []byte("two")))
	require.NoError(t, b.Publish(ctx, "s.one", []byte("one")))
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(*got) == 2 })
	eventually(t, func() bool { otherMu.Lock(); defer otherMu.Unlock(); return len(*other) == 2 })
	mu.Lock()
	require.Equal(t, "after", string((*got)[1].Payload))
	mu.Unlock()
	otherMu.Lock()
	require.Equal(t, "two", string((*other)[0].Payload))
	require.Equal(t, "one", string((*other)[1].Payload))
	otherMu.Unlock()
}

// BenchmarkBusPublishDeliver measures publish → handler for each implementation: b.N messages of
// 100 bytes published by one goroutine, the timer stopped once the last one is delivered.
func BenchmarkBusPublishDeliver(b *testing.B) {
	payload := make([]byte, 100)
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var bus Bus
			if name == "memory" {
				bus = NewMemory(MemoryConfig{})
			} else {
				srv := testutil.StartRedis(b)
				opt, err := redis.ParseURL(srv.URL)
				require.NoError(b, err)
				c := redis.NewClient(opt)
				defer c.Close()
				rb, err := NewRedis(RedisConfig{Client: c})
				require.NoError(b, err)
				bus = rb
			}
			defer bus.Close(ctx)
			var got atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			_, err := bus.Subscribe(ctx, "bench.*", func(Message) {
				if got.Add(1) == n {
					close(done)
				}
			})
			require.NoError(b, err)
			ch := fmt.Sprintf("bench.%d", 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := bus.Publish(ctx, ch, payload); err != nil {
					b.Fatal(err)
				}
			}
			<-done
		})
	}
}
