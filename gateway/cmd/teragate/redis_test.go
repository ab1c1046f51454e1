package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// TestRedisKilledNode runs two nodes on one redis-server: node A in process, node B the real
// binary. alice's socket is on B; when B is killed with SIGKILL (no DISCONNECTED is ever sent),
// node A takes alice offline after B's heartbeat key expires, publishes USER_DISCONNECTED once,
// and its RPC no longer lists her.
func TestRedisKilledNode(t *testing.T) {
	bin := buildBinary(t)
	srv := testutil.StartRedis(t)
	cfgPath := filepath.Join(t.TempDir(), "node.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("redis_node_ttl: 1500ms\n"), 0o600))
	cmdB, baseB, _ := startServe(t, bin, "--insecure", "--redis", srv.URL, "--config", cfgPath)

	a, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Insecure: true, DataDir: t.TempDir(), Redis: srv.URL,
		RedisNodeTTL: gateway.Duration(1500 * time.Millisecond), Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})

	obs := wsLogin(t, a.URL(), "admin:admin-demo")
	waitEvent(t, obs, "USER_CONNECTED", directory.DemoAdminUUID)
	aliceWS := wsLogin(t, baseB, "alice:alice-demo")
	waitEvent(t, aliceWS, "USER_CONNECTED", directory.DemoAliceUUID)
	waitEvent(t, obs, "USER_CONNECTED", directory.DemoAliceUUID)
	both := `["` + directory.DemoAdminUUID + `", "` + directory.DemoAliceUUID + `"]`
	// The event and each replica's count travel on different subscriptions: poll the counts.
	for _, base := range []string{a.URL(), baseB} {
		require.Eventually(t, func() bool { return onlineUsers(t, base) == both }, 10*time.Second, 20*time.Millisecond, base)
	}

	require.NoError(t, cmdB.Process.Signal(syscall.SIGKILL))
	_ = cmdB.Wait()
	// Within the node TTL (1.5 s) plus a heartbeat period: waitEvent allows 15 s.
	waitEvent(t, obs, "USER_DISCONNECTED", directory.DemoAliceUUID)
	require.Equal(t, `["`+directory.DemoAdminUUID+`"]`, onlineUsers(t, a.URL()))
	// Exactly one USER_DISCONNECTED: the next presence event is the one we cause now.
	bob := wsLogin(t, a.URL(), "bob:bob-demo")
	waitEvent(t, bob, "USER_CONNECTED", directory.DemoBobUUID)
	ev := nextEvent(t, obs)
	require.Equal(t, "USER_CONNECTED", ev["type"], "%v", ev)
	require.Equal(t, directory.DemoBobUUID, ev["userUuid"])
}

// wsLogin logs a user in with Basic credentials "name:password" and opens its websocket.
func wsLogin(t *testing.T, base, cred string) *websocket.Conn {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/user/login?with_websocket=true", nil)
	require.NoError(t, err)
	u, p, _ := strings.Cut(cred, ":")
	req.SetBasicAuth(u, p)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		URL string `json:"websocket_url"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	ws, r, err := websocket.DefaultDialer.Dial(out.URL, nil)
	if r != nil {
		r.Body.Close()
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// nextEvent returns the single event of the next frame, within 15 s.
func nextEvent(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	var m struct {
		Message struct {
			Events []map[string]any `json:"events"`
		} `json:"message"`
	}
	require.NoError(t, json.Unmarshal(data, &m), "%s", data)
	require.Len(t, m.Message.Events, 1, "%s", data)
	return m.Message.Events[0]
}

// waitEvent reads events until one of type typ about the user uuid.
func waitEvent(t *testing.T, ws *websocket.Conn, typ, uuid string) {
	t.Helper()
	for {
		ev := nextEvent(t, ws)
		if ev["type"] == typ && ev["userUuid"] == uuid {
			return
		}
	}
}

// onlineUsers calls online_users over HTTP as the demo service.
func onlineUsers(t *testing.T, base string) string {
	t.Helper()
	var token string
	for _, l := range directory.DemoLogins {
		if l.Kind == directory.KindService {
			token = l.Token
		}
	}
	req, err := http.NewRequest(http.MethodPost, base+"/api/rpc/"+presence.Module, strings.NewReader(`{"method": "online_users"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "OpenTera "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var rep struct {
		ReturnValue json.RawMessage `json:"return_value"`
	}
	require.NoError(t, json.Unmarshal(b, &rep))
	return string(rep.ReturnValue)
}
