package presence

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// lostAnnounce opens (or closes) a socket of the user on the node the way Announce does, except
// that its module message never reaches any replica: it was published while their subscriptions
// were down (a Redis restart), so only the node's ownership and its hash know of it.
func (n *clusterNode) lostAnnounce(t *testing.T, uuid string, on bool) {
	t.Helper()
	f := field(directory.KindUser, uuid)
	delta := int64(1)
	if !on {
		delta = -1
	}
	left, err := n.c.cfg.Client.HIncrBy(context.Background(), redisConnsPrefix+n.c.id, f, delta).Result()
	require.NoError(t, err)
	if left <= 0 {
		require.NoError(t, n.c.cfg.Client.HDel(context.Background(), redisConnsPrefix+n.c.id, f).Err())
	}
	n.c.ownLock.Lock()
	defer n.c.ownLock.Unlock()
	if n.c.own[f] += int(delta); n.c.own[f] <= 0 {
		delete(n.c.own, f)
	}
}

// userEvents records the user CONNECTED and DISCONNECTED events published on the user manager's
// events topic, as "<uuid> <type>".
type userEvents struct {
	mu  sync.Mutex
	got []string
}

func recordUserEvents(t *testing.T, b *bus.Redis) *userEvents {
	t.Helper()
	ue := &userEvents{}
	onUserEvents(t, b, func(ev *opentera.UserEvent) {
		ue.mu.Lock()
		ue.got = append(ue.got, ev.GetUserUuid()+" "+ev.GetType().String())
		ue.mu.Unlock()
	})
	return ue
}

// until publishes a marker event and returns what was recorded before it: every event published
// before the marker has been received by then.
func (ue *userEvents) until(t *testing.T, b *bus.Redis) []string {
	t.Helper()
	payload, err := encodeAny(topic.UserManagerEvents, mustAny(t, &opentera.UserEvent{UserUuid: "marker", Type: opentera.UserEvent_USER_CONNECTED}))
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), topic.UserManagerEvents, payload))
	var out []string
	require.Eventually(t, func() bool {
		ue.mu.Lock()
		defer ue.mu.Unlock()
		for i, s := range ue.got {
			if s == "marker USER_CONNECTED" {
				out = append([]string(nil), ue.got[:i]...)
				ue.got = ue.got[i+1:]
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond)
	return out
}

// connected waits until the CONNECTED events of uuids have been recorded (the replica that claims
// an announce publishes its event after counting it, so a replica's count does not tell), then
// checks that nothing else was.
func (ue *userEvents) connected(t *testing.T, b *bus.Redis, uuids ...string) {
	t.Helper()
	var want []string
	for _, u := range uuids {
		want = append(want, u+" USER_CONNECTED")
	}
	require.Eventually(t, func() bool {
		ue.mu.Lock()
		defer ue.mu.Unlock()
		return len(ue.got) >= len(want)
	}, 5*time.Second, 5*time.Millisecond)
	require.ElementsMatch(t, want, ue.until(t, b))
}

// aliceAndBobOnline starts recording the user events that node a receives, opens a socket of
// alice on aliceOn and one of bob on bobOn (each a or b, the cluster's two nodes), waits until
// both replicas count them and their CONNECTED events have been recorded, and returns the
// recorder, emptied.
func aliceAndBobOnline(t *testing.T, a, b, aliceOn, bobOn *clusterNode) *userEvents {
	t.Helper()
	alice, bob := directory.DemoAliceUUID, directory.DemoBobUUID
	events := recordUserEvents(t, a.bus)
	aliceOn.announce(t, alice, true)
	bobOn.announce(t, bob, true)
	for _, n := range []*clusterNode{a, b} {
		require.Eventually(t, func() bool { return n.r.Online(directory.KindUser, alice) && n.r.Online(directory.KindUser, bob) },
			5*time.Second, 5*time.Millisecond)
	}
	events.connected(t, a.bus, alice, bob)
	return events
}

// TestRedisResyncPublishesWhatWasMissed: a socket opens or closes on node A while no replica
// hears of it (its module message is lost), so both replicas count the wrong thing. When both
// reload the cluster's snapshot, the entity's state is right on both and its CONNECTED or
// DISCONNECTED event is published exactly once, so that clients learn it too; a resync that
// changes nothing publishes nothing.
func TestRedisResyncPublishesWhatWasMissed(t *testing.T) {
	alice, bob := directory.DemoAliceUUID, directory.DemoBobUUID
	tests := []struct {
		name   string
		lost   func(t *testing.T, a *clusterNode) // the announces no replica hears of
		online map[string]bool                    // after the resync
		events []string
	}{
		{"a close", func(t *testing.T, a *clusterNode) { a.lostAnnounce(t, alice, false) },
			map[string]bool{alice: false, bob: true}, []string{alice + " USER_DISCONNECTED"}},
		{"an open", func(t *testing.T, a *clusterNode) { a.lostAnnounce(t, directory.DemoAdminUUID, true) },
			map[string]bool{alice: true, bob: true, directory.DemoAdminUUID: true}, []string{directory.DemoAdminUUID + " USER_CONNECTED"}},
		{"a close and an open", func(t *testing.T, a *clusterNode) {
			a.lostAnnounce(t, bob, false)
			a.lostAnnounce(t, directory.DemoAdminUUID, true)
		}, map[string]bool{alice: true, bob: false, directory.DemoAdminUUID: true},
			[]string{directory.DemoAdminUUID + " USER_CONNECTED", bob + " USER_DISCONNECTED"}},
		{"nothing", func(*testing.T, *clusterNode) {}, map[string]bool{alice: true, bob: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := testutil.StartRedis(t)
			a := newClusterNode(t, srv.URL, "a")
			b := newClusterNode(t, srv.URL, "b")
			events := aliceAndBobOnline(t, a, b, a, a)

			tc.lost(t, a)
			ctx := context.Background()
			for _, n := range []*clusterNode{a, b} {
				require.NoError(t, n.r.Resync(ctx))
				for uuid, want := range tc.online {
					require.Equal(t, want, n.r.Online(directory.KindUser, uuid), "node %s, %s", n.c.id, uuid)
				}
			}
			// Resync returns once its events are published.
			require.ElementsMatch(t, tc.events, events.until(t, a.bus), "each event once, from one of the two replicas")
		})
	}
}

// TestRedisRewriteResyncsEveryReplica: node A's close is lost (Redis restarted under the cluster:
// the replicas' subscriptions were down), then node B finds its registration gone and rewrites
// its ownership. Its resync message makes every replica reload the snapshot by itself: alice goes
// offline everywhere, with one USER_DISCONNECTED.
func TestRedisRewriteResyncsEveryReplica(t *testing.T) {
	srv := testutil.StartRedis(t)
	a := newClusterNode(t, srv.URL, "a")
	b := newClusterNode(t, srv.URL, "b")
	events := aliceAndBobOnline(t, a, b, a, b)
	alice, bob := directory.DemoAliceUUID, directory.DemoBobUUID

	a.lostAnnounce(t, alice, false)
	require.NoError(t, b.c.rewrite(context.Background()))
	for _, n := range []*clusterNode{a, b} {
		require.Eventually(t, func() bool { return !n.r.Online(directory.KindUser, alice) }, 10*time.Second, 10*time.Millisecond,
			"node %s resynced", n.c.id)
		require.True(t, n.r.Online(directory.KindUser, bob))
	}
	// Stop waits for the replicas' resyncs to end: both have published what they had to.
	for _, n := range []*clusterNode{a, b} {
		require.NoError(t, n.r.Stop(context.Background()))
	}
	require.Equal(t, []string{alice + " USER_DISCONNECTED"}, events.until(t, a.bus))
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := opentera.NewAny(m)
	require.NoError(t, err)
	return a
}
