package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/proto/opentera"
)

// startRedisNodes starts n gateways on one redis-server, sharing the JWT key (as nodes behind a
// load balancer do).
func startRedisNodes(t *testing.T, n int) []*env {
	t.Helper()
	nodes, _ := startRedisNodesOn(t, n)
	return nodes
}

// startRedisNodesOn is startRedisNodes that also returns the redis-server.
func startRedisNodesOn(t *testing.T, n int) ([]*env, *testutil.RedisServer) {
	t.Helper()
	srv := testutil.StartRedis(t)
	out := make([]*env, n)
	for i := range out {
		out[i] = startGateway(t, func(c *gateway.Config) {
			c.Redis = srv.URL
			c.JWTKey = "two-node-test-key"
			c.RedisNodeTTL = gateway.Duration(1500 * time.Millisecond)
		})
	}
	return out, srv
}

// onNode rewrites a websocket_url issued by one node to reach another node.
func onNode(t *testing.T, wsURL string, node *env) string {
	t.Helper()
	u, err := url.Parse(wsURL)
	require.NoError(t, err)
	b, err := url.Parse(node.base)
	require.NoError(t, err)
	u.Host = b.Host
	return u.String()
}

// TestRedisTwoNodesEvents: a client on node A receives an event published on node B (POST
// /api/events on B), and its own CONNECTED event once, not once per node.
func TestRedisTwoNodesEvents(t *testing.T) {
	nodes := startRedisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	require.NotEqual(t, a.gw.NodeID(), b.gw.NodeID())
	s := a.connect(directory.KindUser, "admin:admin-demo")
	id := b.marker("from-b")
	s.expectMarker(id) // nothing in between: the CONNECTED was not republished by node B
	b.publish(umEvents, &opentera.StopSessionEvent{SessionUuid: "s-direct"})
	require.Equal(t, "s-direct", s.event()["sessionUuid"])
}

// TestRedisTicketOtherNode: a login on node A with its websocket opened on node B; a ticket is
// single-use across nodes.
func TestRedisTicketOtherNode(t *testing.T) {
	nodes := startRedisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	wsURL := onNode(t, a.wsURL(directory.KindParticipant, "pat:pat-demo"), b)
	s := b.dial(wsURL)
	s.expectType("PARTICIPANT_CONNECTED")
	_, resp, err := a.dialer.Dial(onNode(t, wsURL, a), nil)
	require.Error(t, err, "a ticket is single-use on every node")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp.Body.Close()
}

// TestRedisLogoutOtherNode: logout on node A closes the client's socket on node B with 4000, and
// the revoked token is refused by node B too.
func TestRedisLogoutOtherNode(t *testing.T) {
	nodes := startRedisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	code, out := a.login(directory.KindUser, "alice:alice-demo", "?with_websocket=true")
	require.Equal(t, http.StatusOK, code, out)
	token := out["user_token"].(string)
	s := b.dial(onNode(t, out["websocket_url"].(string), b))
	s.expectType("USER_CONNECTED")
	code, _ = b.login(directory.KindUser, token, "")
	require.Equal(t, http.StatusOK, code, "the token works on node B before the logout")

	code, body := a.do(http.MethodGet, "/api/user/logout", nil, map[string]string{"Authorization": "OpenTera " + token})
	require.Equal(t, http.StatusOK, code, string(body))
	s.expectClose(4000)
	code, _ = b.login(directory.KindUser, token, "")
	require.Equal(t, http.StatusUnauthorized, code, "node B refuses the token revoked on node A")
}

// TestRedisPresenceClusterWide: alice holds one socket on A and one on B; both nodes' RPC answer
// cluster-wide, she stays online until both close, and an observer sees USER_CONNECTED per socket
// and USER_DISCONNECTED once.
func TestRedisPresenceClusterWide(t *testing.T) {
	nodes := startRedisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	obs := a.connect(directory.KindUser, "admin:admin-demo")
	s1 := a.connect(directory.KindUser, "alice:alice-demo")
	s2 := b.connect(directory.KindUser, "alice:alice-demo")
	require.Equal(t, alice, obs.expectType("USER_CONNECTED")["userUuid"])
	want := `["` + directory.DemoAdminUUID + `", "` + alice + `"]`
	for _, n := range nodes {
		require.Equal(t, want, n.returnValue("online_users"))
	}
	obs.expectMarker(a.marker("both-open")) // one USER_CONNECTED: alice was already online on A
	require.NoError(t, s1.ws.Close())
	m := b.marker("after-s1")
	obs.expectMarker(m) // no USER_DISCONNECTED: alice still has a socket on B
	for _, n := range nodes {
		require.Equal(t, want, n.returnValue("online_users"))
	}
	require.NoError(t, s2.ws.Close())
	ev := obs.expectType("USER_DISCONNECTED")
	require.Equal(t, alice, ev["userUuid"])
	m = a.marker("after-s2")
	obs.expectMarker(m) // and only once
	for _, n := range nodes {
		require.Equal(t, `["`+directory.DemoAdminUUID+`"]`, n.returnValue("online_users"))
	}
}

// TestRedisNodeStartsLate: a node started while clients are connected to another node counts
// them (it loads the cluster snapshot).
func TestRedisNodeStartsLate(t *testing.T) {
	srv := testutil.StartRedis(t)
	mk := func() *env {
		return startGateway(t, func(c *gateway.Config) { c.Redis = srv.URL })
	}
	a := mk()
	a.connect(directory.KindUser, "alice:alice-demo")
	a.connect(directory.KindParticipant, "pat:pat-demo")
	b := mk()
	require.Equal(t, `["`+alice+`"]`, b.returnValue("online_users"))
	require.Equal(t, `["`+pat+`"]`, b.returnValue("online_participants"))
	require.True(t, strings.Contains(b.returnValue("status_users"), alice))
}

// TestRedisDeviceStatusClusterWide: a device online on node A, its status updated through node
// B's RPC: both nodes' status_devices show it, an observer sees DEVICE_STATUS_CHANGED once, and an
// older timestamp is ignored everywhere.
func TestRedisDeviceStatusClusterWide(t *testing.T) {
	nodes := startRedisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	obs := a.connect(directory.KindUser, "admin:admin-demo")
	a.connect(directory.KindDevice, demoToken(directory.KindDevice, robot1))
	require.Equal(t, robot1, obs.expectType("DEVICE_CONNECTED")["deviceUuid"])
	code, body := b.rpcCall(serviceToken, "TeraServer.UserManagerModule",
		`{"method": "update_device_status", "args": ["`+robot1+`", "{\"battery\": 10.4}", 1732145425.5]}`)
	require.Equal(t, http.StatusOK, code, body)
	ev := obs.expectType("DEVICE_STATUS_CHANGED")
	require.Equal(t, `{"status": "{\"battery\": 10.4}", "timestamp": 1732145425.5}`, ev["deviceStatus"])
	want := `{"` + robot1 + `": {"online": true, "busy": false, "status": {"status": "{\"battery\": 10.4}", "timestamp": 1732145425.5}}}`
	for _, n := range nodes {
		require.Eventually(t, func() bool { return n.returnValue("status_devices") == want }, 5*time.Second, 10*time.Millisecond,
			"status_devices on every node: %s", n.returnValue("status_devices"))
	}
	code, body = a.rpcCall(serviceToken, "TeraServer.UserManagerModule",
		`{"method": "update_device_status", "args": ["`+robot1+`", "{}", 5]}`)
	require.Equal(t, http.StatusOK, code, body)
	m := b.marker("after-stale")
	obs.expectMarker(m) // one DEVICE_STATUS_CHANGED above, none for the stale update
	for _, n := range nodes {
		require.Equal(t, want, n.returnValue("status_devices"))
	}
}

// TestRedisRestartReconcile: redis-server restarts empty under two nodes. The nodes resubscribe,
// rewrite their ownership from their own sockets and resynchronise every replica, so presence is
// right again: sockets still open are online on both nodes, and a socket that closes afterwards
// goes offline everywhere with its DISCONNECTED event.
func TestRedisRestartReconcile(t *testing.T) {
	nodes, srv := startRedisNodesOn(t, 2)
	a, b := nodes[0], nodes[1]
	obs := a.connect(directory.KindUser, "admin:admin-demo")
	s := b.connect(directory.KindUser, "alice:alice-demo")
	require.Equal(t, alice, obs.expectType("USER_CONNECTED")["userUuid"])
	b.connect(directory.KindParticipant, "pat:pat-demo")
	require.Equal(t, pat, obs.expectType("PARTICIPANT_CONNECTED")["participantUuid"])

	srv.Restart(t)
	// Both nodes' registrations are gone with the data; each notices (bus reconnect, heartbeat),
	// rewrites its ownership and has the replicas resync. After a resync the online lists are in
	// snapshot order, not connection order: compare them as sets.
	set := func(list string) []string {
		var out []string
		_ = json.Unmarshal([]byte(list), &out)
		slices.Sort(out)
		return out
	}
	wantUsers := set(`["` + directory.DemoAdminUUID + `", "` + alice + `"]`)
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			return slices.Equal(set(n.returnValue("online_users")), wantUsers) && n.returnValue("online_participants") == `["`+pat+`"]`
		}, 15*time.Second, 20*time.Millisecond)
	}
	// Wait until the observer's node routes events again: publish a marker every 100 ms until
	// one arrives (those published before its subscription was restored are lost).
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b.publishQuiet(umEvents, &opentera.StopSessionEvent{SessionUuid: "probe"})
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	for obs.event()["sessionUuid"] != "probe" {
	}
	close(stop)
	<-done
	// A close now goes offline everywhere with its DISCONNECTED event, whether it reaches Redis
	// before its node rewrote its ownership (its message may be lost with the subscriptions still
	// down: the replicas' reload then publishes the event) or after.
	require.NoError(t, s.ws.Close())
	ev := drainUntilType(t, obs, "USER_DISCONNECTED")
	require.Equal(t, alice, ev["userUuid"])
	for _, n := range nodes {
		require.Eventually(t, func() bool { return n.returnValue("online_users") == `["`+directory.DemoAdminUUID+`"]` },
			5*time.Second, 20*time.Millisecond)
	}
}

// publishQuiet is publish without assertions, for use off the test goroutine.
func (e *env) publishQuiet(topic string, m *opentera.StopSessionEvent) {
	body := `{"header": {"version": 1, "time": 1, "topic": "` + topic + `"}, "events": [{"@type": "type.googleapis.com/opentera.protobuf.StopSessionEvent", "sessionUuid": "` + m.GetSessionUuid() + `"}]}`
	req, err := http.NewRequest(http.MethodPost, e.base+"/api/events", strings.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "OpenTera "+serviceToken)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
	}
}

// BenchmarkRedisCrossNode: events published on node B's bus (Redis) and delivered as JSON frames
// to an admin's websocket on node A; the timer stops when the last frame has been read. Reports
// events/s through the whole path (PUBLISH, node A's subscription, router, filter, websocket).
func BenchmarkRedisCrossNode(b *testing.B) {
	srv := testutil.StartRedis(b)
	mk := func() *gateway.Gateway {
		gw, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Insecure: true, DataDir: b.TempDir(), Redis: srv.URL,
			JWTKey: "cross-node-bench-key", Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr})})
		require.NoError(b, err)
		require.NoError(b, gw.Start(context.Background()))
		b.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
		return gw
	}
	a, nodeB := mk(), mk()
	req, err := http.NewRequest(http.MethodGet, a.URL()+"/api/user/login?with_websocket=true", nil)
	require.NoError(b, err)
	req.SetBasicAuth("admin", "admin-demo")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	var out struct {
		URL string `json:"websocket_url"`
	}
	require.NoError(b, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	ws, r, err := websocket.DefaultDialer.Dial(out.URL, nil)
	require.NoError(b, err)
	r.Body.Close()
	defer ws.Close()
	_, _, err = ws.ReadMessage() // own USER_CONNECTED
	require.NoError(b, err)
	payload, err := presence.EncodeEvent(umEvents, &opentera.StopSessionEvent{SessionUuid: "bench-session-0000000000000000000000000000"})
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if _, _, err := ws.ReadMessage(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := nodeB.Publish(ctx, umEvents, payload); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, <-done)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
