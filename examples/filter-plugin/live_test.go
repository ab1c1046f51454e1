package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/proto/opentera"
)

// Demo identities (gateway's embedded demo directory, printed by `teragate serve`).
const (
	robot1       = gatewaytest.Robot1UUID
	serviceToken = gatewaytest.ServiceToken
)

// TestLiveDropIn is the README's walkthrough end to end: a running gateway with an empty plugins
// directory (native filters), alice and the admin connected; the built plugin is dropped in as
// filter.user.wasm by write-then-rename; from then on alice stops receiving DEVICE_STATUS_CHANGED
// while the admin still does, and nobody was disconnected. Skipped with -short (builds Wasm).
func TestLiveDropIn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm plugin; skipped with -short")
	}
	built := filepath.Join(t.TempDir(), "filter.user.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", built, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	plugins := t.TempDir()
	gw := gatewaytest.Start(t, func(c *gateway.Config) {
		c.Plugins = plugins
		// The test reads its sockets only when it expects a frame, so their pongs wait until
		// then; a cold plugin compile on a loaded machine can take longer than the default
		// pong timeout.
		c.PongTimeout = gateway.Duration(10 * time.Minute)
	})
	<-gw.PluginsReady()

	alice := dialUser(t, gw.URL(), gatewaytest.AliceUser, gatewaytest.AlicePassword)
	admin := dialUser(t, gw.URL(), gatewaytest.AdminUser, gatewaytest.AdminPassword)
	status := func() {
		t.Helper()
		a, err := anypb.New(&opentera.DeviceEvent{DeviceUuid: robot1, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: `{"battery": 80}`})
		require.NoError(t, err)
		p, err := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Topic: topic}, Events: []*anypb.Any{a}})
		require.NoError(t, err)
		require.NoError(t, gw.Publish(context.Background(), topic, p))
	}

	// Native filters: alice (project p1, robot1 is on her site) receives the status.
	status()
	require.Equal(t, "DEVICE_STATUS_CHANGED", nextType(t, alice))
	require.Equal(t, "DEVICE_STATUS_CHANGED", nextType(t, admin))

	// Drop the plugin in: write next to it, then rename (atomic for the watcher).
	data, err := os.ReadFile(built)
	require.NoError(t, err)
	tmp := filepath.Join(plugins, ".filter.user.wasm.tmp")
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(plugins, "filter.user.wasm")))
	require.Eventually(t, func() bool { return pluginActive(t, gw.URL(), "filter.user") }, 60*time.Second, 50*time.Millisecond)

	// Now the status reaches the admin only; a CONNECTED-style event still reaches alice.
	status()
	require.Equal(t, "DEVICE_STATUS_CHANGED", nextType(t, admin))
	a, err := anypb.New(&opentera.DeviceEvent{DeviceUuid: robot1, Type: opentera.DeviceEvent_DEVICE_CONNECTED})
	require.NoError(t, err)
	p, err := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Topic: topic}, Events: []*anypb.Any{a}})
	require.NoError(t, err)
	require.NoError(t, gw.Publish(context.Background(), topic, p))
	require.Equal(t, "DEVICE_CONNECTED", nextType(t, alice), "alice skipped the status and kept her socket")
	require.Equal(t, "DEVICE_CONNECTED", nextType(t, admin))
}

func dialUser(t *testing.T, base, user, pass string) *websocket.Conn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/user/login?with_websocket=true", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var login map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&login))
	ws, wresp, err := websocket.DefaultDialer.Dial(login["websocket_url"].(string), nil)
	require.NoError(t, err)
	wresp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	require.Equal(t, "USER_CONNECTED", nextType(t, ws)) // its own CONNECTED event
	return ws
}

// nextType returns the type of the next event frame's event.
func nextType(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	var m struct {
		Message struct {
			Events []map[string]any `json:"events"`
		} `json:"message"`
	}
	require.NoError(t, json.Unmarshal(data, &m))
	require.Len(t, m.Message.Events, 1)
	typ, _ := m.Message.Events[0]["type"].(string)
	return typ
}

func pluginActive(t *testing.T, base, id string) bool {
	req, _ := http.NewRequest(http.MethodGet, base+"/api/plugins", nil)
	req.Header.Set("Authorization", "OpenTera "+serviceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Plugins []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"plugins"`
	}
	if json.Unmarshal(b, &out) != nil {
		return false
	}
	for _, p := range out.Plugins {
		if p.ID == id && p.State == "active" {
			return true
		}
	}
	return false
}
