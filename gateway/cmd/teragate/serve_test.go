package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// buildBinary builds the real teragate binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "teragate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run())
	return bin
}

// syncBuilder is a strings.Builder safe for one writer and concurrent readers.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs `teragate serve args...` and returns the base URL it prints.
func startServe(t *testing.T, bin string, args ...string) (*exec.Cmd, string, *syncBuilder) {
	t.Helper()
	return startServeLog(t, bin, os.Stderr, args...)
}

// startServeLog is startServe with the process's stderr (its log) written to stderr.
func startServeLog(t *testing.T, bin string, stderr io.Writer, args ...string) (*exec.Cmd, string, *syncBuilder) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	banner := &syncBuilder{}
	urlRE := regexp.MustCompile(`API\s+(https?://127\.0\.0\.1:\d+)/api/`)
	sc := bufio.NewScanner(stdout)
	var base string
	deadline := time.Now().Add(90 * time.Second) // a cold start compiles the built-in plugins
	for base == "" && time.Now().Before(deadline) && sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	require.NotEmpty(t, base, "no URL in the banner:\n%s", banner)
	// Keep reading the rest of the banner (demo logins) in the background.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			banner.WriteString(sc.Text() + "\n")
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done }) // kill first: stdout ends when the process does
	return cmd, base, banner
}

// TestServeBinary runs what a newcomer runs: `teragate serve` on its embedded defaults (TLS with
// a generated self-signed certificate, demo identities), logs in as the banner says, opens the
// websocket, publishes with `teragate publish`, and stops the server with SIGTERM.
func TestServeBinary(t *testing.T) {
	bin := buildBinary(t)
	cmd, base, banner := startServe(t, bin)
	require.True(t, strings.HasPrefix(base, "https://"), "TLS by default")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test server
	req, _ := http.NewRequest(http.MethodGet, base+"/api/user/login?with_websocket=true", nil)
	req.SetBasicAuth("alice", "alice-demo")
	resp, err := client.Do(req)
	require.NoError(t, err)
	var login map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&login))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", login)
	wsURL := login["websocket_url"].(string)
	require.True(t, strings.HasPrefix(wsURL, "wss://"), wsURL)

	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second} //nolint:gosec // self-signed test server
	ws, wresp, err := d.Dial(wsURL, nil)
	require.NoError(t, err)
	wresp.Body.Close()
	defer ws.Close()
	readEvent := func() map[string]any {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := ws.ReadMessage()
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		return m["message"].(map[string]any)["events"].([]any)[0].(map[string]any)
	}
	require.Equal(t, "USER_CONNECTED", readEvent()["type"])

	// The service token printed in the banner publishes through `teragate publish`.
	var svcToken string
	for _, l := range directory.DemoLogins {
		if l.Kind == directory.KindService {
			svcToken = l.Token
		}
	}
	require.Eventually(t, func() bool { return strings.Contains(banner.String(), svcToken) }, 10*time.Second, 10*time.Millisecond,
		"the banner lists the demo logins:\n%s", banner)
	// The banner's Admin line is the admin page's address, served over the same TLS.
	require.Contains(t, banner.String(), "Admin      "+base+"/admin ")
	resp, err = client.Get(base + "/admin")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(page), "<title>teragate admin</title>")
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	pub := exec.Command(bin, "publish", "--url", base, "--token", svcToken, "-k",
		"--topic", "websocket.user."+directory.DemoAliceUUID+".events",
		`{"@type": "type.googleapis.com/opentera.protobuf.JoinSessionEvent", "sessionUuid": "s-42", "sessionUsers": ["`+directory.DemoAliceUUID+`"], "sessionUrl": "https://meet/s-42"}`)
	out, err := pub.CombinedOutput()
	require.NoError(t, err, "%s", out)
	ev := readEvent()
	require.Equal(t, "s-42", ev["sessionUuid"])
	require.Equal(t, "https://meet/s-42", ev["sessionUrl"])

	// The built-in plugins serve (make build embeds them): the banner lists them and the admin
	// API shows filter.user from the binary, called for the event above.
	if os.Getenv("TERAGATE_REQUIRE_BUILTINS") != "" || strings.Contains(banner.String(), "(built-in)") {
		require.Contains(t, banner.String(), "filter.user (built-in)")
		require.Contains(t, banner.String(), "rpc.sessions (built-in)")
		req, _ = http.NewRequest(http.MethodGet, base+"/api/user/login", nil)
		req.SetBasicAuth("admin", "admin-demo")
		resp, err = client.Do(req)
		require.NoError(t, err)
		var adm map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&adm))
		resp.Body.Close()
		req, _ = http.NewRequest(http.MethodGet, base+"/api/plugins", nil)
		req.Header.Set("Authorization", "OpenTera "+adm["user_token"].(string))
		resp, err = client.Do(req)
		require.NoError(t, err)
		var pl struct {
			Plugins []struct {
				ID, File, State string
				Calls           uint64
			}
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&pl))
		resp.Body.Close()
		byID := map[string]int{}
		for i, p := range pl.Plugins {
			byID[p.ID] = i
		}
		for _, id := range []string{"filter.user", "filter.participant", "filter.device", "rpc.sessions"} {
			i, ok := byID[id]
			require.True(t, ok, "%s listed: %+v", id, pl.Plugins)
			require.Equal(t, "(built-in)", pl.Plugins[i].File)
			require.Equal(t, "active", pl.Plugins[i].State)
		}
		require.NotZero(t, pl.Plugins[byID["filter.user"]].Calls, "alice's events went through the built-in filter.user")
	}

	// A bad publish gets a clear error and a non-zero exit.
	bad := exec.Command(bin, "publish", "--url", base, "--token", "nope", "-k", "--topic", "x", `{"@type": "type.googleapis.com/opentera.protobuf.StopSessionEvent"}`)
	out, err = bad.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "401")

	// `teragate ws` (the README walkthrough's client) prints the frames of a websocket_url.
	req, _ = http.NewRequest(http.MethodGet, base+"/api/user/login?with_websocket=true", nil)
	req.SetBasicAuth("bob", "bob-demo")
	resp, err = client.Do(req)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&login))
	resp.Body.Close()
	wsCmd := exec.Command(bin, "ws", "-k", login["websocket_url"].(string))
	wsOut, err := wsCmd.StdoutPipe()
	require.NoError(t, err)
	wsErr := &strings.Builder{}
	wsCmd.Stderr = wsErr
	require.NoError(t, wsCmd.Start())
	line, err := bufio.NewReader(wsOut).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, `"USER_CONNECTED"`)
	require.Contains(t, line, directory.DemoBobUUID)

	// SIGTERM: the socket is closed with 1001 and the process exits 0.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err = ws.ReadMessage()
		if err != nil {
			break
		}
	}
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.Equal(t, websocket.CloseGoingAway, ce.Code)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		require.NoError(t, err, "clean exit after SIGTERM")
	case <-time.After(15 * time.Second):
		t.Fatal("teragate did not exit within 15 s of SIGTERM")
	}
	require.NoError(t, wsCmd.Wait())
	require.Contains(t, wsErr.String(), "closed by the server: 1001")
}

func TestServeBadConfig(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		file string
		want string
	}{
		{"unknown key", []string{"--config"}, "listn: x\n", "field listn not found"},
		{"bad identities", []string{"--identities"}, "users: [{uuid: u1}]\n", "directory"},
		{"bad log level", []string{"--log-level", "loud"}, "", "log_level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--insecure", "--listen", "127.0.0.1:0", "--data", dir}, tt.args...)
			if tt.file != "" {
				p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
				require.NoError(t, os.WriteFile(p, []byte(tt.file), 0o600))
				args = append(args, p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			require.Error(t, err)
			require.Contains(t, string(out), tt.want)
		})
	}
}

func TestHashPassword(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "hash-password")
	cmd.Stdin = strings.NewReader("s3cret\n")
	out, err := cmd.Output()
	require.NoError(t, err)
	hash := strings.TrimSpace(string(out))
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")))
	cmd = exec.Command(bin, "hash-password")
	cmd.Stdin = strings.NewReader("")
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "no password")
}

// TestServeReload: the operator edits the config file of a running `teragate serve`; the change
// is applied without a restart (log level), keys that need a restart are named, a broken file
// changes nothing, and SIGHUP reloads too.
func TestServeReload(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "teragate.yaml")
	write := func(s string) {
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(s), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	write("insecure: true\nlisten: 127.0.0.1:0\nlog_level: warn\nbuiltin_plugins: false\n")
	cmd := exec.Command(bin, "serve", "--config", path, "--data", dir)
	stderr := &syncBuilder{}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = pw.Close() })
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
		}
	}()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	// The banner is printed once serving; debug lines appear only after the reload.
	waitFor := func(what, s string) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Contains(stderr.String(), s) }, 30*time.Second, 20*time.Millisecond,
			"%s: want %q in stderr:\n%s", what, s, stderr)
	}
	time.Sleep(500 * time.Millisecond) // let the watcher start (a change before it is not an error, only unseen)
	require.Eventually(t, func() bool {
		write("insecure: true\nlisten: 127.0.0.1:0\nlog_level: debug\nbuiltin_plugins: false\nping_interval: 5s\n")
		return strings.Contains(stderr.String(), "reload (config file changed)")
	}, 30*time.Second, time.Second)
	waitFor("applied live", "applied: log_level")
	waitFor("restart-only key named", "need a restart (old values kept): ping_interval")

	write("log_level: [not a level\n")
	waitFor("broken file", "the running configuration is unchanged")

	write("insecure: true\nlisten: 127.0.0.1:0\nlog_level: info\nbuiltin_plugins: false\n")
	waitFor("fixed file", "applied: log_level\n")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	waitFor("SIGHUP", "reload (SIGHUP): nothing to apply")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}
