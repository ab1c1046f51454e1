package gatewaytest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestDemoLoginsMatch: the constants are the demo identity file's credentials.
func TestDemoLoginsMatch(t *testing.T) {
	byUUID := map[string]directory.DemoLogin{}
	for _, l := range directory.DemoLogins {
		byUUID[l.UUID] = l
	}
	tests := []struct{ uuid, user, password, token string }{
		{gatewaytest.AdminUUID, gatewaytest.AdminUser, gatewaytest.AdminPassword, ""},
		{gatewaytest.AliceUUID, gatewaytest.AliceUser, gatewaytest.AlicePassword, ""},
		{gatewaytest.BobUUID, gatewaytest.BobUser, gatewaytest.BobPassword, ""},
		{gatewaytest.PatUUID, gatewaytest.PatUser, gatewaytest.PatPassword, gatewaytest.PatToken},
		{gatewaytest.PaulaUUID, gatewaytest.PaulaUser, gatewaytest.PaulaPassword, gatewaytest.PaulaToken},
		{gatewaytest.Robot1UUID, "", "", gatewaytest.Robot1Token},
		{gatewaytest.Robot2UUID, "", "", gatewaytest.Robot2Token},
		{gatewaytest.ServiceUUID, "", "", gatewaytest.ServiceToken},
	}
	for _, tt := range tests {
		l, ok := byUUID[tt.uuid]
		require.True(t, ok, tt.uuid)
		require.Equal(t, tt.user, l.Username, tt.uuid)
		require.Equal(t, tt.password, l.Password, tt.uuid)
		require.Equal(t, tt.token, l.Token, tt.uuid)
	}
	require.Len(t, tests, len(directory.DemoLogins))
}

// TestStart: the gateway serves on its URL and alice can log in; mutate is applied.
func TestStart(t *testing.T) {
	gw := gatewaytest.Start(t, func(c *gateway.Config) { c.PublicHost = "example.test:1" })
	req, err := http.NewRequest(http.MethodGet, gw.URL()+"/api/user/login?with_websocket=true", nil)
	require.NoError(t, err)
	req.SetBasicAuth(gatewaytest.AliceUser, gatewaytest.AlicePassword)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out struct {
		UserUUID     string `json:"user_uuid"`
		WebsocketURL string `json:"websocket_url"`
	}
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, gatewaytest.AliceUUID, out.UserUUID)
	require.Contains(t, out.WebsocketURL, "example.test:1")
}
