package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/pdktest"
)

const topic = "module.TeraServer.UserManagerModule.events"

// Test_main checks the plugin natively: the admin still receives DEVICE_STATUS_CHANGED, alice (a
// non-admin user who can see the device) does not, and other device events are unchanged.
func Test_main(t *testing.T) {
	h := pdktest.New(t)
	require.Equal(t, []string{"user"}, h.Info.GetFilterKinds())
	h.Directory.AddProject("p1", "s1").AddUser("admin", true).AddUser("alice", false, "p1").
		AddDevice("robot1", []string{"s1"})
	everyone := []pdktest.Recipient{{UUID: "admin"}, {UUID: "alice"}}

	status := &opentera.DeviceEvent{DeviceUuid: "robot1", Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: `{"battery": 80}`}
	require.Equal(t, []string{"admin"}, h.Who(t, pdk.KindUser, topic, status, everyone...))

	connected := &opentera.DeviceEvent{DeviceUuid: "robot1", Type: opentera.DeviceEvent_DEVICE_CONNECTED}
	require.Equal(t, []string{"admin", "alice"}, h.Who(t, pdk.KindUser, topic, connected, everyone...))

	rule, err := h.Rule(pdk.KindUser, topic, status)
	require.NoError(t, err)
	require.False(t, rule.GetCacheable(), "a type-dependent DeviceEvent rule must not be cached per device")
}

// TestBuild builds the plugin as the README says (skipped with -short).
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm plugin; skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "filter.user.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	st, err := os.Stat(out)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(100_000))
}
