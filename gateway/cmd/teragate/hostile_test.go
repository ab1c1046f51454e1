package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeHostilePluginAndRolesDirs starts the real binary on plugin and roles directories
// holding what a hostile file system offers under plugin names: a link to /dev/zero (which used
// to exhaust the memory at every start), a FIFO (which used to stop the server from ever
// listening), a link to a secret outside the directory (which used to be read), a directory and a
// huge file. The server starts, serves, rejects each one once with its reason (logged, counted,
// shown in the banner) and keeps the built-ins; SIGTERM ends it within its shutdown timeout.
func TestServeHostilePluginAndRolesDirs(t *testing.T) {
	bin := buildBinary(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "shadow")
	require.NoError(t, os.WriteFile(secret, []byte("root:$6$secret"), 0o600))
	plugins, roles := t.TempDir(), t.TempDir()
	hostile := func(dir string, names [5]string) {
		require.NoError(t, os.Symlink("/dev/zero", filepath.Join(dir, names[0])))
		require.NoError(t, syscall.Mkfifo(filepath.Join(dir, names[1]), 0o644))
		require.NoError(t, os.Symlink(secret, filepath.Join(dir, names[2])))
		require.NoError(t, os.Mkdir(filepath.Join(dir, names[3]), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, names[4]), nil, 0o644))
		require.NoError(t, os.Truncate(filepath.Join(dir, names[4]), 1<<30)) // sparse: 1 GiB of zeros
	}
	hostile(plugins, [5]string{"filter.user.wasm", "filter.participant.wasm", "filter.device.wasm", "rpc.sessions.wasm", "rpc.huge.wasm"})
	hostile(roles, [5]string{"zero.wasm", "fifo.wasm", "shadow.wasm", "dir.wasm", "huge.wasm"})
	cfg := filepath.Join(t.TempDir(), "teragate.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("shutdown_timeout: 3s\n"), 0o600))

	logs := &syncBuilder{}
	cmd, base, banner := startServeLog(t, bin, writerFunc(logs.WriteString), "--config", cfg, "--insecure",
		"--plugins", plugins, "--roles", roles)

	// It serves: a login works and the built-in filters stand in for the rejected files.
	req, _ := http.NewRequest(http.MethodGet, base+"/api/user/login", nil)
	req.SetBasicAuth("alice", "alice-demo")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Regexp(t, `Plugins .*filter\.user \(built-in\)`, banner.String())

	reasons := map[string]string{
		"filter.user":        "symbolic link leads outside the directory (it resolves to /dev/zero)",
		"filter.participant": "not a regular file: it is a named pipe (FIFO)",
		"filter.device":      "symbolic link leads outside the directory (it resolves to " + secret + ")",
		"rpc.sessions":       "not a regular file: it is a directory",
		"rpc.huge":           "file too large: 1073741824 bytes",
	}
	// An id without a built-in shows its rejection in the banner; every rejection is logged.
	require.Regexp(t, `Rejected +rpc\.huge rejected: .*file too large`, banner.String())
	for id, why := range reasons {
		require.Regexp(t, `plugin\.`+regexp.QuoteMeta(id)+`: plugin file rejected.*`+regexp.QuoteMeta(why), logs.String())
	}
	roleReasons := map[string]string{"zero": "/dev/zero", "fifo": "named pipe", "shadow": secret, "dir": "a directory", "huge": "file too large"}
	require.Eventually(t, func() bool {
		for role, why := range roleReasons {
			if !regexp.MustCompile(`role plugin rejected.*role=` + role + ` .*` + regexp.QuoteMeta(why)).MatchString(logs.String()) {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "role rejections logged:\n%s", logs)

	// Each file was rejected exactly once: the plugin directory is loaded once at start.
	metrics := scrape(t, base+"/metrics")
	for id := range reasons {
		require.Contains(t, metrics, fmt.Sprintf(`teragate_plugin_loads_total{plugin=%q,result="rejected"} 1`+"\n", id))
		require.Equal(t, 1, strings.Count(logs.String(), "plugin."+id+": plugin file rejected"), "logged once: %s", id)
	}
	require.Contains(t, metrics, `teragate_stations_role_loads_total{result="rejected"} 5`+"\n")
	require.NotContains(t, logs.String(), "root:$6$secret")

	// SIGTERM: a clean exit within the shutdown timeout (3 s) plus the time to stop the process.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		require.NoError(t, err, "clean exit after SIGTERM; log:\n%s", logs)
	case <-time.After(3*time.Second + 5*time.Second):
		t.Fatalf("teragate did not exit within its shutdown timeout after SIGTERM; log:\n%s", logs)
	}
}

type writerFunc func(string)

func (w writerFunc) Write(p []byte) (int, error) { w(string(p)); return len(p), nil }

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
