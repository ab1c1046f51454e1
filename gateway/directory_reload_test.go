package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

// TestIdentityFileHotReload edits the identity file of a running gateway: access changes apply to
// open sockets at once, a removed device's socket is closed with 4000, and a broken file changes
// nothing.
func TestIdentityFileHotReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identities.yaml")
	demo := string(directory.DemoYAML)
	require.NoError(t, os.WriteFile(path, []byte(demo), 0o600))
	e := startGateway(t, func(c *gateway.Config) { c.Identities = path })

	a := e.connect(directory.KindUser, "alice:alice-demo")
	r2 := e.connect(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot2UUID))

	// A broken file is refused; the gateway keeps the old directory.
	write := func(content string) {
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, path)) // write-then-rename, as editors and deploy tools do
	}
	write("users: [{uuid: broken")
	time.Sleep(600 * time.Millisecond) // past the watcher's 200 ms debounce
	code, _ := e.login(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot2UUID), "")
	require.Equal(t, 200, code, "the broken file did not replace the directory")
	e.publish(umEvents, &opentera.DeviceEvent{DeviceUuid: directory.DemoRobot2UUID, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED})
	require.Equal(t, directory.DemoRobot2UUID, r2.event()["deviceUuid"], "robot2 is still connected and served")

	// Give alice project p3 too and remove robot2 (its token line and its entry).
	changed := strings.Replace(demo, "projects: [p1]", "projects: [p1, p3]", 1)
	start := strings.Index(changed, "  - uuid: "+directory.DemoRobot2UUID)
	end := strings.Index(changed, "services:")
	require.Positive(t, start)
	changed = changed[:start] + "\n" + changed[end:]
	write(changed)

	r2.expectClose(4000)
	// Alice now sees paula (p3): poll with events until the new access applies.
	for i := 0; ; i++ {
		e.publish(umEvents, &opentera.ParticipantEvent{ParticipantUuid: paula, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED})
		m := e.marker("reload")
		got := drainUntil(t, a, m)
		if len(got) > 0 {
			require.Equal(t, []string{"participant:" + paula}, subjects(got[len(got)-1:]))
			break
		}
		require.Less(t, i, 100, "alice never got access to p3")
	}
	// robot2 can no longer log in.
	code, _ = e.login(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot2UUID), "")
	require.Equal(t, 401, code)
}

// TestIdentityFileReloadMetric: a rejected identity file sets
// teragate_directory_last_reload_successful to 0 (and counts an error); the next good version, or
// the file put back as it was, sets it to 1 again.
func TestIdentityFileReloadMetric(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identities.yaml")
	demo := string(directory.DemoYAML)
	require.NoError(t, os.WriteFile(path, []byte(demo), 0o600))
	e := startGateway(t, func(c *gateway.Config) { c.Identities = path })

	write := func(content string) {
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	metricIs := func(want string) {
		t.Helper()
		line := "teragate_directory_last_reload_successful " + want + "\n"
		require.Eventually(t, func() bool {
			_, b := e.do(http.MethodGet, "/metrics", nil, nil)
			return strings.Contains(string(b), line)
		}, 10*time.Second, 20*time.Millisecond, "want %q", line)
	}
	metricIs("1")

	// Broken YAML, then the original file back.
	write("users: [{uuid: broken")
	metricIs("0")
	_, b := e.do(http.MethodGet, "/metrics", nil, nil)
	require.Contains(t, string(b), `teragate_directory_reloads_total{result="error"} 1`)
	write(demo)
	metricIs("1")

	// A validation error (bad bcrypt hash), then a fixed, changed file.
	write(strings.Replace(demo, "password_hash: $2", "password_hash: x$2", 1))
	metricIs("0")
	write(strings.Replace(demo, "projects: [p1]", "projects: [p1, p3]", 1))
	metricIs("1")
	_, b = e.do(http.MethodGet, "/metrics", nil, nil)
	require.Contains(t, string(b), `teragate_directory_reloads_total{result="error"} 2`)
}
