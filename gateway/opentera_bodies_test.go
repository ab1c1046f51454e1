package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// raw sends a login or logout request and returns the status, the body and the headers.
func (e *env) raw(t *testing.T, path string, set func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	require.NoError(t, err)
	set(req)
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

// TestOpenTeraBodies: refused logins, logouts and the device login reply are OpenTera's, byte for
// byte where OpenTera's are fixed.
func TestOpenTeraBodies(t *testing.T) {
	disabledToken := "disabled-device-token-0123456789abcdefghij"
	ids := strings.Replace(string(directory.DemoYAML), "devices:\n", "devices:\n"+
		"  - uuid: 00000000-0000-4000-8000-000000000299\n    token: "+disabledToken+"\n    name: broken\n    sites: [s1]\n"+
		"    participants: []\n    onlineable: true\n    enabled: false\n    type: 3\n    subtype: 7\n    config: '{\"fps\": 30}'\n    notes: lab\n", 1)
	path := filepath.Join(t.TempDir(), "ids.yaml")
	require.NoError(t, os.WriteFile(path, []byte(ids), 0o600))
	e := startGateway(t, func(c *gateway.Config) { c.Identities = path })
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	token := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "OpenTera "+tok) }
	}

	tests := []struct {
		name, path string
		set        func(*http.Request)
		code       int
		body       string
		auth       string
	}{
		{"wrong password", "/api/user/login", basic("alice", "nope"), 401, "Unauthorized", `Basic realm="user"`},
		{"unknown participant", "/api/participant/login", basic("nobody", "x"), 401, "Unauthorized", `Basic realm="participant"`},
		{"bad device token", "/api/device/login", token("nope"), 401, `"Unauthorized"`, ""},
		{"disabled device", "/api/device/login", token(disabledToken), 401, `"Disabled device"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, h := e.raw(t, tt.path, tt.set)
			require.Equal(t, tt.code, code)
			require.Equal(t, tt.body, body)
			require.Equal(t, tt.auth, h.Get("WWW-Authenticate"))
		})
	}

	// Logouts answer OpenTera's JSON strings.
	_, userOut := e.login(directory.KindUser, "alice:alice-demo", "")
	for _, c := range []struct {
		path string
		set  func(*http.Request)
		want string
	}{
		{"/api/user/logout", token(userOut["user_token"].(string)), `"User logged out."`},
		{"/api/participant/logout", token(demoToken(directory.KindParticipant, pat)), `"Participant logged out."`},
		{"/api/device/logout", token(demoToken(directory.KindDevice, robot1)), `"Device logged out."`},
	} {
		code, body, _ := e.raw(t, c.path, c.set)
		require.Equal(t, http.StatusOK, code, c.path)
		require.Equal(t, c.want, body, c.path)
	}

	// device_info is OpenTera's device record, nulls and types included.
	_, body, _ := e.raw(t, "/api/device/login", token(demoToken(directory.KindDevice, robot1)))
	var reply struct {
		DeviceInfo map[string]any `json:"device_info"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &reply))
	require.Equal(t, map[string]any{
		"id_device": float64(2), "device_uuid": robot1, "device_name": "robot1", "id_device_type": float64(0),
		"id_device_subtype": nil, "device_token": demoToken(directory.KindDevice, robot1), "device_enabled": true,
		"device_onlineable": true, "device_config": nil, "device_infos": nil, "device_notes": nil, "device_lastonline": nil,
	}, reply.DeviceInfo)
}
