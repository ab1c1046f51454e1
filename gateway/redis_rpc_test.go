package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

const userManagerRPC = "module.TeraServer.UserManagerModule.rpc"

// replyCounter subscribes a reply channel on Redis and counts the replies.
type replyCounter struct {
	n       atomic.Int64
	replies chan map[string]any
}

func countReplies(t *testing.T, client *redis.Client, channel string) *replyCounter {
	t.Helper()
	ps := client.Subscribe(context.Background(), channel)
	_, err := ps.Receive(context.Background()) // the subscription confirmation
	require.NoError(t, err)
	rc := &replyCounter{replies: make(chan map[string]any, 1024)}
	go func() {
		for m := range ps.Channel() {
			rc.n.Add(1)
			var v map[string]any
			_ = json.Unmarshal([]byte(m.Payload), &v)
			rc.replies <- v
		}
	}()
	t.Cleanup(func() { _ = ps.Close() })
	return rc
}

func rpcRequest(t *testing.T, method, replyTo string, id uint64) []byte {
	t.Helper()
	b, err := proto.Marshal(&opentera.RPCMessage{Method: method, ReplyTo: replyTo, Id: id, Timestamp: 1.5})
	require.NoError(t, err)
	return b
}

// TestRedisRPCRepeatedRequests: the same RPCMessage bytes published three times get three
// replies from the cluster, with one node and with two (exactly one node answers each); when the
// answering node shuts down, the other one answers the next request.
func TestRedisRPCRepeatedRequests(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			nodes, srv := startRedisNodesOn(t, n)
			client := redis.NewClient(&redis.Options{Addr: srv.Addr})
			t.Cleanup(func() { _ = client.Close() })
			rc := countReplies(t, client, "test.replies")
			req := rpcRequest(t, "online_users", "test.replies", 7)
			for i := 0; i < 3; i++ {
				require.NoError(t, client.Publish(context.Background(), userManagerRPC, req).Err())
			}
			require.Eventually(t, func() bool { return rc.n.Load() >= 3 }, 10*time.Second, 10*time.Millisecond)
			// A marker request after them: once its reply is in, every earlier reply is too.
			require.NoError(t, client.Publish(context.Background(), userManagerRPC, rpcRequest(t, "online_users", "test.replies", 8)).Err())
			require.Eventually(t, func() bool { return rc.n.Load() >= 4 }, 10*time.Second, 10*time.Millisecond)
			for i := 0; i < 4; i++ {
				r := <-rc.replies
				require.Equal(t, "OK", r["status"], "%v", r)
			}
			require.Equal(t, int64(4), rc.n.Load(), "one reply per publication")
			if n == 1 {
				return
			}
			// Shut the nodes down one by one; the survivor answers.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, nodes[0].gw.Shutdown(ctx))
			require.Eventually(t, func() bool {
				before := rc.n.Load()
				require.NoError(t, client.Publish(context.Background(), userManagerRPC, req).Err())
				select {
				case <-rc.replies:
					return rc.n.Load() == before+1
				case <-time.After(500 * time.Millisecond):
					return false
				}
			}, 15*time.Second, 10*time.Millisecond, "the remaining node takes the lease over")
		})
	}
}

// TestPresenceRPCOrder: a presence module message followed at once by an RPC (pipelined on one
// Redis connection) gets a reply that reflects the message, every time: the user manager's
// messages and requests are read in one ordered stream. On Redis with two nodes, and on the
// in-memory bus through the gateway's own Publish.
func TestPresenceRPCOrder(t *testing.T) {
	const pairs = 300
	event := func(i int, connected bool) []byte {
		typ := opentera.DeviceEvent_DEVICE_CONNECTED
		if !connected {
			typ = opentera.DeviceEvent_DEVICE_DISCONNECTED
		}
		payload, err := presence.EncodeModuleMessage("test", topic.UserManagerMessages, &opentera.DeviceEvent{DeviceUuid: directory.DemoRobot1UUID, Type: typ})
		require.NoError(t, err)
		return payload
	}
	check := func(t *testing.T, publishPair func(msg, req []byte), replies *replyCounter, wait func(int64)) {
		for i := 0; i < pairs; i++ {
			connected := i%2 == 0
			publishPair(event(i, connected), rpcRequest(t, "online_devices", "test.order", uint64(i)))
			wait(int64(i + 1))
			r := <-replies.replies
			online := fmt.Sprint(r["return_value"]) != "[]"
			require.Equal(t, connected, online, "pair %d: the reply must reflect the message before it: %v", i, r)
		}
	}
	t.Run("redis", func(t *testing.T) {
		_, srv := startRedisNodesOn(t, 2)
		client := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = client.Close() })
		rc := countReplies(t, client, "test.order")
		check(t, func(msg, req []byte) {
			pipe := client.Pipeline()
			pipe.Publish(context.Background(), topic.UserManagerMessages, msg)
			pipe.Publish(context.Background(), userManagerRPC, req)
			_, err := pipe.Exec(context.Background())
			require.NoError(t, err)
		}, rc, func(n int64) {
			require.Eventually(t, func() bool { return rc.n.Load() >= n }, 10*time.Second, time.Millisecond)
		})
	})
	t.Run("memory", func(t *testing.T) {
		e := startGateway(t, nil)
		rc := &replyCounter{replies: make(chan map[string]any, pairs)}
		sub, err := e.gw.SubscribeTest(context.Background(), "test.order", func(payload []byte) {
			var v map[string]any
			_ = json.Unmarshal(payload, &v)
			rc.n.Add(1)
			rc.replies <- v
		})
		require.NoError(t, err)
		t.Cleanup(sub)
		check(t, func(msg, req []byte) {
			require.NoError(t, e.gw.Publish(context.Background(), topic.UserManagerMessages, msg))
			require.NoError(t, e.gw.Publish(context.Background(), userManagerRPC, req))
		}, rc, func(n int64) {
			require.Eventually(t, func() bool { return rc.n.Load() >= n }, 10*time.Second, time.Millisecond)
		})
	})
}

// TestRedisStationCountedClusterWide: a station's device is announced like every socket, so a
// node that starts after the station connected lists it online, and its close takes it offline
// everywhere.
func TestRedisStationCountedClusterWide(t *testing.T) {
	srv := testutil.StartRedis(t)
	ids := stationIdentities(t)
	mk := func() *env {
		return startGateway(t, func(c *gateway.Config) { c.Redis = srv.URL; c.Identities = ids; c.JWTKey = "station-cluster-test-key" })
	}
	a := mk()
	st, code := a.rawStation(stationToken)
	require.Equal(t, http.StatusSwitchingProtocols, code)
	require.Eventually(t, func() bool { return strings.Contains(a.returnValue("online_devices"), stationUUID) }, 10*time.Second, 10*time.Millisecond)
	late := mk()
	require.Equal(t, `["`+stationUUID+`"]`, late.returnValue("online_devices"), "a later node counts the station")
	require.NoError(t, st.ws.Close())
	require.Eventually(t, func() bool { return late.returnValue("online_devices") == `[]` }, 10*time.Second, 10*time.Millisecond)
}
