package rpc_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// TestRedisLease: of two nodes, exactly one holds a module's lease; a released lease is taken
// over at once, an abandoned one (the holder stopped renewing, as a killed node does) after its
// TTL; the holder stops answering before its lease can expire in Redis.
func TestRedisLease(t *testing.T) {
	srv := testutil.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	const ttl = 600 * time.Millisecond
	a := rpc.NewRedisLease(rpc.RedisLeaseConfig{Client: client, NodeID: "a", TTL: ttl})
	b := rpc.NewRedisLease(rpc.RedisLeaseConfig{Client: client, NodeID: "b", TTL: ttl})
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)

	a.Hold("M")
	b.Hold("M")
	require.True(t, a.Held("M"), "the first node takes the free lease at once")
	require.False(t, b.Held("M"))
	require.False(t, a.Held("Other"), "a module never held")
	require.Never(t, func() bool { return a.Held("M") == b.Held("M") }, 2*ttl, 5*time.Millisecond, "one holder at a time while a renews")

	a.Release("M")
	require.False(t, a.Held("M"))
	require.Eventually(t, func() bool { return b.Held("M") }, 2*ttl, 5*time.Millisecond, "a released lease is taken over")

	// b "dies": it stops renewing without releasing (its key stays until the TTL).
	c := rpc.NewRedisLease(rpc.RedisLeaseConfig{Client: client, NodeID: "c", TTL: ttl})
	t.Cleanup(c.Close)
	c.Hold("M")
	require.False(t, c.Held("M"))
	b.Abandon()
	require.Eventually(t, func() bool { return !b.Held("M") }, ttl, 5*time.Millisecond, "an abandoned holder stops answering within its TTL")
	require.Eventually(t, func() bool { return c.Held("M") }, 3*ttl, 5*time.Millisecond, "another node takes an abandoned lease after its TTL")
}
