package presence

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// clusterNode is one node of a cluster test: a Redis bus, its cluster side and its replica.
type clusterNode struct {
	c   *RedisCluster
	r   *Registry
	bus *bus.Redis
}

func newClusterNode(t *testing.T, url, id string) *clusterNode {
	t.Helper()
	ctx := context.Background()
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	client := redis.NewClient(opt)
	b, err := bus.NewRedis(bus.RedisConfig{Client: client})
	require.NoError(t, err)
	dir := directory.NewStore(directory.Demo())
	c, err := NewRedisCluster(RedisClusterConfig{Client: client, Directory: dir, NodeID: id, NodeTTL: 600 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	r := New(Config{Bus: b, Directory: dir, Cluster: c, ResyncDelay: 250 * time.Millisecond})
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() {
		_ = r.Stop(ctx)
		_ = c.Stop(ctx)
		_ = b.Close(ctx)
		_ = client.Close()
	})
	return &clusterNode{c: c, r: r, bus: b}
}

// announce opens (or closes) one socket of the user on the node.
func (n *clusterNode) announce(t *testing.T, uuid string, on bool) {
	t.Helper()
	payload, err := EncodeModuleMessage("websocket.user."+uuid, topic.UserManagerMessages, userConn(uuid, on))
	require.NoError(t, err)
	require.NoError(t, n.c.Announce(context.Background(), directory.KindUser, uuid, on, payload))
}

// kill stops the node's heartbeat without unregistering it, as SIGKILL would.
func (n *clusterNode) kill() {
	n.c.once.Do(func() {
		close(n.c.stop)
		n.c.wg.Wait()
	})
}

// TestRedisClusterKilledNode: a node dies holding two sockets of alice while node A holds a third.
// Both live nodes race to reap it: alice's count drops by two on every replica (she stays online
// thanks to A), a later close on A publishes USER_DISCONNECTED exactly once, and the dead node's
// own late close (a paused node coming back) is not counted again.
func TestRedisClusterKilledNode(t *testing.T) {
	srv := testutil.StartRedis(t)
	a := newClusterNode(t, srv.URL, "a")
	b := newClusterNode(t, srv.URL, "b")
	dead := newClusterNode(t, srv.URL, "dead")
	disconnects := countUserEvents(t, a.bus, opentera.UserEvent_USER_DISCONNECTED)
	alice := directory.DemoAliceUUID
	a.announce(t, alice, true)
	dead.announce(t, alice, true)
	dead.announce(t, alice, true)
	for _, n := range []*clusterNode{a, b, dead} {
		require.Eventually(t, func() bool { return n.r.Connections(directory.KindUser, alice) == 3 }, 5*time.Second, 5*time.Millisecond)
	}

	dead.kill()
	for _, n := range []*clusterNode{a, b} {
		require.Eventually(t, func() bool { return n.r.Connections(directory.KindUser, alice) == 1 }, 10*time.Second, 10*time.Millisecond)
	}
	dead.announce(t, alice, false) // the zombie's close: suppressed by the reaper's tombstone
	bob := directory.DemoBobUUID
	a.announce(t, bob, true) // published after the zombie's close: once bob is online, it has been applied
	for _, n := range []*clusterNode{a, b} {
		require.Eventually(t, func() bool { return n.r.Online(directory.KindUser, bob) }, 5*time.Second, 5*time.Millisecond)
		require.Equal(t, 1, n.r.Connections(directory.KindUser, alice), "the zombie's close was not counted")
	}
	a.announce(t, alice, false)
	for _, n := range []*clusterNode{a, b} {
		require.Eventually(t, func() bool { return !n.r.Online(directory.KindUser, alice) }, 5*time.Second, 5*time.Millisecond)
	}
	require.Eventually(t, func() bool { return disconnects.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	// A node that starts now sees only bob (the dead node's hash is gone).
	c := newClusterNode(t, srv.URL, "c")
	require.Equal(t, []string{bob}, c.r.OnlineList(directory.KindUser))
	require.EqualValues(t, 1, disconnects.Load(), "USER_DISCONNECTED once, not once per node")
}

// TestRedisClusterIdenticalAnnounces: two sockets of one entity announced in the same
// microsecond (identical bytes but for the registry's stamp) are two messages: both are counted
// on every node; the entity's CONNECTED is published once (0 → 1), and the second socket is
// greeted alone on its own node.
func TestRedisClusterIdenticalAnnounces(t *testing.T) {
	srv := testutil.StartRedis(t)
	a := newClusterNode(t, srv.URL, "a")
	b := newClusterNode(t, srv.URL, "b")
	connects := countUserEvents(t, a.bus, opentera.UserEvent_USER_CONNECTED)
	var mu sync.Mutex
	var greets int
	alice := directory.DemoAliceUUID
	greet := func(ev proto.Message) {
		require.Equal(t, opentera.UserEvent_USER_CONNECTED, ev.(*opentera.UserEvent).GetType())
		mu.Lock()
		greets++
		mu.Unlock()
	}
	for range 2 {
		require.NoError(t, a.r.Announce(context.Background(), directory.KindUser, alice, true, greet))
	}
	for _, n := range []*clusterNode{a, b} {
		require.Eventually(t, func() bool { return n.r.Connections(directory.KindUser, alice) == 2 }, 5*time.Second, 5*time.Millisecond)
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return connects.Load() == 1 && greets == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Never(t, func() bool { mu.Lock(); defer mu.Unlock(); return connects.Load() != 1 || greets != 1 }, 200*time.Millisecond, 10*time.Millisecond)

	payload, err := EncodeModuleMessage("websocket.user."+alice, topic.UserManagerMessages, userConn(alice, true))
	require.NoError(t, err)
	var msg opentera.TeraModuleMessage
	require.NoError(t, proto.Unmarshal(stamp(payload, 77), &msg))
	require.Equal(t, uint32(77), msg.GetHead().GetSeq())
	require.Equal(t, "websocket.user."+alice, msg.GetHead().GetSource(), "the rest of the header is kept")
	require.Len(t, msg.GetData(), 1)
}

// TestRedisClusterHeartbeats: Heartbeats reports the nodes whose heartbeat key lives, with its
// time; a node killed (no more heartbeats) drops out after its TTL, one stopped at once, and an
// unknown id is never reported.
func TestRedisClusterHeartbeats(t *testing.T) {
	srv := testutil.StartRedis(t)
	a := newClusterNode(t, srv.URL, "a")
	b := newClusterNode(t, srv.URL, "b")
	dead := newClusterNode(t, srv.URL, "dead")
	ctx := context.Background()
	ids := []string{"a", "b", "dead", "never"}
	live := func() []string {
		hb, err := a.c.Heartbeats(ctx, ids)
		require.NoError(t, err)
		var out []string
		for _, id := range ids {
			if at, ok := hb[id]; ok {
				require.False(t, at.IsZero())
				out = append(out, id)
			}
		}
		return out
	}
	require.Equal(t, []string{"a", "b", "dead"}, live())
	empty, err := a.c.Heartbeats(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, empty)

	dead.kill()
	require.Eventually(t, func() bool { return slices.Equal(live(), []string{"a", "b"}) }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, b.c.Stop(ctx))
	require.Equal(t, []string{"a"}, live())
}

// countUserEvents counts the UserEvents of type typ that b receives on the user manager's events
// topic.
func countUserEvents(t *testing.T, b *bus.Redis, typ opentera.UserEvent_EventType) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	onUserEvents(t, b, func(ev *opentera.UserEvent) {
		if ev.GetType() == typ {
			n.Add(1)
		}
	})
	return &n
}

// onUserEvents calls fn with each UserEvent that b receives on the user manager's events topic.
func onUserEvents(t *testing.T, b *bus.Redis, fn func(*opentera.UserEvent)) {
	t.Helper()
	_, err := b.Subscribe(context.Background(), topic.UserManagerEvents, func(m bus.Message) {
		var te opentera.TeraEvent
		if proto.Unmarshal(m.Payload, &te) != nil {
			return
		}
		for _, x := range te.GetEvents() {
			var ev opentera.UserEvent
			if x.UnmarshalTo(&ev) == nil {
				fn(&ev)
			}
		}
	})
	require.NoError(t, err)
}
