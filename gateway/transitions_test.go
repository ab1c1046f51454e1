package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// eventTypes reads every event up to the marker and returns their "type" fields.
func eventTypes(t *testing.T, s *sock, marker string) []string {
	t.Helper()
	var out []string
	for _, ev := range drainUntil(t, s, marker) {
		typ, _ := ev["type"].(string)
		out = append(out, typ)
	}
	return out
}

// TestPresenceTransitionsOnly: three sockets of alice opened one after the other (on one node,
// then spread over two Redis nodes). Each socket receives exactly one USER_CONNECTED, its
// greeting, as its first frame; an observer (the admin) receives one USER_CONNECTED in all, and
// one USER_DISCONNECTED once the last socket closed — none for the others.
func TestPresenceTransitionsOnly(t *testing.T) {
	for _, nodes := range []int{1, 2} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			var es []*env
			if nodes == 1 {
				es = []*env{startGateway(t, nil)}
			} else {
				srv := testutil.StartRedis(t)
				for range nodes {
					es = append(es, startGateway(t, func(c *gateway.Config) {
						c.Redis = srv.URL
						c.JWTKey = "transitions-test-key"
					}))
				}
			}
			admin := es[0].connect(directory.KindUser, "admin:admin-demo")
			var socks []*sock
			for i := range 3 {
				e := es[i%len(es)]
				s := e.dial(e.wsURL(directory.KindUser, "alice:alice-demo"))
				ev := s.event() // the first frame: its own CONNECTED
				require.Equal(t, "USER_CONNECTED", ev["type"], "socket %d", i)
				require.Equal(t, alice, ev["userUuid"])
				socks = append(socks, s)
				require.Eventually(t, func() bool { return e.gw.Online("user", alice) }, 5*time.Second, 5*time.Millisecond)
				require.Eventually(t, func() bool {
					return e.returnValue("online_users") == `["`+directory.DemoAdminUUID+`", "`+alice+`"]`
				}, 5*time.Second, 5*time.Millisecond)
			}
			// Wait until every node counts three sockets, then count what everyone received.
			for _, e := range es {
				require.Eventually(t, func() bool { return readyConnections(t, e) >= 1 }, 5*time.Second, 5*time.Millisecond)
			}
			m := es[0].marker("opened")
			require.Equal(t, []string{"USER_CONNECTED"}, eventTypes(t, admin, m), "one USER_CONNECTED for alice's three sockets")
			for i, s := range socks {
				require.Empty(t, eventTypes(t, s, m), "socket %d: nothing after its greeting", i)
			}
			// Close two: nobody hears of it. Close the last: everyone who may see alice does.
			for _, s := range socks[:2] {
				require.NoError(t, s.ws.Close())
			}
			m = es[0].marker("two-closed")
			require.Empty(t, eventTypes(t, admin, m))
			require.Empty(t, eventTypes(t, socks[2], m))
			require.NoError(t, socks[2].ws.Close())
			require.Equal(t, "USER_DISCONNECTED", drainUntilType(t, admin, "USER_DISCONNECTED")["type"])
			m = es[0].marker("all-closed")
			require.Empty(t, eventTypes(t, admin, m), "one USER_DISCONNECTED")
		})
	}
}
