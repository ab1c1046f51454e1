package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/sdk/station"
)

var (
	roleBuildMu sync.Mutex
	roleBuilds  = map[string][]byte{}
)

// buildHeartbeat builds plugins/role/heartbeat with its version string set to version and
// returns the module's bytes. Skipped under -short.
func buildHeartbeat(t *testing.T, version string) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Wasm role plugin; skipped with -short")
	}
	roleBuildMu.Lock()
	defer roleBuildMu.Unlock()
	if b, ok := roleBuilds[version]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), "heartbeat.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-ldflags", "-X main.version="+version, "-o", out, "../plugins/role/heartbeat")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	roleBuilds[version] = data
	return data
}

func scriptOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// dropRole installs data as roles/<name>.wasm by write-then-rename.
func dropRole(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name+".wasm")))
}

// TestStationAgentRoles runs the real station agent (sdk/station, as `teragate station` does)
// against a real gateway with the heartbeat role plugin built from source: the config set while
// the station was offline starts on registration; the role's status becomes the station
// device's status in presence (an admin's websocket receives DEVICE_STATUS_CHANGED); an
// allow-listed program's exit code and a refused program come back as job results; the three
// refusals come from the agent's validation, in order, naming the roles; replacing
// heartbeat.wasm on the manager swaps every running instance to the new plugin without a
// reconnect; a file that is not a role plugin is rejected and changes nothing; options changes
// and removals apply per uuid; a restarted agent reports its saved config.
func TestStationAgentRoles(t *testing.T) {
	v1, v2 := buildHeartbeat(t, "1"), buildHeartbeat(t, "2")
	roles := t.TempDir()
	dropRole(t, roles, "heartbeat", v1)
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids; c.Roles = roles })
	<-e.gw.StationsReady()
	require.Equal(t, scriptOf(v1), e.stations().Roles[0].Script)

	code, out := e.editRoles(http.MethodPut, `{"heartbeat": {"hb-1": {"options": {"label": "studio A", "program": "fail", "every": 2}},
		"hb-2": {"options": {"label": "studio B", "program": "rm", "every": 3}}}}`)
	require.Equal(t, http.StatusAccepted, code, "%v", out)

	prog := filepath.Join(t.TempDir(), "fail.sh")
	require.NoError(t, os.WriteFile(prog, []byte("#!/bin/sh\necho encoding \"$1\"\nexit 3\n"), 0o755))
	state := t.TempDir()
	agent, cancel := runAgent(t, e, state, map[string]string{"fail": prog})

	waitRunning := func(script string, uuids ...string) {
		t.Helper()
		require.Eventually(t, func() bool {
			st := e.stations().Stations[0]
			if len(st.Running) != len(uuids) {
				return false
			}
			for _, r := range st.Running {
				if !slices.Contains(uuids, r.UUID) || r.Script != script || r.State != "running" {
					return false
				}
			}
			return true
		}, 3*time.Minute, 20*time.Millisecond) // a cold compile under -race on a busy 2-core box is slow
	}
	waitRunning(scriptOf(v1), "hb-1", "hb-2")
	require.Equal(t, 1, e.stations().Stations[0].Registrations)
	// The admin connects only now: a socket left unread while the roles compile (minutes under
	// -race on a busy machine) would miss its pings and be closed. The role reports every 2 s.
	admin := e.connect(directory.KindUser, "admin:admin-demo")

	// The role's status reaches presence: the admin's socket gets DEVICE_STATUS_CHANGED.
	for {
		ev := admin.event()
		if ev["type"] == "DEVICE_STATUS_CHANGED" && ev["deviceUuid"] == stationUUID {
			require.Contains(t, ev["deviceStatus"], `\"role\":\"heartbeat\"`)
			require.Contains(t, ev["deviceStatus"], `studio A`)
			break
		}
	}

	// … and the user manager's status_devices RPC returns it.
	raw, err := e.gw.Call(context.Background(), gateway.UserManagerModule, "status_devices")
	require.NoError(t, err)
	require.Contains(t, string(raw), stationUUID)
	require.Contains(t, string(raw), `\"role\":\"heartbeat\"`)

	// The programs capability: the allow-listed script failed with exit code 3; rm is refused.
	require.Eventually(t, func() bool {
		var jobs struct {
			Jobs []struct {
				UUID      string `json:"uuid"`
				Completed bool   `json:"completed"`
				ExitCode  int32  `json:"exit_code"`
				Error     string `json:"error"`
			} `json:"jobs"`
		}
		_, b := e.do(http.MethodGet, "/api/stations/"+stationUUID, nil, map[string]string{"Authorization": "OpenTera " + serviceToken})
		require.NoError(t, json.Unmarshal(b, &jobs))
		var failed, refused bool
		for _, j := range jobs.Jobs {
			failed = failed || j.UUID == "hb-1" && !j.Completed && j.ExitCode == 3
			refused = refused || j.UUID == "hb-2" && j.Error == "program not allowed"
		}
		return failed && refused
	}, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		for _, r := range agent.Running() {
			if r.UUID == "hb-1" && strings.Contains(r.Status, `"exitCode": 3`) {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "the role saw its program's exit code on a tick")

	// Refusals, in the agent's order, each naming the role; nothing changes.
	for _, tc := range []struct{ body, code, role string }{
		{`{"mixer": {"m1": {}}, "encode": {"e1": {}}}`, "ROLE_BLOCKED", "mixer"},
		{`{"encode": {"e1": {}}, "heartbeat": {"a": {}, "b": {}, "c": {}, "d": {}, "e": {}}}`, "MISSING_ROLE_FACTORY", "encode"},
		{`{"heartbeat": {"a": {}, "b": {}, "c": {}, "d": {}, "e": {}}}`, "INVALID_CONFIGURATION", "heartbeat"},
	} {
		code, out := e.editRoles(http.MethodPatch, tc.body)
		require.Equal(t, http.StatusConflict, code, "%v", out)
		res := out["result"].(map[string]any)
		require.Equal(t, tc.code, res["code"])
		require.Contains(t, res["message"], tc.role)
		require.Equal(t, []any{tc.role}, res["roles"])
	}
	waitRunning(scriptOf(v1), "hb-1", "hb-2")

	// Hot reload: heartbeat.wasm replaced on the manager → both instances swap, no reconnect.
	swaps := agent.Stats().Swaps
	dropRole(t, roles, "heartbeat", v2)
	waitRunning(scriptOf(v2), "hb-1", "hb-2")
	require.Equal(t, 1, e.stations().Stations[0].Registrations, "no reconnect")
	st := agent.Stats()
	require.Equal(t, swaps+2, st.Swaps)
	require.Equal(t, 1, st.Registrations)
	t.Logf("role swap (stop old instance → start new, module compiled): %s", st.LastSwap)
	require.Eventually(t, func() bool {
		for _, r := range agent.Running() {
			if r.UUID == "hb-1" && strings.Contains(r.Status, `"version": "2"`) {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond)

	// A file that is not a role plugin is rejected; the running version stays.
	dropRole(t, roles, "heartbeat", []byte("not wasm"))
	require.Eventually(t, func() bool {
		code, b := e.do(http.MethodGet, "/api/stations", nil, map[string]string{"Authorization": "OpenTera " + serviceToken})
		return code == http.StatusOK && strings.Contains(string(b), `"rejected":{"heartbeat"`)
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, scriptOf(v2), e.stations().Roles[0].Script)
	_, metrics := e.do(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{`teragate_stations_online 1`, `teragate_stations_role_loads_total{result="loaded"} 2`,
		`teragate_stations_role_loads_total{result="rejected"} 1`, `teragate_stations_pushes_total{result="ROLE_BLOCKED"} 1`,
		`teragate_stations_pushes_total{result="MISSING_ROLE_FACTORY"} 1`, `teragate_stations_role_reload_pushes_total 1`} {
		require.Contains(t, string(metrics), want)
	}

	// Options change (update in place) and a removal, per uuid.
	code, out = e.editRoles(http.MethodPatch, `{"heartbeat": {"hb-1": {"options": {"label": "studio C"}}, "hb-2": null}}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	waitRunning(scriptOf(v2), "hb-1")
	require.Eventually(t, func() bool {
		r := agent.Running()
		return len(r) == 1 && strings.Contains(r[0].Status, "studio C")
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, swaps+2, agent.Stats().Swaps, "an options change is an update, not a swap")

	// A restarted agent reports its saved config and registers again.
	cancel()
	require.Eventually(t, func() bool { return !e.stations().Stations[0].Online }, 10*time.Second, 20*time.Millisecond)
	agent2, _ := runAgent(t, e, state, nil)
	require.Equal(t, []string{"hb-1"}, mapKeys(agent2.Applied()["heartbeat"]))
	waitRunning(scriptOf(v2), "hb-1")
	require.Equal(t, 2, e.stations().Stations[0].Registrations)
}

var (
	stationCacheOnce sync.Once
	stationCacheDir  string
)

// stationCache is a compilation cache shared by the agents of this test process: a role
// compiled once (slow under -race) is not compiled again by the next test's agent.
func stationCache(t *testing.T) string {
	stationCacheOnce.Do(func() {
		d, err := os.MkdirTemp("", "teragate-station-cache-")
		if err != nil {
			t.Fatal(err)
		}
		stationCacheDir = d
	})
	return stationCacheDir
}

// runAgent starts a station agent for the test station; cancel stops it and waits for it.
func runAgent(t *testing.T, e *env, state string, programs map[string]string) (*station.Agent, func()) {
	t.Helper()
	a, err := station.New(station.Config{URL: e.base, Token: stationToken, StateDir: state, Hostname: "enc-1", CacheDir: stationCache(t),
		BlockedRoles: []string{"mixer"}, Programs: programs, TickInterval: 50 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "station", Level: hclog.Warn, Output: os.Stderr})})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return a, stop
}

// TestStationHostileRoles runs misbehaving role plugins (built from testdata/roles/hostile) next
// to a healthy heartbeat on one station: a Tick that loops forever is stopped at its deadline, a
// Start that panics and a Tick that allocates without bound fail; each failed instance is
// discarded and restarted with backoff, reported as failed to the manager, while the heartbeat
// keeps ticking and the station stays connected.
func TestStationHostileRoles(t *testing.T) {
	hb := buildHeartbeat(t, "1")
	out := filepath.Join(t.TempDir(), "hostile.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/roles/hostile")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	hostile, err := os.ReadFile(out)
	require.NoError(t, err)

	roles := t.TempDir()
	dropRole(t, roles, "heartbeat", hb)
	dropRole(t, roles, "hostile", hostile)
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids; c.Roles = roles })
	<-e.gw.StationsReady()
	code, resp := e.editRoles(http.MethodPut, `{"heartbeat": {"hb": {}}, "hostile": {"loop": {"options": {"mode": "loop"}},
		"panic": {"options": {"mode": "panic"}}, "bomb": {"options": {"mode": "bomb"}}}}`)
	require.Equal(t, http.StatusAccepted, code, "%v", resp)

	a, err := station.New(station.Config{URL: e.base, Token: stationToken, StateDir: t.TempDir(),
		TickInterval: 50 * time.Millisecond, CallTimeout: 300 * time.Millisecond, MemoryPages: 256,
		CacheDir: stationCache(t),
		Logger:   hclog.New(&hclog.LoggerOptions{Name: "station", Level: hclog.Error, Output: os.Stderr})})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	beats := func() int {
		for _, r := range a.Running() {
			if r.UUID == "hb" {
				var s struct{ Beats int }
				_ = json.Unmarshal([]byte(r.Status), &s)
				return s.Beats
			}
		}
		return -1
	}
	failed := map[string]bool{}
	require.Eventually(t, func() bool {
		for _, r := range e.stations().Stations[0].Running {
			if strings.HasPrefix(r.State, "failed: ") {
				failed[r.UUID] = true
			}
		}
		return failed["loop"] && failed["panic"] && failed["bomb"] && a.Stats().Restarts >= 3
	}, 3*time.Minute, 20*time.Millisecond, "failed: %v, stats %+v", failed, a.Stats())
	before := beats()
	require.Eventually(t, func() bool { return beats() > before+3 }, 30*time.Second, 20*time.Millisecond, "the heartbeat keeps ticking")
	require.Equal(t, 1, e.stations().Stations[0].Registrations)
	require.Equal(t, 1, a.Stats().Registrations)
}

// TestStationJobOffer offers jobs through POST /api/stations/jobs (the reference's
// StartEncodeRequest): the heartbeat instance whose program is idle takes it and runs the program
// with the job's config as its argument; the program's completion comes back under the job's id.
// A role nobody runs gets 503.
func TestStationJobOffer(t *testing.T) {
	hb := buildHeartbeat(t, "1")
	roles := t.TempDir()
	dropRole(t, roles, "heartbeat", hb)
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids; c.Roles = roles })
	<-e.gw.StationsReady()
	outFile := filepath.Join(t.TempDir(), "job.json")
	prog := filepath.Join(t.TempDir(), "encode.sh")
	require.NoError(t, os.WriteFile(prog, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+outFile+"\n"), 0o755))
	code, resp := e.editRoles(http.MethodPut, `{"heartbeat": {"enc": {"options": {"program": "encode", "every": 1000000}}, "idle": {}}}`)
	require.Equal(t, http.StatusAccepted, code, "%v", resp)
	runAgent(t, e, t.TempDir(), map[string]string{"encode": prog})
	require.Eventually(t, func() bool { return len(e.stations().Stations[0].Running) == 2 }, 3*time.Minute, 20*time.Millisecond)

	offer := func(body string) (int, map[string]any) {
		code, b := e.do(http.MethodPost, "/api/stations/jobs", strings.NewReader(body), map[string]string{"Authorization": "OpenTera " + serviceToken})
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), string(b))
		return code, out
	}
	code, out := offer(`{"role": "heartbeat", "job": "job-1", "config": {"file": "talk-1.dv"}}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, stationUUID, out["station"])
	require.Equal(t, "enc", out["instance"], "the idle instance has no program: it declines")
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(outFile)
		return err == nil && string(b) == `{"file":"talk-1.dv"}`
	}, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		_, b := e.do(http.MethodGet, "/api/stations/"+stationUUID, nil, map[string]string{"Authorization": "OpenTera " + serviceToken})
		return strings.Contains(string(b), `"job":"job-1","program":"encode","completed":true,"exit_code":0`)
	}, 30*time.Second, 20*time.Millisecond)

	code, out = offer(`{"role": "cut", "config": {}}`)
	require.Equal(t, http.StatusServiceUnavailable, code, "%v", out)
	require.EqualValues(t, 0, out["offered"])
}
