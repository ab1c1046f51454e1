package gateway

import (
	"context"
	"time"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/hub"
)

// initHistory puts the event history in front of the bus (unless history_max_events is -1): in
// Redis with --redis, so clients resume on any node, in memory otherwise. The events the router
// delivers to sockets are then recorded as they are published, with their position.
func (g *Gateway) initHistory() error {
	if g.cfg.HistoryMaxEvents < 0 {
		return nil
	}
	cfg := history.Config{MaxEvents: g.cfg.HistoryMaxEvents, MaxAge: time.Duration(g.cfg.HistoryMaxAge)}
	var bytes func() float64
	if g.redis != nil {
		ctx, cancel := context.WithTimeout(context.Background(), redisDialTimeout)
		defer cancel()
		h, err := history.NewRedis(ctx, history.RedisConfig{Config: cfg, Client: g.redis, PositionChannel: g.positionChannel()})
		if err != nil {
			return err
		}
		g.hist = h
	} else {
		mb, ok := g.bus.(bus.Positioner)
		if !ok {
			return nil
		}
		h := history.NewMemory(mb, cfg)
		g.hist = h
		bytes = func() float64 { return float64(h.Bytes()) }
	}
	g.bus = &history.Bus{Bus: g.bus, Store: g.hist, Record: hub.Recorded}
	g.metrics.History(func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := g.hist.Len(ctx)
		return float64(n)
	}, bytes)
	return nil
}

// positionChannel is the channel the Redis history announces positions on ("" without Redis or
// without history).
func (g *Gateway) positionChannel() string {
	if g.redis == nil || g.cfg.HistoryMaxEvents < 0 {
		return ""
	}
	return history.DefaultPositionChannel
}
