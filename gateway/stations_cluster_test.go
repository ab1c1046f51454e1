package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/testutil"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

// startStationNode starts one gateway of a cluster on srv with the station identities and the
// roles directory, sharing the JWT key as nodes behind a load balancer do.
func startStationNode(t *testing.T, srv *testutil.RedisServer, ids, roles string, mutate func(*gateway.Config)) *env {
	t.Helper()
	e := startGateway(t, func(c *gateway.Config) {
		c.Redis = srv.URL
		c.JWTKey = "two-node-test-key"
		c.RedisNodeTTL = gateway.Duration(1500 * time.Millisecond)
		c.Identities = ids
		c.Roles = roles
		if mutate != nil {
			mutate(c)
		}
	})
	<-e.gw.StationsReady()
	return e
}

// stationOn returns the test station in node e's GET /api/stations (fails when absent).
func (e *env) stationOn() (s struct {
	UUID          string                                `json:"uuid"`
	Online        bool                                  `json:"online"`
	Node          string                                `json:"node"`
	Registrations int                                   `json:"registrations"`
	Hostname      string                                `json:"hostname"`
	Roles         map[string]map[string]json.RawMessage `json:"roles"`
	Running       []struct{ Role, UUID, Script, State string }
	Status        json.RawMessage                 `json:"status"`
	LastResult    *struct{ Code, Message string } `json:"last_result"`
	Jobs          []struct {
		Job       string `json:"job"`
		Completed bool   `json:"completed"`
	} `json:"jobs"`
}) {
	e.t.Helper()
	code, b := e.do(http.MethodGet, "/api/stations", nil, map[string]string{"Authorization": "OpenTera " + serviceToken})
	require.Equal(e.t, http.StatusOK, code, string(b))
	var v struct {
		Stations []json.RawMessage `json:"stations"`
	}
	require.NoError(e.t, json.Unmarshal(b, &v), string(b))
	require.Len(e.t, v.Stations, 1, string(b))
	require.NoError(e.t, json.Unmarshal(v.Stations[0], &s))
	return s
}

// options returns the options of role/uuid in a stored config of the admin view.
func options(t *testing.T, roles map[string]map[string]json.RawMessage, role, uuid string) string {
	t.Helper()
	var in struct {
		Options json.RawMessage `json:"options"`
	}
	require.NoError(t, json.Unmarshal(roles[role][uuid], &in))
	return string(in.Options)
}

// TestStationsCluster runs two gateways on one real redis-server and the real station agent over
// real websockets, the station connected to node A and the admin talking to node B: B lists the
// station with A's state (online, its node, running instances, status, last result); a role edit
// sent to B is pushed by A and B answers with A's result (200, and 409 with the station's
// refusal); a job offered on B is taken by the station on A; the station reconnecting to B keeps
// the config set through A; and after both nodes restart (new data directories) the config is
// still there, listed by both and applied to a station connecting again.
func TestStationsCluster(t *testing.T) {
	hb := buildHeartbeat(t, "1")
	roles := t.TempDir()
	dropRole(t, roles, "heartbeat", hb)
	ids := stationIdentities(t)
	srv := testutil.StartRedis(t)
	a := startStationNode(t, srv, ids, roles, nil)
	b := startStationNode(t, srv, ids, roles, nil)
	require.NotEqual(t, a.gw.NodeID(), b.gw.NodeID())

	// Set through B while the station is offline: stored in Redis, 202.
	code, out := b.editRoles(http.MethodPut, `{"heartbeat": {"enc": {"options": {"program": "encode", "every": 1000000, "label": "set through B"}}, "idle": {}}}`)
	require.Equal(t, http.StatusAccepted, code, "%v", out)

	outFile := filepath.Join(t.TempDir(), "job.json")
	prog := filepath.Join(t.TempDir(), "encode.sh")
	require.NoError(t, os.WriteFile(prog, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+outFile+"\n"), 0o755))
	agent, stop := runAgent(t, a, t.TempDir(), map[string]string{"encode": prog})

	// B lists the station connected to A, with A's state.
	require.Eventually(t, func() bool {
		s := b.stationOn()
		if !s.Online || s.Node != a.gw.NodeID() || len(s.Running) != 2 || s.LastResult == nil || s.LastResult.Code != "OK" {
			return false
		}
		for _, r := range s.Running {
			if r.State != "running" || r.Script != scriptOf(hb) {
				return false
			}
		}
		return strings.Contains(string(s.Status), "set through B")
	}, 3*time.Minute, 50*time.Millisecond, "B's view: %+v", b.stationOn())
	s := b.stationOn()
	require.Equal(t, stationUUID, s.UUID)
	require.Equal(t, "enc-1", s.Hostname)
	require.Equal(t, 1, s.Registrations)
	require.JSONEq(t, `{"program": "encode", "every": 1000000, "label": "set through B"}`, options(t, s.Roles, "heartbeat", "enc"))
	// … and so does GET /api/stations/{uuid} on B.
	code, raw := b.do(http.MethodGet, "/api/stations/"+stationUUID, nil, map[string]string{"Authorization": "OpenTera " + serviceToken})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(raw), `"node":"`+a.gw.NodeID()+`"`)

	// An edit sent to B reaches the station on A; B answers with A's result.
	code, out = b.editRoles(http.MethodPatch, `{"heartbeat": {"enc": {"options": {"program": "encode", "every": 1000000, "label": "patched through B"}}}}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, true, out["pushed"])
	require.Equal(t, "OK", out["result"].(map[string]any)["code"])
	require.Equal(t, a.gw.NodeID(), out["station"].(map[string]any)["node"], "the answer is A's")
	require.Eventually(t, func() bool {
		for _, r := range agent.Running() {
			if r.UUID == "enc" && strings.Contains(r.Status, "patched through B") {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond)
	// A refusal comes back as it does locally: 409 with the station's error, nothing stored.
	code, out = b.editRoles(http.MethodPatch, `{"mixer": {"m1": {}}}`)
	require.Equal(t, http.StatusConflict, code, "%v", out)
	res := out["result"].(map[string]any)
	require.Equal(t, "ROLE_BLOCKED", res["code"])
	require.Equal(t, []any{"mixer"}, res["roles"])
	require.NotContains(t, b.stationOn().Roles, "mixer")

	// A job offered on B is taken by the station on A.
	code, raw = b.do(http.MethodPost, "/api/stations/jobs", strings.NewReader(`{"role": "heartbeat", "job": "job-b", "config": {"file": "talk-b.dv"}}`),
		map[string]string{"Authorization": "OpenTera " + serviceToken})
	require.Equal(t, http.StatusOK, code, string(raw))
	var offered struct{ Station, Instance string }
	require.NoError(t, json.Unmarshal(raw, &offered))
	require.Equal(t, stationUUID, offered.Station)
	require.Equal(t, "enc", offered.Instance, "the idle instance has no program: it declines")
	require.Eventually(t, func() bool {
		got, err := os.ReadFile(outFile)
		return err == nil && string(got) == `{"file":"talk-b.dv"}`
	}, 30*time.Second, 20*time.Millisecond)
	// The program's completion, reported to A, is in B's view.
	require.Eventually(t, func() bool {
		for _, j := range b.stationOn().Jobs {
			if j.Job == "job-b" && j.Completed {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond)
	_, metrics := b.do(http.MethodGet, "/metrics", nil, nil)
	require.Contains(t, string(metrics), `teragate_stations_forwarded_total{op="edit",result="answered"} 2`)
	require.Contains(t, string(metrics), `teragate_stations_forwarded_total{op="offer",result="answered"} 1`)

	// Set through A; the station then reconnects to B with no saved config of its own: it gets
	// the config set through A from Redis.
	code, out = a.editRoles(http.MethodPatch, `{"heartbeat": {"idle": {"options": {"label": "set through A"}}}}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	stop()
	require.Eventually(t, func() bool { return !b.stationOn().Online }, 10*time.Second, 20*time.Millisecond)
	agent2, stop2 := runAgent(t, b, t.TempDir(), nil)
	require.Eventually(t, func() bool {
		s := a.stationOn()
		return s.Online && s.Node == b.gw.NodeID() && len(s.Running) == 2 && s.Registrations == 2
	}, 3*time.Minute, 50*time.Millisecond, "A's view: %+v", a.stationOn())
	require.JSONEq(t, `{"label": "set through A"}`, string(agent2.Applied()["heartbeat"]["idle"].Options))
	require.JSONEq(t, `{"program": "encode", "every": 1000000, "label": "patched through B"}`, string(agent2.Applied()["heartbeat"]["enc"].Options))
	want := a.stationOn().Roles
	stop2()

	// Restart both nodes (new data directories): the config is in Redis.
	for _, e := range []*env{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, e.gw.Shutdown(ctx))
		cancel()
	}
	a2 := startStationNode(t, srv, ids, roles, nil)
	b2 := startStationNode(t, srv, ids, roles, nil)
	for _, e := range []*env{a2, b2} {
		s := e.stationOn()
		require.False(t, s.Online, "the nodes that held it are gone")
		require.Equal(t, want, s.Roles)
	}
	agent3, _ := runAgent(t, a2, t.TempDir(), nil)
	require.Eventually(t, func() bool { s := b2.stationOn(); return s.Online && s.Node == a2.gw.NodeID() && len(s.Running) == 2 },
		3*time.Minute, 50*time.Millisecond)
	require.JSONEq(t, `{"label": "set through A"}`, string(agent3.Applied()["heartbeat"]["idle"].Options))
}

// editAnswer is the answer to an edit sent from another goroutine.
type editAnswer struct {
	code int
	body []byte
	err  error
}

// editAsync sends an edit of the test station's roles; it may run on any goroutine (errors are
// returned, not failed on).
func (e *env) editAsync(method, body string) editAnswer {
	req, err := http.NewRequest(method, e.base+"/api/stations/"+stationUUID+"/roles", strings.NewReader(body))
	if err != nil {
		return editAnswer{err: err}
	}
	req.Header.Set("Authorization", "OpenTera "+serviceToken)
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return editAnswer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return editAnswer{code: resp.StatusCode, body: b, err: err}
}

// TestStationsClusterPushAnswers drives a hand-written station connected to node A over a real
// websocket and sends the same edits to A (a local push) and to B (routed to A): the answers
// are the same — 200 when the station accepts, 409 with its error when it refuses, 504 when it
// does not answer within station_push_timeout — and once it is gone, 202 (stored) on both.
func TestStationsClusterPushAnswers(t *testing.T) {
	ids := stationIdentities(t)
	srv := testutil.StartRedis(t)
	short := func(c *gateway.Config) { c.StationPushTimeout = gateway.Duration(2 * time.Second) }
	a := startStationNode(t, srv, ids, t.TempDir(), short)
	b := startStationNode(t, srv, ids, t.TempDir(), short)

	s, _ := a.rawStation(stationToken)
	s.send(&stationv1.StationMessage{Id: 1, Body: &stationv1.StationMessage_Register{Register: &stationv1.Register{Hostname: "enc-1"}}})
	s.answer(&stationv1.ConfigResult{})
	require.Equal(t, stationv1.ErrorCode_OK, s.next().GetRegisterReply().GetResult().GetCode())
	require.Eventually(t, func() bool { st := b.stationOn(); return st.Online && st.Node == a.gw.NodeID() }, 10*time.Second, 20*time.Millisecond)

	for _, node := range []struct {
		name string
		e    *env
	}{{"local push on A", a}, {"routed from B", b}} {
		for _, tc := range []struct {
			name   string
			answer *stationv1.ConfigResult // nil: no answer
			code   int
			result string
		}{
			{"accepted", &stationv1.ConfigResult{Running: []*stationv1.RunningRole{{Role: "monitor", Uuid: "m1", State: "running"}}}, http.StatusOK, "OK"},
			{"refused", &stationv1.ConfigResult{Code: stationv1.ErrorCode_INVALID_CONFIGURATION, Message: "no monitor here", Roles: []string{"monitor"}}, http.StatusConflict, "INVALID_CONFIGURATION"},
			{"silent", nil, http.StatusGatewayTimeout, ""},
		} {
			t.Run(node.name+"/"+tc.name, func(t *testing.T) {
				label := node.name + " " + tc.name
				done := make(chan editAnswer, 1)
				go func() {
					done <- node.e.editAsync(http.MethodPut, `{"monitor": {"m1": {"options": {"label": "`+label+`"}}}}`)
				}()
				m := s.next()
				up := m.GetUpdateConfiguration()
				require.NotNil(t, up, "want an UpdateConfiguration, got %v", m)
				require.JSONEq(t, `{"label": "`+label+`"}`, up.Roles["monitor"].Instances["m1"].Options)
				if tc.answer != nil {
					s.send(&stationv1.StationMessage{Id: m.Id, Body: &stationv1.StationMessage_ConfigResult{ConfigResult: tc.answer}})
				}
				got := <-done
				require.NoError(t, got.err)
				require.Equal(t, tc.code, got.code, "%s", got.body)
				require.True(t, json.Valid(got.body), "%s", got.body)
				if tc.result != "" {
					var out struct {
						Result  struct{ Code string }
						Station struct{ Node string }
					}
					require.NoError(t, json.Unmarshal(got.body, &out))
					require.Equal(t, tc.result, out.Result.Code)
					require.Equal(t, a.gw.NodeID(), out.Station.Node, "A's answer")
				} else {
					require.Contains(t, string(got.body), "no answer")
				}
				stored := options(t, b.stationOn().Roles, "monitor", "m1")
				if tc.code == http.StatusOK {
					require.JSONEq(t, `{"label": "`+label+`"}`, stored, "accepted: stored")
				} else {
					require.NotContains(t, stored, label, "not accepted: not stored")
				}
			})
		}
	}

	// The station leaves: both nodes see it offline and store an edit for its next register.
	require.NoError(t, s.ws.Close())
	require.Eventually(t, func() bool { return !b.stationOn().Online && !a.stationOn().Online }, 10*time.Second, 20*time.Millisecond)
	for _, e := range []*env{a, b} {
		code, out := e.editRoles(http.MethodPatch, `{"monitor": {"m2": {}}}`)
		require.Equal(t, http.StatusAccepted, code, "%v", out)
	}
}
