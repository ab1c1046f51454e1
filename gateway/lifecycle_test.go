package gateway_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// redisClients returns how many clients the redis-server has, the caller's own included.
func redisClients(t *testing.T, c *redis.Client) int {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	require.NoError(t, err)
	return len(strings.Split(strings.TrimSpace(list), "\n"))
}

// TestFailedStartReleases: a Start that fails (its port is taken) stops and closes everything it
// and New started — Redis connections, goroutines — and a later Shutdown does nothing.
func TestFailedStartReleases(t *testing.T) {
	srv := testutil.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	taken := gatewaytest.Start(t, nil)
	baseClients := redisClients(t, client)
	baseGoroutines := runtime.NumGoroutine()

	cfg := gatewaytest.Config(t)
	cfg.Listen = taken.Addr().String()
	cfg.Redis = srv.URL
	gw, err := gateway.New(cfg)
	require.NoError(t, err)
	require.Greater(t, redisClients(t, client), baseClients, "the node uses Redis")
	err = gw.Start(context.Background())
	require.ErrorContains(t, err, "listen")
	require.Eventually(t, func() bool { return redisClients(t, client) == baseClients }, 10*time.Second, 20*time.Millisecond,
		"every Redis connection of the failed node is closed")
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= baseGoroutines+2 }, 10*time.Second, 20*time.Millisecond,
		"the failed node's goroutines ended")
	require.NoError(t, gw.Shutdown(context.Background()))
}

// TestFailedNewReleases: New failing after it opened Redis, the bus and the plugin host (here
// its TLS certificate is missing, the last thing New reads) closes its Redis connections.
func TestFailedNewReleases(t *testing.T) {
	srv := testutil.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	base := redisClients(t, client)
	missing := filepath.Join(t.TempDir(), "missing")
	cfg := gatewaytest.Config(t)
	cfg.Redis = srv.URL
	cfg.Insecure = false
	cfg.TLSCert, cfg.TLSKey = missing+".pem", missing+".key"
	_, err := gateway.New(cfg)
	require.ErrorContains(t, err, "TLS certificate")
	require.Eventually(t, func() bool { return redisClients(t, client) == base }, 10*time.Second, 20*time.Millisecond)
}
