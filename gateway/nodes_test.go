package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/nodes"
)

// nodeList reads GET /api/admin/nodes with the Authorization header authz.
func (e *env) nodeList(authz string) (int, nodes.List, string) {
	e.t.Helper()
	hdr := map[string]string{}
	if authz != "" {
		hdr["Authorization"] = authz
	}
	code, body := e.do(http.MethodGet, "/api/admin/nodes", nil, hdr)
	var l nodes.List
	if code == http.StatusOK {
		require.NoError(e.t, json.Unmarshal(body, &l), string(body))
	}
	return code, l, string(body)
}

func byID(l nodes.List, id string) (nodes.Node, bool) {
	for _, n := range l.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return nodes.Node{}, false
}

// TestNodeListAccess: the node list is for admins only.
func TestNodeListAccess(t *testing.T) {
	e := startGateway(t, nil)
	_, out := e.login(directory.KindUser, "alice:alice-demo", "")
	alice := "OpenTera " + out["user_token"].(string)
	_, out = e.login(directory.KindUser, "admin:admin-demo", "")
	adm := "OpenTera " + out["user_token"].(string)
	tests := []struct {
		name  string
		authz string
		code  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"bad token", "OpenTera nope", http.StatusUnauthorized},
		{"non-admin user", alice, http.StatusForbidden},
		{"device", "OpenTera " + demoToken(directory.KindDevice, directory.DemoRobot1UUID), http.StatusForbidden},
		{"superadmin", adm, http.StatusOK},
		{"admin service", "OpenTera " + serviceToken, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.nodeList(tc.authz)
			require.Equal(t, tc.code, code, body)
		})
	}
}

// TestNodeListSingleNode: without Redis the list is the node itself, up, its connections and
// counters following its websockets.
func TestNodeListSingleNode(t *testing.T) {
	e := startGateway(t, nil)
	authz := "OpenTera " + serviceToken
	code, l, body := e.nodeList(authz)
	require.Equal(t, http.StatusOK, code, body)
	require.Len(t, l.Nodes, 1, body)
	n := l.Nodes[0]
	require.True(t, n.Up)
	require.True(t, n.Self)
	require.NotEmpty(t, n.ID)
	require.Equal(t, e.gw.Addr().String(), n.Addr)
	require.NotNil(t, n.HeartbeatAt)

	e.connect(directory.KindUser, "alice:alice-demo")
	e.connect(directory.KindParticipant, "pat:pat-demo")
	require.Eventually(t, func() bool {
		_, l, _ := e.nodeList(authz)
		n := l.Nodes[0]
		return n.Connections == 2 && n.Connects == 2 && n.Deliveries >= 2 && n.DeliveriesPerSec > 0 && n.ConnectsPerSec > 0 &&
			l.Totals.Connections == 2 && l.Totals.Up == 1 && l.Totals.Nodes == 1
	}, 10*time.Second, 50*time.Millisecond, "the node's counters follow its websockets")
}

// TestRedisNodeList: two gateways on one redis-server each list both nodes, with their
// connections and counters moving after traffic on either; a node that stops is shown down at
// once (its heartbeat key is gone) and leaves the list when its record expires. A record that does
// not decode is left out.
func TestRedisNodeList(t *testing.T) {
	gws, srv := startRedisNodesOn(t, 2)
	a, b := gws[0], gws[1]
	authz := "OpenTera " + serviceToken

	// A record that does not decode (another program's, or a corrupted one) is skipped.
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	ctx0 := context.Background()
	require.NoError(t, rc.Set(ctx0, "teragate:nodes:stats:bogus", "not json", time.Minute).Err())
	require.NoError(t, rc.ZAdd(ctx0, "teragate:nodes:index", redis.Z{Score: float64(time.Now().Add(time.Minute).UnixMilli()), Member: "bogus"}).Err())
	for _, e := range gws {
		code, l, body := e.nodeList(authz)
		require.Equal(t, http.StatusOK, code, body)
		require.Len(t, l.Nodes, 2, body)
		for _, other := range gws {
			n, ok := byID(l, other.gw.NodeID())
			require.True(t, ok, "node %s lists %s: %s", e.gw.NodeID(), other.gw.NodeID(), body)
			require.True(t, n.Up)
			require.Equal(t, other == e, n.Self)
			require.Equal(t, other.gw.Addr().String(), n.Addr)
			require.NotNil(t, n.HeartbeatAt)
		}
		require.Equal(t, 2, l.Totals.Up)
	}

	// Traffic: two sockets on A, one on B, and events delivered to them.
	a.connect(directory.KindUser, "alice:alice-demo")
	a.connect(directory.KindUser, "admin:admin-demo")
	b.connect(directory.KindParticipant, "pat:pat-demo")
	for _, e := range gws {
		require.Eventually(t, func() bool {
			_, l, _ := e.nodeList(authz)
			na, okA := byID(l, a.gw.NodeID())
			nb, okB := byID(l, b.gw.NodeID())
			return okA && okB && na.Connections == 2 && na.Connects == 2 && na.Deliveries >= 2 && na.DeliveriesPerSec > 0 &&
				nb.Connections == 1 && nb.Connects == 1 && nb.Deliveries >= 1 && nb.DeliveriesPerSec > 0 &&
				l.Totals.Connections == 3 && l.Totals.Connects == 3 && l.Totals.Deliveries == na.Deliveries+nb.Deliveries
		}, 10*time.Second, 50*time.Millisecond, "node %s sees both nodes' counters move", e.gw.NodeID())
	}

	// B stops: A shows it down (no heartbeat), then not at all once its record expired
	// (3 × redis_node_ttl of 1.5 s).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.gw.Shutdown(ctx))
	require.Eventually(t, func() bool {
		_, l, _ := a.nodeList(authz)
		nb, ok := byID(l, b.gw.NodeID())
		return ok && !nb.Up && nb.HeartbeatAt == nil && l.Totals.Up == 1 && l.Totals.Nodes == 2 && l.Totals.Connections == 2
	}, 10*time.Second, 50*time.Millisecond, "the stopped node is shown down")
	require.Eventually(t, func() bool {
		_, l, _ := a.nodeList(authz)
		_, ok := byID(l, b.gw.NodeID())
		return !ok && len(l.Nodes) == 1
	}, 20*time.Second, 100*time.Millisecond, "the stopped node leaves the list")
}
