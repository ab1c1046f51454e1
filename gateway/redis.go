package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// redisDialTimeout bounds the first PING of New: a wrong --redis fails the start, clearly.
const redisDialTimeout = 5 * time.Second

// openRedis connects to cfg.Redis (SPEC §9) and checks that it answers.
func (g *Gateway) openRedis() error {
	opt, err := redis.ParseURL(g.cfg.Redis)
	if err != nil {
		return fmt.Errorf("%w: redis %q: %w", ErrInvalidConfig, g.cfg.Redis, err)
	}
	opt.ClientName = "teragate"
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), redisDialTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return fmt.Errorf("gateway: redis %s: %w", opt.Addr, err)
	}
	g.redis = c
	g.metrics.RedisEnabled()
	g.log.Info("using Redis for the bus, tickets, revocations and presence", "addr", opt.Addr, "db", opt.DB)
	return nil
}

// authOptions returns the authenticator's options: revocations in Redis when it is configured,
// so a logout on one node is honoured by every node.
func (g *Gateway) authOptions() []auth.Option {
	if g.redis == nil {
		return nil
	}
	return []auth.Option{auth.WithRevocations(auth.NewRedisRevocations(g.redis))}
}

// newTickets returns the websocket ticket store: in Redis when configured (a login on one node,
// its websocket on another), in memory otherwise.
func (g *Gateway) newTickets() auth.Tickets {
	if g.redis != nil {
		return auth.NewRedisTickets(g.redis, time.Duration(g.cfg.TicketTTL), nil)
	}
	return auth.NewMemoryTickets(time.Duration(g.cfg.TicketTTL), nil)
}

// newBus returns the event bus: Redis pub/sub when configured, in memory otherwise.
func (g *Gateway) newBus() (bus.Bus, error) {
	onDrop := func(string, string) { g.metrics.Dropped(metrics.DropBusOverflow, 1) }
	if g.redis == nil {
		return bus.NewMemory(bus.MemoryConfig{OnDrop: onDrop}), nil
	}
	return bus.NewRedis(bus.RedisConfig{
		Client:      g.redis,
		OnDrop:      onDrop,
		OnReconnect: func() { g.metrics.RedisReconnect("bus") },
		Logger:      g.log.Named("bus"),
	})
}

// closeRedis closes the Redis client, after the bus and everything else using it.
func (g *Gateway) closeRedis() error {
	if g.redis == nil {
		return nil
	}
	return g.redis.Close()
}
