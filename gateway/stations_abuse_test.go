package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

// The manager's default limits (stations.Limits), as a station sees them.
const (
	maxInvalidFrames = 10
	maxConfigBytes   = 1 << 20
	maxStatusBytes   = 16 << 10
)

// metric returns the value of the sample whose name and labels are exactly series (0 when absent).
func (e *env) metric(series string) float64 {
	e.t.Helper()
	_, b := e.do(http.MethodGet, "/metrics", nil, nil)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(e.t, err)
			return f
		}
	}
	return 0
}

// metricIs waits until series has the value want (a counter may be counted just after the
// frame it counts was answered).
func (e *env) metricIs(series string, want float64) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.metric(series) == want }, 10*time.Second, 10*time.Millisecond,
		"%s: want %v, have %v", series, want, e.metric(series))
}

// register sends a Register with id and roles.
func (s *rawStation) register(id uint64, reg *stationv1.Register) {
	s.t.Helper()
	s.send(&stationv1.StationMessage{Id: id, Body: &stationv1.StationMessage_Register{Register: reg}})
}

// reply reads the next frame, which must be the RegisterReply to id, and returns its result.
func (s *rawStation) reply(id uint64) *stationv1.ConfigResult {
	s.t.Helper()
	m := s.next()
	require.NotNil(s.t, m.GetRegisterReply(), "want the RegisterReply to %d, got %v", id, m)
	require.Equal(s.t, id, m.Id)
	return m.GetRegisterReply().GetResult()
}

// closedWith reads (skipping any frame) until the connection closes and returns the close error.
func (s *rawStation) closedWith() *websocket.CloseError {
	s.t.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := s.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.True(s.t, errors.As(err, &ce), "want a close frame, got %v", err)
		return ce
	}
}

// flood writes n frames made by frame from another goroutine, stopping at the first write error
// (the manager closed the connection); the returned channel is closed when it stops.
func (s *rawStation) flood(n int, frame func(i int) (int, []byte)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			mt, b := frame(i)
			_ = s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if s.ws.WriteMessage(mt, b) != nil {
				return
			}
		}
	}()
	return done
}

func marshal(t *testing.T, m *stationv1.StationMessage) []byte {
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// instances returns n instances named <prefix>-<i> whose options are {"pad": <size bytes>}.
func instances(prefix string, n, size int) map[string]*stationv1.RoleInstance {
	out := map[string]*stationv1.RoleInstance{}
	for i := range n {
		out[prefix+"-"+strconv.Itoa(i)] = inst(1, `{"pad":"`+strings.Repeat("x", size)+`"}`)
	}
	return out
}

// TestStationRegisterValidated: a Register is checked as PUT checks an admin edit. Role names
// such as ../../../etc/passwd, x\0y or 5,000 characters, bad uuids, options that are not a JSON
// object and too many uuids are refused — the RegisterReply carries INVALID_CONFIGURATION with
// the very message PUT answers 400 with — nothing is pushed or stored, and GET /api/stations
// still answers a JSON body. A valid Register afterwards is served as before.
func TestStationRegisterValidated(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	long := strings.Repeat("r", 5000)
	tests := []struct {
		name  string
		roles map[string]*stationv1.RoleInstances
		put   string // the same config as an admin's PUT body
	}{
		{"path in a role name", map[string]*stationv1.RoleInstances{"../../../etc/passwd": {}}, `{"../../../etc/passwd": {}}`},
		{"NUL in a role name", map[string]*stationv1.RoleInstances{"x\x00y": {}}, `{"x\u0000y": {}}`},
		{"5,000-character role name", map[string]*stationv1.RoleInstances{long: {}}, `{"` + long + `": {}}`},
		{"NUL in a uuid", map[string]*stationv1.RoleInstances{"enc": {Instances: map[string]*stationv1.RoleInstance{"x\x00y": inst(1, "")}}},
			`{"enc": {"x\u0000y": {}}}`},
		{"options not JSON", map[string]*stationv1.RoleInstances{"enc": {Instances: map[string]*stationv1.RoleInstance{"u": inst(1, "not json")}}},
			`{"enc": {"u": {"options": "not json"}}}`},
		{"options an array", map[string]*stationv1.RoleInstances{"enc": {Instances: map[string]*stationv1.RoleInstance{"u": inst(1, "[1]")}}},
			`{"enc": {"u": {"options": [1]}}}`},
		{"101 uuids in a role", map[string]*stationv1.RoleInstances{"enc": {Instances: instances("u", 101, 0)}},
			func() string {
				var b strings.Builder
				b.WriteString(`{"enc": {`)
				for i := range 101 {
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, `"u-%d": {"options": {"pad": ""}}`, i)
				}
				b.WriteString("}}")
				return b.String()
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := e.do(http.MethodPut, "/api/stations/"+stationUUID+"/roles", strings.NewReader(tt.put),
				map[string]string{"Authorization": "OpenTera " + serviceToken})
			require.Equal(t, http.StatusBadRequest, code, string(b))
			var putMsg string
			require.NoError(t, json.Unmarshal(b, &putMsg), string(b))

			s, _ := e.rawStation(stationToken)
			s.register(3, &stationv1.Register{Hostname: "h", Roles: tt.roles})
			res := s.reply(3) // the reply comes first: nothing was pushed
			require.Equal(t, stationv1.ErrorCode_INVALID_CONFIGURATION, res.Code)
			require.Equal(t, putMsg, res.Message, "refused the way PUT refuses it")
			require.Less(t, len(res.Message), 300, "the message stays readable")

			v := e.stations() // 200 with a JSON body
			require.Len(t, v.Stations, 1)
			require.Empty(t, v.Stations[0].Roles, "nothing stored")
		})
	}

	t.Run("host fields and blocked roles", func(t *testing.T) {
		for _, reg := range []*stationv1.Register{
			{Hostname: strings.Repeat("h", 5000)},
			{Hostname: "h", BlockedRoles: []string{"../x"}},
			{Hostname: "h", Mac: strings.Repeat("m", 5000)},
		} {
			s, _ := e.rawStation(stationToken)
			s.register(4, reg)
			require.Equal(t, stationv1.ErrorCode_INVALID_CONFIGURATION, s.reply(4).Code)
		}
		require.Empty(t, e.stations().Stations[0].Hostname)
	})

	// A valid Register is served as before; an answer naming invalid running instances still
	// answers the push (at once, not at its timeout), without them.
	s, _ := e.rawStation(stationToken)
	s.register(5, &stationv1.Register{Hostname: "enc-1", Roles: map[string]*stationv1.RoleInstances{
		"enc": {Instances: map[string]*stationv1.RoleInstance{"u": inst(1, `{"a": 1}`)}}}})
	pushed := s.answer(&stationv1.ConfigResult{Running: []*stationv1.RunningRole{{Role: "x\x00y", Uuid: "u", State: "running"}}})
	require.JSONEq(t, `{"a": 1}`, pushed["enc"].Instances["u"].Options)
	require.Equal(t, stationv1.ErrorCode_OK, s.reply(5).Code)
	require.Len(t, e.stations().Stations[0].Roles["enc"], 1)
	require.Empty(t, e.stations().Stations[0].Running)
	e.metricIs(`teragate_stations_invalid_frames_total{reason="running_invalid"}`, float64(1))
	e.metricIs(`teragate_stations_invalid_frames_total{reason="register_invalid"}`, float64(len(tests)+3))
}

// TestStationConfigBounded: a station cannot grow its stored config past the limit by
// registering new uuids again and again (the merge is a union), nor can an admin by patching:
// the register is refused (INVALID_CONFIGURATION, nothing pushed or stored) and the edit answers
// 400, so no UpdateConfiguration is ever larger than the limit.
func TestStationConfigBounded(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	s, _ := e.rawStation(stationToken)

	// 20 uuids of 40 KB each: about 800 KB, accepted.
	s.register(1, &stationv1.Register{Hostname: "h", Roles: map[string]*stationv1.RoleInstances{
		"enc": {Instances: instances("a", 20, 40_000)}}})
	m := s.next()
	require.NotNil(t, m.GetUpdateConfiguration())
	require.Less(t, len(marshal(t, &stationv1.StationMessage{Body: &stationv1.StationMessage_Register{Register: &stationv1.Register{
		Roles: m.GetUpdateConfiguration().Roles}}})), maxConfigBytes+64)
	s.send(&stationv1.StationMessage{Id: m.Id, Body: &stationv1.StationMessage_ConfigResult{ConfigResult: &stationv1.ConfigResult{}}})
	require.Equal(t, stationv1.ErrorCode_OK, s.reply(1).Code)

	// 20 more uuids: each register is within the limit, the merge is not.
	for i := range 5 {
		id := uint64(2 + i)
		s.register(id, &stationv1.Register{Hostname: "h", Roles: map[string]*stationv1.RoleInstances{
			"enc": {Instances: instances("b"+strconv.Itoa(i), 20, 40_000)}}})
		res := s.reply(id) // no push before the reply
		require.Equal(t, stationv1.ErrorCode_INVALID_CONFIGURATION, res.Code)
		require.Contains(t, res.Message, "the configuration is too large")
	}
	require.Len(t, e.stations().Stations[0].Roles["enc"], 20, "the stored config did not grow")

	// An admin cannot grow it past the limit either.
	var patch strings.Builder
	patch.WriteString(`{"cut": {`)
	for i := range 10 {
		if i > 0 {
			patch.WriteString(",")
		}
		fmt.Fprintf(&patch, `"p-%d": {"options": {"pad": "%s"}}`, i, strings.Repeat("y", 40_000))
	}
	patch.WriteString("}}")
	code, b := e.do(http.MethodPatch, "/api/stations/"+stationUUID+"/roles", strings.NewReader(patch.String()), // 400 KB more
		map[string]string{"Authorization": "OpenTera " + serviceToken})
	require.Equal(t, http.StatusBadRequest, code, "%.300s", b)
	require.Contains(t, string(b), "stations: invalid role configuration: the configuration is too large")
	require.NotContains(t, e.stations().Stations[0].Roles, "cut")

	// 60 stored uuids (an admin's PUT, pushed and accepted) plus 60 reported ones is over the
	// uuids per role.
	var put []string
	for i := range 60 {
		put = append(put, fmt.Sprintf(`"s-%d": {}`, i))
	}
	done := make(chan struct{})
	go func() { defer close(done); s.answer(&stationv1.ConfigResult{}) }()
	code, out := e.editRoles(http.MethodPut, `{"enc": {`+strings.Join(put, ",")+`}}`)
	<-done
	require.Equal(t, http.StatusOK, code, "%v", out)
	s.register(9, &stationv1.Register{Hostname: "h", Roles: map[string]*stationv1.RoleInstances{
		"enc": {Instances: instances("c", 60, 0)}}})
	res := s.reply(9)
	require.Equal(t, stationv1.ErrorCode_INVALID_CONFIGURATION, res.Code)
	require.Contains(t, res.Message, "120 uuids in role enc, the limit is 100")
	require.Equal(t, []string{"enc"}, res.Roles)
	e.metricIs(`teragate_stations_refused_total{reason="config_too_large"}`, float64(7))
}

// TestStationRegisterFlood: one Register per connection is served at a time. While one waits for
// the station's answer to its push, the others are refused at once (no goroutine is queued for
// them, the in-flight gauge stays at 1), and a flood of 2,000 closes the connection with 1008
// after the invalid-frame limit.
func TestStationRegisterFlood(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	before := runtime.NumGoroutine()
	s, _ := e.rawStation(stationToken)
	reg := &stationv1.Register{Hostname: "h", Roles: map[string]*stationv1.RoleInstances{"enc": {Instances: instances("u", 1, 10)}}}
	s.register(1, reg)
	push := s.next()
	require.NotNil(t, push.GetUpdateConfiguration())
	for i := range 5 { // the push is not answered yet
		s.register(uint64(10+i), reg)
		res := s.reply(uint64(10 + i))
		require.Equal(t, stationv1.ErrorCode_INVALID_CONFIGURATION, res.Code)
		require.Contains(t, res.Message, "already in progress")
	}
	e.metricIs("teragate_stations_registers_in_flight", float64(1))
	s.send(&stationv1.StationMessage{Id: push.Id, Body: &stationv1.StationMessage_ConfigResult{ConfigResult: &stationv1.ConfigResult{}}})
	require.Equal(t, stationv1.ErrorCode_OK, s.reply(1).Code)
	require.Eventually(t, func() bool { return e.metric("teragate_stations_registers_in_flight") == 0 }, 10*time.Second, 10*time.Millisecond)

	frame := marshal(t, &stationv1.StationMessage{Id: 100, Body: &stationv1.StationMessage_Register{Register: reg}})
	stopped := s.flood(2000, func(int) (int, []byte) { return websocket.BinaryMessage, frame })
	ce := s.closedWith()
	<-stopped
	require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	require.Equal(t, "too many invalid frames", ce.Text)
	e.metricIs(`teragate_stations_invalid_frames_total{reason="register_in_flight"}`, float64(maxInvalidFrames))
	e.metricIs("teragate_stations_closed_invalid_frames_total", float64(1))
	require.Eventually(t, func() bool { return e.metric("teragate_stations_registers_in_flight") == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() < before+50 }, 10*time.Second, 10*time.Millisecond,
		"goroutines: %d before, %d now", before, runtime.NumGoroutine())
}

// TestStationGarbageFrames: a station that keeps sending invalid frames of any kind is closed
// with 1008 "too many invalid frames" after the limit (each counted by reason), instead of
// logging one warning per frame forever.
func TestStationGarbageFrames(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	bin := func(m *stationv1.StationMessage) (int, []byte) { return websocket.BinaryMessage, marshal(t, m) }
	tests := []struct {
		reason string
		frame  func() (int, []byte)
	}{
		{"undecodable", func() (int, []byte) { return websocket.BinaryMessage, []byte{0xff, 0xff, 0xff, 0xff} }},
		{"text", func() (int, []byte) { return websocket.TextMessage, []byte(`{"hello": "manager"}`) }},
		{"empty", func() (int, []byte) { return bin(&stationv1.StationMessage{Id: 5}) }},
		{"status_invalid", func() (int, []byte) {
			return bin(&stationv1.StationMessage{Body: &stationv1.StationMessage_Status{Status: &stationv1.RoleStatus{
				Role: "../../x", Uuid: "u", Status: "{}"}}})
		}},
		{"status_too_large", func() (int, []byte) {
			return bin(&stationv1.StationMessage{Body: &stationv1.StationMessage_Status{Status: &stationv1.RoleStatus{
				Role: "enc", Uuid: "u", Status: `"` + strings.Repeat("s", maxStatusBytes) + `"`}}})
		}},
		{"running_invalid", func() (int, []byte) {
			return bin(&stationv1.StationMessage{Body: &stationv1.StationMessage_Running{Running: &stationv1.Running{
				Roles: []*stationv1.RunningRole{{Role: "x\x00y", Uuid: "u"}}}}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			series := `teragate_stations_invalid_frames_total{reason="` + tt.reason + `"}`
			closed := e.metric("teragate_stations_closed_invalid_frames_total")
			s, _ := e.rawStation(stationToken)
			mt, b := tt.frame()
			stopped := s.flood(2000, func(int) (int, []byte) { return mt, b })
			ce := s.closedWith()
			<-stopped
			require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
			require.Equal(t, "too many invalid frames", ce.Text)
			e.metricIs(series, float64(maxInvalidFrames))
			e.metricIs("teragate_stations_closed_invalid_frames_total", closed+1)
			require.Eventually(t, func() bool { return !e.stations().Stations[0].Online }, 10*time.Second, 10*time.Millisecond)
		})
	}

	t.Run("a frame over the read limit", func(t *testing.T) {
		s, _ := e.rawStation(stationToken)
		_ = s.ws.WriteMessage(websocket.BinaryMessage, make([]byte, maxConfigBytes+65<<10))
		require.Equal(t, websocket.CloseMessageTooBig, s.closedWith().Code)
		e.metricIs(`teragate_stations_invalid_frames_total{reason="too_large"}`, float64(1))
	})
}

// TestStationStatusBounded: a role status over the per-status limit is not stored nor fanned out
// to the clients allowed to see the station device, and a status that would make the device's
// aggregate status larger than a device may post is refused (counted); the clients' sockets stay
// open and receive the statuses that fit.
func TestStationStatusBounded(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	admin := e.connect(directory.KindUser, "admin:admin-demo")
	s, _ := e.rawStation(stationToken)
	s.register(1, &stationv1.Register{Hostname: "h"})
	s.answer(&stationv1.ConfigResult{})
	require.Equal(t, stationv1.ErrorCode_OK, s.reply(1).Code)
	require.Eventually(t, func() bool {
		raw, err := e.gw.Call(context.Background(), gateway.UserManagerModule, "online_devices")
		return err == nil && strings.Contains(string(raw), stationUUID)
	}, 10*time.Second, 10*time.Millisecond)
	status := func(uuid, text string, ts int64) {
		s.send(&stationv1.StationMessage{Body: &stationv1.StationMessage_Status{Status: &stationv1.RoleStatus{
			Role: "enc", Uuid: uuid, Status: text, Timestamp: ts}}})
	}
	// nextStatus returns the deviceStatus of the admin's next DEVICE_STATUS_CHANGED of the station.
	nextStatus := func() string {
		for {
			ev := admin.event()
			if ev["type"] == "DEVICE_STATUS_CHANGED" && ev["deviceUuid"] == stationUUID {
				return ev["deviceStatus"].(string)
			}
		}
	}

	status("big", `{"blob": "`+strings.Repeat("B", 3*maxStatusBytes)+`"}`, 1) // refused
	status("a", `{"n": "first"}`, 2)
	got := nextStatus()
	require.False(t, strings.Contains(got, "BBBB"), "the oversize status was fanned out (%d bytes)", len(got))
	require.Contains(t, got, "first")

	// Four statuses of 15,000 bytes fit in the device's 64 KiB, a fifth does not.
	for i, u := range []string{"a", "b", "c", "d"} {
		status(u, `"`+strings.Repeat(u, 15_000)+`"`, int64(3+i))
		require.True(t, strings.Contains(nextStatus(), strings.Repeat(u, 15_000)), "status %s", u)
	}
	status("e", `"`+strings.Repeat("e", 15_000)+`"`, 7) // refused: the aggregate would be ~75 KB
	status("a", `{"n": "small again"}`, 8)
	got = nextStatus()
	require.False(t, strings.Contains(got, "eeee"), "the status over the device's limit was fanned out (%d bytes)", len(got))
	require.Contains(t, got, "small again")
	require.LessOrEqual(t, len(got), 64<<10+100)
	e.metricIs(`teragate_stations_refused_total{reason="device_status_too_large"}`, float64(1))
	e.metricIs(`teragate_stations_invalid_frames_total{reason="status_too_large"}`, float64(1))
	admin.expectMarker(e.marker("status")) // the admin's socket is still open
}

// TestStationBodyTooLarge: the admin API's bodies are bounded at 1 MiB: a larger one answers 413
// (not 400 "unexpected end of JSON input"), one just under it is read and judged.
func TestStationBodyTooLarge(t *testing.T) {
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	body := func(size int) string {
		head, tail := `{"enc": {"u": {"options": {"pad": "`, `"}}}}`
		return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
	}
	tests := []struct {
		method, path string
		body         string
		want         int
	}{
		{http.MethodPut, "/api/stations/" + stationUUID + "/roles", body(1<<20 + 1), http.StatusRequestEntityTooLarge},
		{http.MethodPatch, "/api/stations/" + stationUUID + "/roles", body(3 << 20), http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/api/stations/jobs", `{"role": "enc", "config": {"pad": "` + strings.Repeat("x", 1<<20) + `"}}`, http.StatusRequestEntityTooLarge},
		{http.MethodPut, "/api/stations/" + stationUUID + "/roles", body(1 << 20), http.StatusBadRequest}, // read, then too large a config
		{http.MethodPut, "/api/stations/" + stationUUID + "/roles", body(900 << 10), http.StatusAccepted},
		{http.MethodPut, "/api/stations/" + stationUUID + "/roles", `{"enc": `, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.method, " ", len(tt.body)), func(t *testing.T) {
			code, b := e.do(tt.method, tt.path, strings.NewReader(tt.body), map[string]string{"Authorization": "OpenTera " + serviceToken})
			require.Equal(t, tt.want, code, "%.200s", b)
			require.True(t, json.Valid(b), "a JSON body: %.200s", b)
		})
	}
}

// TestStationAgentStatusBound runs the real agent with the heartbeat role whose label (an
// option) makes its status larger than a role status may be: the agent reports an error status
// naming the size instead, so the manager keeps the station (no invalid frame) and presence gets
// a small status.
func TestStationAgentStatusBound(t *testing.T) {
	hb := buildHeartbeat(t, "1")
	roles := t.TempDir()
	dropRole(t, roles, "heartbeat", hb)
	ids := stationIdentities(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids; c.Roles = roles })
	<-e.gw.StationsReady()
	label := strings.Repeat("L", maxStatusBytes)
	code, out := e.editRoles(http.MethodPut, `{"heartbeat": {"hb-1": {"options": {"label": "`+label+`", "every": 1000}}}}`)
	require.Equal(t, http.StatusAccepted, code, "%v", out)
	agent, _ := runAgent(t, e, t.TempDir(), nil)
	require.Eventually(t, func() bool {
		st := e.stations().Stations[0]
		return len(st.Status) > 0 && strings.Contains(string(st.Status), `status too large`)
	}, 3*time.Minute, 20*time.Millisecond) // a cold compile under -race on a busy 2-core box is slow
	st := e.stations().Stations[0]
	require.True(t, st.Online)
	require.Less(t, len(st.Status), 1024)
	e.metricIs(`teragate_stations_invalid_frames_total{reason="status_too_large"}`, float64(0))
	require.Contains(t, agent.Running()[0].Status, `"limit":16384`)
}
