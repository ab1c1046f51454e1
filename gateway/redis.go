package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// redisDialTimeout bounds the first PING of New: a wrong --redis fails the start, clearly.
const redisDialTimeout = 5 * time.Second

// openRedis connects to cfg.Redis, when it is set, and checks that it answers.
func (g *Gateway) openRedis() error {
	if g.cfg.Redis == "" {
		return nil
	}
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
	g.log.Info("using Redis for the bus, tickets, revocations, presence and rooms", "addr", opt.Addr, "db", opt.DB)
	return nil
}

// authOptions returns the authenticator's options: the presence registry's blocklist, and
// revocations in Redis when it is configured, so a logout on one node is honoured by every node.
func (g *Gateway) authOptions() []auth.Option {
	// Entities OpenTera's database disabled or deleted are refused (presence follows its events).
	opts := []auth.Option{auth.WithBlocklist(func(k directory.Kind, uuid string) bool { return g.pres != nil && g.pres.Blocked(k, uuid) })}
	if g.redis != nil {
		opts = append(opts, auth.WithRevocations(auth.NewRedisRevocations(g.redis)))
	}
	return opts
}

// initBus opens the websocket ticket store and the event bus: in Redis when configured (a login
// on one node, its websocket on another; events published on any node), in memory otherwise.
func (g *Gateway) initBus() (err error) {
	onDrop := func(string, string) { g.metrics.Dropped(metrics.DropBusOverflow, 1) }
	if g.redis == nil {
		g.tickets = auth.NewMemoryTickets(time.Duration(g.cfg.TicketTTL), nil)
		g.bus = bus.NewMemory(bus.MemoryConfig{OnDrop: onDrop})
		return nil
	}
	g.tickets = auth.NewRedisTickets(g.redis, time.Duration(g.cfg.TicketTTL), nil)
	g.bus, err = bus.NewRedis(bus.RedisConfig{
		Client:      g.redis,
		OnDrop:      onDrop,
		OnReconnect: g.busReconnected,
		Logger:      g.log.Named("bus"),
		// The event history announces positions on it (history.go).
		PositionChannel: g.positionChannel(),
	})
	return err
}

// closeRedis closes the Redis client, after the bus and everything else using it.
func (g *Gateway) closeRedis() error {
	if g.redis == nil {
		return nil
	}
	return g.redis.Close()
}

// newCluster prepares the cluster side of the presence registry when Redis is configured.
func (g *Gateway) newCluster() error {
	if g.redis == nil {
		return nil
	}
	c, err := presence.NewRedisCluster(presence.RedisClusterConfig{
		Client:    g.redis,
		Directory: g.dir,
		NodeTTL:   time.Duration(g.cfg.RedisNodeTTL),
		Logger:    g.log.Named("presence"),
		OnReaped:  g.metrics.PresenceReaped,
	})
	if err != nil {
		return err
	}
	g.cluster = c
	return nil
}

// presenceCluster returns the registry's cluster, or nil (an untyped nil) on a single node.
func (g *Gateway) presenceCluster() presence.Cluster {
	if g.cluster == nil {
		return nil
	}
	return g.cluster
}

func (g *Gateway) startCluster(ctx context.Context) error {
	if g.cluster == nil {
		return nil
	}
	return g.cluster.Start(ctx)
}

// stopCluster unregisters the node once its sockets are closed.
func (g *Gateway) stopCluster(ctx context.Context) error {
	if g.cluster == nil {
		return nil
	}
	return g.cluster.Stop(ctx)
}

// NodeID returns the node's id in a Redis cluster, or "" on a single node.
func (g *Gateway) NodeID() string {
	if g.cluster == nil {
		return ""
	}
	return g.cluster.NodeID()
}

// rpcLease returns, with Redis, how the nodes agree on which one answers a module's bus RPC
// requests (every node serves the same modules on the shared bus): one lease holder per module,
// with failover after redis_node_ttl. Nil on a single node.
func (g *Gateway) rpcLease() rpc.Lease {
	if g.cluster == nil {
		return nil
	}
	g.lease = rpc.NewRedisLease(rpc.RedisLeaseConfig{Client: g.redis, NodeID: g.cluster.NodeID(),
		TTL: time.Duration(g.cfg.RedisNodeTTL), Logger: g.log.Named("rpc.lease")})
	return g.lease
}

// busReconnected counts a restored Redis subscription. When it is the presence subscription,
// messages were lost meanwhile: the node checks its own registration at once (after a Redis
// restart it rewrites its ownership, so its sockets' closes count again, and tells the other
// replicas), then has its replica reload the cluster's ownership hashes once every live node has
// rewritten its own (presence.Registry.ScheduleResync): the entities that came or left meanwhile
// get their CONNECTED or DISCONNECTED event then.
func (g *Gateway) busReconnected(patterns []string) {
	g.metrics.RedisReconnect("bus")
	if g.cluster == nil || g.pres == nil || !slices.Contains(patterns, topic.UserManagerMessages) {
		return
	}
	ttl := time.Duration(g.cfg.RedisNodeTTL)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*ttl)
		defer cancel()
		if err := g.cluster.Check(ctx); err != nil && !errors.Is(err, redis.ErrClosed) {
			g.log.Warn("presence registration check after a Redis reconnect failed", "error", err)
		}
		g.pres.ScheduleResync()
	}()
}

// resyncDelay is how long a replica waits, after a sign that presence messages were lost, before
// it reloads the cluster's snapshot: a heartbeat period (every node checks its registration that
// often) and a margin.
func (g *Gateway) resyncDelay() time.Duration {
	ttl := time.Duration(g.cfg.RedisNodeTTL)
	return ttl/3 + ttl/10
}
