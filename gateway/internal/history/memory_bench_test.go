package history_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/proto/opentera"
)

// BenchmarkHistoryKeep10k records 10,000 events (a ParticipantEvent as services publish it) per
// op and reports the memory they hold: the in-memory history's estimate (Bytes) and, in Redis,
// the stream's MEMORY USAGE, next to the payload bytes themselves (the floor any store pays).
func BenchmarkHistoryKeep10k(b *testing.B) {
	const n = 10000
	a, err := opentera.NewAny(&opentera.ParticipantEvent{ParticipantUuid: "00000000-0000-4000-8000-000000000101",
		Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED, ParticipantName: "Pat Demo"})
	if err != nil {
		b.Fatal(err)
	}
	payload, err := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1732145425.5,
		Topic: "module.TeraServer.UserManagerModule.events"}, Events: []*anypb.Any{a}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("store=memory", func(b *testing.B) {
		b.ReportAllocs()
		var bytes int64
		for range b.N {
			mb := bus.NewMemory(bus.MemoryConfig{})
			h := history.NewMemory(mb, history.Config{MaxEvents: n})
			for range n {
				if err := h.Publish(ctx, "module.TeraServer.UserManagerModule.events", append([]byte(nil), payload...)); err != nil {
					b.Fatal(err)
				}
			}
			bytes = h.Bytes()
			_ = mb.Close(ctx)
		}
		b.ReportMetric(float64(bytes)/(1<<20), "MiB/10k-events")
		b.ReportMetric(float64(len(payload)*n)/(1<<20), "payload-MiB/10k-events")
	})
	b.Run("store=redis", func(b *testing.B) {
		srv := testutil.StartRedis(b)
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer c.Close()
		mb, err := bus.NewRedis(bus.RedisConfig{Client: c, PositionChannel: history.DefaultPositionChannel})
		if err != nil {
			b.Fatal(err)
		}
		defer mb.Close(ctx)
		b.ReportAllocs()
		var usage int64
		for range b.N {
			if err := c.FlushAll(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			h, err := history.NewRedis(ctx, history.RedisConfig{Client: c, Config: history.Config{MaxEvents: n}})
			if err != nil {
				b.Fatal(err)
			}
			for range n {
				if err := h.Publish(ctx, "module.TeraServer.UserManagerModule.events", payload); err != nil {
					b.Fatal(err)
				}
			}
			if usage, err = c.MemoryUsage(ctx, "teragate:history", 0).Result(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(usage)/(1<<20), "MiB/10k-events")
		b.ReportMetric(float64(len(payload)*n)/(1<<20), "payload-MiB/10k-events")
	})
}
