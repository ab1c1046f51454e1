package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

// The station device added to the demo identities by stationIdentities.
const (
	stationUUID  = "00000000-0000-4000-8000-000000000401"
	stationToken = "station-demo-token-3Qx9v2LkTz8RmW4p"
)

// stationIdentities writes the demo identities plus a station device (on site s1) and returns
// the file's path.
func stationIdentities(t *testing.T) string {
	t.Helper()
	y := strings.Replace(string(directory.DemoYAML), "devices:\n", "devices:\n"+
		"  - uuid: "+stationUUID+"\n    token: "+stationToken+"\n    name: encoder1\n    sites: [s1]\n"+
		"    participants: []\n    onlineable: true\n    station: true\n", 1)
	p := filepath.Join(t.TempDir(), "identities.yaml")
	require.NoError(t, os.WriteFile(p, []byte(y), 0o600))
	return p
}

// stationsView is the part of GET /api/stations the tests read.
type stationsView struct {
	Stations []struct {
		UUID          string                                `json:"uuid"`
		Online        bool                                  `json:"online"`
		Node          string                                `json:"node"`
		Registrations int                                   `json:"registrations"`
		Hostname      string                                `json:"hostname"`
		Roles         map[string]map[string]json.RawMessage `json:"roles"`
		Running       []struct{ Role, UUID, Script, State string }
		Status        json.RawMessage `json:"status"`
		LastResult    *struct{ Code, Message string }
	} `json:"stations"`
	Roles []struct{ Role, Script string }
}

func (e *env) stations() stationsView {
	e.t.Helper()
	code, b := e.do(http.MethodGet, "/api/stations", nil, map[string]string{"Authorization": "OpenTera " + serviceToken})
	require.Equal(e.t, http.StatusOK, code, string(b))
	var v stationsView
	require.NoError(e.t, json.Unmarshal(b, &v), string(b))
	return v
}

func (e *env) editRoles(method, body string) (int, map[string]any) {
	e.t.Helper()
	code, b := e.do(method, "/api/stations/"+stationUUID+"/roles", strings.NewReader(body),
		map[string]string{"Authorization": "OpenTera " + serviceToken, "Content-Type": "application/json"})
	var out map[string]any
	require.NoError(e.t, json.Unmarshal(b, &out), string(b))
	return code, out
}

// rawStation is a station speaking the protocol by hand over a real websocket.
type rawStation struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *env) rawStation(token string) (*rawStation, int) {
	e.t.Helper()
	u := e.wsURL(directory.KindDevice, token)
	u = strings.Replace(u, "/wss/device?", "/wss/station?", 1)
	ws, resp, err := e.dialer.Dial(u, nil)
	if err != nil {
		require.NotNil(e.t, resp, "dial: %v", err)
		return nil, resp.StatusCode
	}
	e.t.Cleanup(func() { ws.Close() })
	return &rawStation{t: e.t, ws: ws}, http.StatusSwitchingProtocols
}

func (s *rawStation) send(m *stationv1.StationMessage) {
	s.t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(s.t, err)
	require.NoError(s.t, s.ws.WriteMessage(websocket.BinaryMessage, b))
}

func (s *rawStation) next() *stationv1.ManagerMessage {
	s.t.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	mt, b, err := s.ws.ReadMessage()
	require.NoError(s.t, err)
	require.Equal(s.t, websocket.BinaryMessage, mt)
	var m stationv1.ManagerMessage
	require.NoError(s.t, proto.Unmarshal(b, &m))
	return &m
}

// answer reads the next UpdateConfiguration and answers it with res; it returns the pushed roles.
func (s *rawStation) answer(res *stationv1.ConfigResult) map[string]*stationv1.RoleInstances {
	s.t.Helper()
	m := s.next()
	up := m.GetUpdateConfiguration()
	require.NotNil(s.t, up, "want an UpdateConfiguration, got %v", m)
	s.send(&stationv1.StationMessage{Id: m.Id, Body: &stationv1.StationMessage_ConfigResult{ConfigResult: res}})
	return up.Roles
}

func inst(ts int64, opts string) *stationv1.RoleInstance {
	return &stationv1.RoleInstance{Timestamp: ts, Options: opts}
}

// TestStationRegisterMerge drives the manager with a hand-written station over a real websocket:
// the stored config (an admin edit made while the station was offline) and the reported one are
// merged per uuid (newer wins, a tie keeps the manager's, station-only uuids and roles survive —
// no KeyError), restamped, pushed before the register completes, persisted, and still there
// after a restart of the gateway; a refused push changes nothing and the admin sees the error.
func TestStationRegisterMerge(t *testing.T) {
	data := t.TempDir()
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids; c.DataDir = data })

	// A non-station device may not open /wss/station.
	_, code := e.rawStation(demoToken(directory.KindDevice, "00000000-0000-4000-8000-000000000201"))
	require.Equal(t, http.StatusForbidden, code)

	// The admin sets the config while the station is offline: stored, 202.
	code, out := e.editRoles(http.MethodPut, `{"monitor": {"u-mgr": {"options": {"src": "a"}}, "u-both": {"options": {"who": "manager"}}}}`)
	require.Equal(t, http.StatusAccepted, code, "%v", out)
	require.Equal(t, false, out["pushed"])
	stored := out["station"].(map[string]any)["roles"].(map[string]any)["monitor"].(map[string]any)
	t0 := int64(stored["u-both"].(map[string]any)["timestamp"].(float64))
	require.NotZero(t, t0)

	s, _ := e.rawStation(stationToken)
	s.send(&stationv1.StationMessage{Id: 7, Body: &stationv1.StationMessage_Register{Register: &stationv1.Register{
		Hostname: "enc-1", Mac: "02:00:00:00:00:01", Ip: "10.0.0.5", BlockedRoles: []string{"mixer"},
		Roles: map[string]*stationv1.RoleInstances{
			"monitor": {Instances: map[string]*stationv1.RoleInstance{
				"u-both": inst(t0+1, `{"who": "station"}`), // newer on the station: the station's wins
				"u-st":   inst(1, `{"only": "station"}`),   // only on the station: kept
			}},
			"cut": {Instances: map[string]*stationv1.RoleInstance{"u-cut": inst(5, "")}}, // a role only the station has
		}}}})
	// The push comes first, then (after the answer) the register reply.
	pushed := s.answer(&stationv1.ConfigResult{Running: []*stationv1.RunningRole{{Role: "monitor", Uuid: "u-both", State: "running"}}})
	require.ElementsMatch(t, []string{"monitor", "cut"}, mapKeys(pushed))
	mon := pushed["monitor"].Instances
	require.ElementsMatch(t, []string{"u-mgr", "u-both", "u-st"}, mapKeys(mon))
	require.JSONEq(t, `{"who": "station"}`, mon["u-both"].Options)
	require.JSONEq(t, `{"src": "a"}`, mon["u-mgr"].Options)
	require.JSONEq(t, `{"only": "station"}`, mon["u-st"].Options)
	for _, in := range mon {
		require.GreaterOrEqual(t, in.Timestamp, t0, "every entry is restamped")
		require.Empty(t, in.Script, "no plugin in the roles directory")
	}
	reply := s.next()
	require.Equal(t, uint64(7), reply.Id)
	require.Equal(t, stationv1.ErrorCode_OK, reply.GetRegisterReply().GetResult().GetCode())

	v := e.stations()
	require.Len(t, v.Stations, 1)
	st := v.Stations[0]
	require.True(t, st.Online)
	require.Equal(t, 1, st.Registrations)
	require.Equal(t, "enc-1", st.Hostname)
	require.Len(t, st.Roles["monitor"], 3)
	require.Len(t, st.Running, 1)

	// A push the station refuses: 409 with its code and message, nothing stored.
	done := make(chan map[string]*stationv1.RoleInstances, 1)
	go func() {
		done <- s.answer(&stationv1.ConfigResult{Code: stationv1.ErrorCode_ROLE_BLOCKED,
			Message: "Blocked roles: mixer", Roles: []string{"mixer"}})
	}()
	code, out = e.editRoles(http.MethodPatch, `{"mixer": {"m1": {}}}`)
	require.Equal(t, http.StatusConflict, code, "%v", out)
	require.Equal(t, "ROLE_BLOCKED", out["result"].(map[string]any)["code"])
	require.Contains(t, (<-done), "mixer")
	require.NotContains(t, e.stations().Stations[0].Roles, "mixer")

	// Reconnect (a new connection replaces the old) and register with u-both at the stored
	// timestamp but other options: a tie keeps the manager's entry.
	cur := e.stations().Stations[0].Roles["monitor"]["u-both"]
	var curIn struct {
		Timestamp int64           `json:"timestamp"`
		Options   json.RawMessage `json:"options"`
	}
	require.NoError(t, json.Unmarshal(cur, &curIn))
	s2, _ := e.rawStation(stationToken)
	s2.send(&stationv1.StationMessage{Id: 1, Body: &stationv1.StationMessage_Register{Register: &stationv1.Register{
		Hostname: "enc-1", Roles: map[string]*stationv1.RoleInstances{
			"monitor": {Instances: map[string]*stationv1.RoleInstance{"u-both": inst(curIn.Timestamp, `{"who": "tie"}`)}}}}}})
	pushed = s2.answer(&stationv1.ConfigResult{})
	require.JSONEq(t, string(curIn.Options), pushed["monitor"].Instances["u-both"].Options)
	require.Equal(t, stationv1.ErrorCode_OK, s2.next().GetRegisterReply().GetResult().GetCode())
	require.Equal(t, 2, e.stations().Stations[0].Registrations)

	// The config survives a restart of the gateway (same data directory).
	want := e.stations().Stations[0].Roles
	e2 := restartGateway(t, e, func(c *gateway.Config) { c.Identities = ids; c.DataDir = data })
	got := e2.stations()
	require.Len(t, got.Stations, 1)
	require.False(t, got.Stations[0].Online)
	require.Equal(t, want, got.Stations[0].Roles)

	// Admin only.
	code, _ = e2.do(http.MethodGet, "/api/stations", nil, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = e2.do(http.MethodGet, "/api/stations", nil, map[string]string{"Authorization": "OpenTera " + stationToken})
	require.Equal(t, http.StatusForbidden, code)
	code, _ = e2.do(http.MethodPut, "/api/stations/"+stationUUID+"/roles", bytes.NewReader([]byte(`{"x": {"u": {"options": [1]}}}`)),
		map[string]string{"Authorization": "OpenTera " + serviceToken})
	require.Equal(t, http.StatusBadRequest, code, "options must be an object")
}

// restartGateway shuts e's gateway down and starts another with mutate.
func restartGateway(t *testing.T, e *env, mutate func(*gateway.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.gw.Shutdown(ctx))
	return startGateway(t, mutate)
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStationLogout: the station device's logout (CMD_CLIENT_DISCONNECT on the bus) closes its
// /wss/station connection with 4000, and presence sees the device go offline.
func TestStationLogout(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	s, _ := e.rawStation(stationToken)
	s.send(&stationv1.StationMessage{Id: 1, Body: &stationv1.StationMessage_Register{Register: &stationv1.Register{Hostname: "h"}}})
	s.answer(&stationv1.ConfigResult{})
	require.Equal(t, stationv1.ErrorCode_OK, s.next().GetRegisterReply().GetResult().GetCode())
	require.True(t, e.stations().Stations[0].Online)
	online := func() string {
		raw, err := e.gw.Call(context.Background(), gateway.UserManagerModule, "online_devices")
		require.NoError(t, err)
		return string(raw)
	}
	require.Eventually(t, func() bool { return online() == `["`+stationUUID+`"]` }, 10*time.Second, 10*time.Millisecond)

	code, b := e.do(http.MethodGet, "/api/device/logout", nil, map[string]string{"Authorization": "OpenTera " + stationToken})
	require.Equal(t, http.StatusOK, code, string(b))
	_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := s.ws.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4000, ce.Code)
	require.Eventually(t, func() bool { return !e.stations().Stations[0].Online }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return online() == `[]` }, 10*time.Second, 10*time.Millisecond)
}

// TestStationEditHammer: concurrent admin edits of one online station (each PATCH adds its own
// uuid) are serialised with their pushes: every edit is pushed, answered and kept — no lost
// update — and the last push holds them all.
func TestStationEditHammer(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	s, _ := e.rawStation(stationToken)
	s.send(&stationv1.StationMessage{Id: 1, Body: &stationv1.StationMessage_Register{Register: &stationv1.Register{Hostname: "h"}}})
	s.answer(&stationv1.ConfigResult{})
	s.next() // RegisterReply

	const workers, each = 4, 10
	n := workers * each
	if testing.Short() {
		n = workers * 3
	}
	pushes := make(chan int, n)
	go func() { // the station answers every push and reports how many uuids it was given
		for range n {
			roles := s.answer(&stationv1.ConfigResult{})
			pushes <- len(roles["monitor"].GetInstances())
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / workers {
				code, out := e.editRoles(http.MethodPatch, `{"monitor": {"u-`+strconv.Itoa(w)+`-`+strconv.Itoa(i)+`": {}}}`)
				if code != http.StatusOK {
					errs <- fmt.Sprint(code, out)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	got := 0
	for range n {
		got = max(got, <-pushes)
	}
	require.Equal(t, n, got, "the last push holds every uuid")
	require.Len(t, e.stations().Stations[0].Roles["monitor"], n)
}
