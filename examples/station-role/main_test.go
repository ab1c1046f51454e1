//go:build !wasip1

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	stationUUID   = "00000000-0000-4000-8000-000000000501"
	stationToken  = "studio-station-token-Kp3vX9qLm2Wz7RtY"
	operatorToken = "operator-admin-token-Hq8nB4xZc6Vy1JsD"
)

// TestWalkthrough runs README.md end to end with the real binaries: `teragate serve` and
// `teragate station` as processes, the greeter role built from this directory. The role is set
// on the station through the admin API, runs, reports its status; greeter.wasm is replaced in
// the roles directory and the running instance swaps to it without the station reconnecting;
// the gateway is killed with SIGKILL and restarted, and the station's config is still there and
// running again. Skipped with -short (builds the binary and Wasm).
func TestWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds teragate and a Wasm role; skipped with -short")
	}
	bin := t.TempDir()
	teragate := filepath.Join(bin, "teragate")
	build(t, nil, "-o", teragate, "../../gateway/cmd/teragate")
	v1 := filepath.Join(bin, "greeter-v1.wasm")
	v2 := filepath.Join(bin, "greeter-v2.wasm")
	wasm := []string{"GOOS=wasip1", "GOARCH=wasm"}
	build(t, wasm, "-buildmode=c-shared", "-o", v1, ".")
	build(t, wasm, "-buildmode=c-shared", "-ldflags", "-X main.greeting=bonjour", "-o", v2, ".")

	data, roles, state := t.TempDir(), t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	serve := func() *exec.Cmd {
		cmd := exec.Command(teragate, "serve", "--insecure", "--listen", addr, "--identities", "identities.yaml",
			"--data", data, "--roles", roles, "--log-level", "warn")
		cmd.Stderr = os.Stderr // the banner on stdout is not needed
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		require.Eventually(t, func() bool {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 60*time.Second, 20*time.Millisecond)
		return cmd
	}
	gw := serve()

	// 1. Drop the role into the roles directory (write, then rename).
	install(t, roles, v1)
	require.Eventually(t, func() bool { return strings.Contains(get(t, base, "/api/stations"), hash(t, v1)) },
		30*time.Second, 20*time.Millisecond)

	// 2. Give the station one greeter (it is offline: stored for its registration).
	code := put(t, base, `{"greeter": {"g1": {"options": {"name": "studio A"}}}}`)
	require.Equal(t, http.StatusAccepted, code)

	// 3. Start the station agent.
	st := exec.Command(teragate, "station", "--url", base, "--token", stationToken, "--state", state,
		"--tick", "100ms", "--block", "mixer", "--log-level", "warn")
	st.Stdout, st.Stderr = os.Stderr, os.Stderr
	require.NoError(t, st.Start())
	t.Cleanup(func() { _ = st.Process.Kill(); _ = st.Wait() })

	running := func(script, greeting string) func() bool {
		return func() bool {
			s := station(t, base)
			return s.Online && len(s.Running) == 1 && s.Running[0].Script == "sha256:"+script &&
				strings.Contains(string(s.Status), greeting)
		}
	}
	require.Eventually(t, running(hash(t, v1), "hello studio A"), 60*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, station(t, base).Registrations)

	// 4. Replace the role: the running instance swaps to the new plugin, same uuid and options,
	//    and the station did not reconnect.
	t0 := time.Now()
	install(t, roles, v2)
	require.Eventually(t, running(hash(t, v2), "bonjour studio A"), 60*time.Second, 10*time.Millisecond)
	t.Logf("greeter.wasm replaced → the station runs and reports the new version: %s (debounce, validation, push, fetch, compile, swap)", time.Since(t0))
	require.Equal(t, 1, station(t, base).Registrations, "no reconnect")

	// 5. kill -9 the gateway and start it again: the station's config survived, and the station
	//    reconnects and runs it.
	require.NoError(t, gw.Process.Signal(syscall.SIGKILL))
	_ = gw.Wait()
	serve()
	s := station(t, base)
	require.Contains(t, s.Roles, "greeter")
	require.Contains(t, s.Roles["greeter"], "g1")
	require.Eventually(t, running(hash(t, v2), "bonjour studio A"), 60*time.Second, 20*time.Millisecond)

	// 6. The station stops cleanly on SIGTERM.
	require.NoError(t, st.Process.Signal(syscall.SIGTERM))
	require.NoError(t, st.Wait())
}

type stationView struct {
	Online        bool                                  `json:"online"`
	Registrations int                                   `json:"registrations"`
	Roles         map[string]map[string]json.RawMessage `json:"roles"`
	Running       []struct{ Role, UUID, Script, State string }
	Status        json.RawMessage `json:"status"`
}

func station(t *testing.T, base string) stationView {
	var v stationView
	require.NoError(t, json.Unmarshal([]byte(get(t, base, "/api/stations/"+stationUUID)), &v))
	return v
}

func build(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
}

func install(t *testing.T, roles, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	tmp := filepath.Join(roles, ".greeter.wasm.tmp")
	require.NoError(t, os.WriteFile(tmp, b, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(roles, "greeter.wasm")))
}

func hash(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func get(t *testing.T, base, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "OpenTera "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

func put(t *testing.T, base, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/api/stations/"+stationUUID+"/roles", strings.NewReader(body))
	req.Header.Set("Authorization", "OpenTera "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}
