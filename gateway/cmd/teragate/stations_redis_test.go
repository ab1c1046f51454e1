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

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/sdk/station"
)

// The station device added to the demo identities by this test.
const (
	killedStationUUID  = "00000000-0000-4000-8000-000000000401"
	killedStationToken = "station-demo-token-3Qx9v2LkTz8RmW4p"
)

// TestRedisKilledNodeStations runs two nodes on one redis-server, node A in process and node B
// the real binary, and the real station agent connected to B. A lists the station online on B's
// node; when B is killed with SIGKILL (its connection is never closed in Redis), A shows the
// station offline once B's heartbeat key expires, and an edit sent to A is stored for the
// station's next register (202) instead of being sent to the dead node.
func TestRedisKilledNodeStations(t *testing.T) {
	bin := buildBinary(t)
	srv := testutil.StartRedis(t)
	y := strings.Replace(string(directory.DemoYAML), "devices:\n", "devices:\n"+
		"  - uuid: "+killedStationUUID+"\n    token: "+killedStationToken+"\n    name: encoder1\n    sites: [s1]\n"+
		"    participants: []\n    onlineable: true\n    station: true\n", 1)
	ids := filepath.Join(t.TempDir(), "identities.yaml")
	require.NoError(t, os.WriteFile(ids, []byte(y), 0o600))
	cfgPath := filepath.Join(t.TempDir(), "node.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("redis_node_ttl: 1500ms\n"), 0o600))
	cmdB, baseB, _ := startServe(t, bin, "--insecure", "--redis", srv.URL, "--config", cfgPath, "--identities", ids)

	a, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Insecure: true, DataDir: t.TempDir(), Redis: srv.URL,
		Identities: ids, RedisNodeTTL: gateway.Duration(1500 * time.Millisecond), Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})

	agent, err := station.New(station.Config{URL: baseB, Token: killedStationToken, StateDir: t.TempDir(), Hostname: "enc-1",
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	type view struct {
		Online   bool                       `json:"online"`
		Node     string                     `json:"node"`
		Hostname string                     `json:"hostname"`
		Roles    map[string]json.RawMessage `json:"roles"`
	}
	var svcToken string
	for _, l := range directory.DemoLogins {
		if l.Kind == directory.KindService && l.UUID == directory.DemoServiceUUID {
			svcToken = l.Token
		}
	}
	admin := func(method, path, body string) (int, []byte) {
		req, err := http.NewRequest(method, a.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "OpenTera "+svcToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	onA := func() view {
		code, b := admin(http.MethodGet, "/api/stations/"+killedStationUUID, "")
		require.Equal(t, http.StatusOK, code, string(b))
		var v view
		require.NoError(t, json.Unmarshal(b, &v), string(b))
		return v
	}
	require.Eventually(t, func() bool {
		v := onA()
		return v.Online && v.Node != "" && v.Node != a.NodeID() && v.Hostname == "enc-1"
	},
		30*time.Second, 20*time.Millisecond)

	require.NoError(t, cmdB.Process.Signal(syscall.SIGKILL))
	_ = cmdB.Wait()
	// B's heartbeat key lives 1.5 s after its last refresh.
	require.Eventually(t, func() bool { return !onA().Online }, 15*time.Second, 50*time.Millisecond)
	require.Empty(t, onA().Node)

	code, b := admin(http.MethodPut, "/api/stations/"+killedStationUUID+"/roles", `{"monitor": {"m1": {}}}`)
	require.Equal(t, http.StatusAccepted, code, string(b))
	require.Contains(t, onA().Roles, "monitor")
}
