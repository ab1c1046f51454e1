package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

const (
	alice = directory.DemoAliceUUID
	bob   = directory.DemoBobUUID
	pat   = directory.DemoPatUUID
	paula = directory.DemoPaulaUUID
)

// TestEndToEndUserFlow walks the path of an OpenTera user client: login, websocket, own CONNECTED
// event in OpenTera's exact JSON, filtered service events, logout closing the socket with 4000.
func TestEndToEndUserFlow(t *testing.T) {
	e := startGateway(t, nil)

	code, out := e.login(directory.KindUser, "alice:alice-demo", "?with_websocket=true")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, alice, out["user_uuid"])
	require.Equal(t, "Alice Demo", out["user_fullname"])
	require.NotEmpty(t, out["user_token"])
	wsURL := out["websocket_url"].(string)
	require.True(t, strings.HasPrefix(wsURL, "ws://"+e.gw.Addr().String()+"/wss/user?id="), wsURL)

	a := e.dial(wsURL)
	frame := a.next()
	// OpenTera's frame: TeraMessage{message: TeraEvent{header, events: [UserEvent]}}, no extra keys.
	msg := frame["message"].(map[string]any)
	require.ElementsMatch(t, []string{"@type", "header", "events"}, keys(msg))
	hdr := msg["header"].(map[string]any)
	require.Equal(t, umEvents, hdr["topic"])
	require.EqualValues(t, 1, hdr["version"])
	ev := msg["events"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{
		"@type": "type.googleapis.com/opentera.protobuf.UserEvent", "userUuid": alice,
		"type": "USER_CONNECTED", "userFullname": "Alice Demo",
	}, ev)

	// Bob (project p3) and the superadmin are connected too.
	b := e.connect(directory.KindUser, "bob:bob-demo")
	adm := e.connect(directory.KindUser, "admin:admin-demo")

	// A participant event about paula (project p3) must never reach alice; one about pat (p1) must.
	e.publish(umEvents, &opentera.ParticipantEvent{ParticipantUuid: paula, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED, ParticipantName: "Paula"})
	e.publish(umEvents, &opentera.ParticipantEvent{ParticipantUuid: pat, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED, ParticipantName: "Pat"})
	m := e.marker("flow")

	got := drainUntil(t, a, m)
	require.Equal(t, []string{"participant:" + pat}, subjects(got), "alice sees pat (p1) and never paula (p3)")
	got = drainUntil(t, b, m)
	require.Equal(t, []string{"participant:" + paula}, subjects(got), "bob sees paula (p3), not pat, not the admin (no shared project)")
	got = drainUntil(t, adm, m)
	require.Equal(t, []string{"participant:" + paula, "participant:" + pat}, subjects(got), "the superadmin sees both")

	// Logout closes every socket of alice with 4000.
	code, _ = e.login(directory.KindUser, out["user_token"].(string), "")
	require.Equal(t, http.StatusOK, code, "the user token logs in again")
	req, _ := http.NewRequest(http.MethodGet, e.base+"/api/user/logout", nil)
	req.Header.Set("Authorization", "OpenTera "+out["user_token"].(string))
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	a.expectClose(4000)

	// The revoked token no longer logs in.
	code, _ = e.login(directory.KindUser, out["user_token"].(string), "")
	require.Equal(t, http.StatusUnauthorized, code)

	// Bob sees alice's DISCONNECTED? No: bob (p3) cannot see alice (p1). The admin does.
	ev = drainUntilType(t, adm, "USER_DISCONNECTED")
	require.Equal(t, alice, ev["userUuid"])
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// drainUntil reads events until the marker and returns those before it.
func drainUntil(t *testing.T, s *sock, marker string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for {
		for _, ev := range s.frameEvents() {
			if ev["sessionUuid"] == marker {
				return out
			}
			out = append(out, ev)
		}
	}
}

func drainUntilType(t *testing.T, s *sock, typ string) map[string]any {
	t.Helper()
	for {
		ev := s.event()
		if ev["type"] == typ {
			return ev
		}
	}
}

// subjects names each presence event as kind:uuid.
func subjects(evs []map[string]any) []string {
	var out []string
	for _, ev := range evs {
		switch {
		case ev["userUuid"] != nil:
			out = append(out, "user:"+ev["userUuid"].(string))
		case ev["participantUuid"] != nil:
			out = append(out, "participant:"+ev["participantUuid"].(string))
		case ev["deviceUuid"] != nil:
			out = append(out, "device:"+ev["deviceUuid"].(string))
		default:
			b, _ := json.Marshal(ev)
			out = append(out, string(b))
		}
	}
	return out
}

// TestFilterTablePerKind checks OpenTera's filter table for participants and devices, direct
// events, and that a multi-event TeraEvent is filtered event by event.
func TestFilterTablePerKind(t *testing.T) {
	e := startGateway(t, nil)
	p := e.connect(directory.KindParticipant, demoToken(directory.KindParticipant, pat))
	r1 := e.connect(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot1UUID))
	u := e.connect(directory.KindUser, "alice:alice-demo")
	// The router filters an event kind after kind (users, participants, devices): pat may read
	// its own CONNECTED before the device pass of the same event, and robot1, connecting just
	// then, legitimately receives it too. Drain the connection events up to a marker first.
	sync := e.marker("connected")
	for _, s := range []*sock{p, r1, u} {
		drainUntil(t, s, sync)
	}

	// One TeraEvent with four events; each is filtered on its own.
	e.publish(umEvents,
		&opentera.ParticipantEvent{ParticipantUuid: paula, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED},
		&opentera.ParticipantEvent{ParticipantUuid: pat, Type: opentera.ParticipantEvent_PARTICIPANT_JOINED_SESSION},
		&opentera.DeviceEvent{DeviceUuid: directory.DemoRobot2UUID, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED},
		&opentera.DeviceEvent{DeviceUuid: directory.DemoRobot1UUID, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED},
		&opentera.UserEvent{UserUuid: alice, Type: opentera.UserEvent_USER_JOINED_SESSION},
		&opentera.DatabaseEvent{Type: opentera.DatabaseEvent_DB_UPDATE, ObjectType: "user"},
	)
	// Direct event: a JoinSessionEvent only reaches the listed recipients even on a direct topic.
	e.publish("websocket.participant."+pat+".events", &opentera.JoinSessionEvent{SessionUuid: "s-1", SessionParticipants: []string{pat}, SessionUrl: "https://x"})
	e.publish("websocket.participant."+pat+".events", &opentera.JoinSessionEvent{SessionUuid: "s-2"})
	e.publish("websocket.device."+directory.DemoRobot1UUID+".events", &opentera.ArchiveEvent{OwnerUuid: directory.DemoRobot1UUID, ArchiveUuid: "a1"})
	e.publish("websocket.device."+directory.DemoRobot1UUID+".events", &opentera.ArchiveEvent{OwnerUuid: "someone-else"})
	m := e.marker("table")

	// The six-event TeraEvent reaches each socket as one frame with what it may see, in order:
	// pat sees itself and its linked robot1, robot1 the same, alice (p1, site s1) pat, robot1 and
	// herself; nobody paula, robot2 or the DatabaseEvent.
	patAndRobot := []string{"participant:" + pat, "device:" + directory.DemoRobot1UUID}
	require.Equal(t, patAndRobot, subjects(p.frameEvents()), "one frame for pat")
	require.Equal(t, patAndRobot, subjects(r1.frameEvents()), "one frame for robot1")
	require.Equal(t, append(patAndRobot, "user:"+alice), subjects(u.frameEvents()), "one frame for alice")
	// participant pat: itself and its linked device robot1; never users; direct join for itself.
	got := drainUntil(t, p, m)
	require.Equal(t, normalize([]string{`{"@type":"type.googleapis.com/opentera.protobuf.JoinSessionEvent","serviceUuid":"","sessionCreatorName":"","sessionDevices":[],"sessionParameters":"","sessionParticipants":["` + pat + `"],"sessionUrl":"https://x","sessionUsers":[],"joinMsg":"","sessionUuid":"s-1"}`}), normalize(subjects(got)), "pat's own event, robot1's status, the join")
	// device robot1: itself and its linked participant pat; its own archive.
	got = drainUntil(t, r1, m)
	require.Len(t, got, 1)
	require.Equal(t, "a1", got[0]["archiveUuid"])
	// user alice (p1, site s1): pat, robot1 (site s1), herself; not paula/robot2; no DatabaseEvent.
	got = drainUntil(t, u, m)
	require.Empty(t, got)
}

// normalize re-marshals JSON subjects so key order does not matter.
func normalize(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		var v any
		if json.Unmarshal([]byte(s), &v) == nil {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		out[i] = s
	}
	return out
}

func TestTickets(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) { c.TicketTTL = gateway.Duration(300 * time.Millisecond) })
	cred := "alice:alice-demo"

	tests := []struct {
		name string
		url  func() string
		want int
	}{
		{"reused ticket", func() string {
			u := e.wsURL(directory.KindUser, cred)
			e.dial(u)
			return u
		}, http.StatusForbidden},
		{"expired ticket", func() string {
			u := e.wsURL(directory.KindUser, cred)
			time.Sleep(600 * time.Millisecond)
			return u
		}, http.StatusForbidden},
		{"wrong type", func() string {
			return strings.Replace(e.wsURL(directory.KindUser, cred), "/wss/user", "/wss/participant", 1)
		}, http.StatusForbidden},
		{"garbage ticket", func() string { return strings.Replace(e.base, "http", "ws", 1) + "/wss/user?id=nope" }, http.StatusForbidden},
		{"no ticket", func() string { return strings.Replace(e.base, "http", "ws", 1) + "/wss/user" }, http.StatusForbidden},
		{"unknown kind", func() string { return strings.Replace(e.base, "http", "ws", 1) + "/wss/robot?id=x" }, http.StatusNotFound},
		{"bad format", func() string { return e.wsURL(directory.KindUser, cred) + "&format=xml" }, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, resp, err := e.dialer.Dial(tt.url(), nil)
			if ws != nil {
				ws.Close()
			}
			require.Error(t, err)
			require.NotNil(t, resp)
			resp.Body.Close()
			require.Equal(t, tt.want, resp.StatusCode)
		})
	}
	// A plain GET on a websocket path is 426, as OpenTera.
	code, _ := e.do(http.MethodGet, "/wss/user?id=x", nil, nil)
	require.Equal(t, http.StatusUpgradeRequired, code)
}

func TestLoginErrorsAndLockout(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) { c.MaxFailedLogins = 3 })
	tests := []struct {
		name string
		kind directory.Kind
		cred string
		want int
	}{
		{"wrong password", directory.KindUser, "bob:nope", http.StatusUnauthorized},
		{"unknown user", directory.KindUser, "mallory:x", http.StatusUnauthorized},
		{"participant password as user", directory.KindUser, "pat:pat-demo", http.StatusUnauthorized},
		{"bad device token", directory.KindDevice, "not-a-token", http.StatusUnauthorized},
		{"participant token", directory.KindParticipant, demoToken(directory.KindParticipant, pat), http.StatusOK},
		{"participant basic", directory.KindParticipant, "pat:pat-demo", http.StatusOK},
		{"device token", directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot1UUID), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.login(tt.kind, tt.cred, "")
			require.Equal(t, tt.want, code, "%v", out)
		})
	}
	// Device login answers OpenTera's fields.
	_, out := e.login(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot1UUID), "")
	require.Contains(t, out, "device_info")
	require.Contains(t, out, "participants_info")
	require.Contains(t, out, "websocket_url")
	require.Equal(t, pat, out["participants_info"].([]any)[0].(map[string]any)["participant_uuid"])

	// Participant Basic login answers a dynamic token and the static base token.
	_, out = e.login(directory.KindParticipant, "pat:pat-demo", "?with_websocket=1")
	require.NotEmpty(t, out["participant_token"])
	require.Equal(t, demoToken(directory.KindParticipant, pat), out["base_token"])

	// Bad with_websocket value.
	code, _ := e.login(directory.KindUser, "alice:alice-demo", "?with_websocket=maybe")
	require.Equal(t, http.StatusBadRequest, code)

	// Three failures lock bob (two already above... count only from here with a fresh name).
	for i := 0; i < 3; i++ {
		code, _ := e.login(directory.KindUser, "alice:wrong", "")
		require.Equal(t, http.StatusUnauthorized, code)
	}
	req, _ := http.NewRequest(http.MethodGet, e.base+"/api/user/login", nil)
	req.SetBasicAuth("alice", "alice-demo")
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "locked even with the right password")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

func TestSingleSocketMode(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) { c.SingleSocket = true })
	e.connect(directory.KindUser, "alice:alice-demo")
	code, out := e.login(directory.KindUser, "alice:alice-demo", "?with_websocket=true")
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "User already logged in.", out["_raw"].(string)[1:len("User already logged in.")+1])
	code, _ = e.login(directory.KindUser, "alice:alice-demo", "")
	require.Equal(t, http.StatusOK, code, "without with_websocket the login still works")
}

func TestPostEventsErrors(t *testing.T) {
	e := startGateway(t, nil)
	aliceTok := func() string {
		_, out := e.login(directory.KindUser, "alice:alice-demo", "")
		return out["user_token"].(string)
	}()
	svc := map[string]string{"Authorization": "OpenTera " + serviceToken}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	valid := `{"header":{"topic":"` + umEvents + `"},"events":[{"@type":"type.googleapis.com/opentera.protobuf.StopSessionEvent","sessionUuid":"x"}]}`
	tests := []struct {
		name     string
		body     string
		hdr      map[string]string
		want     int
		wantBody string
	}{
		{"no token", valid, nil, http.StatusUnauthorized, "service token"},
		{"bad token", valid, map[string]string{"Authorization": "OpenTera nope"}, http.StatusUnauthorized, ""},
		{"user token", valid, map[string]string{"Authorization": "Bearer " + aliceTok}, http.StatusForbidden, "Only services"},
		{"malformed json", `{"header":`, svc, http.StatusBadRequest, "malformed TeraEvent JSON"},
		{"wrong json field", `{"headr":{}}`, svc, http.StatusBadRequest, "malformed TeraEvent JSON"},
		{"unknown type", `{"header":{"topic":"a"},"events":[{"@type":"type.googleapis.com/x.Nope"}]}`, svc, http.StatusBadRequest, "malformed"},
		{"no topic", `{"header":{},"events":[{"@type":"type.googleapis.com/opentera.protobuf.StopSessionEvent"}]}`, svc, http.StatusBadRequest, "header.topic is required"},
		{"glob topic", `{"header":{"topic":"a.*"},"events":[{"@type":"type.googleapis.com/opentera.protobuf.StopSessionEvent"}]}`, svc, http.StatusBadRequest, "not a channel name"},
		{"no events", `{"header":{"topic":"a"}}`, svc, http.StatusBadRequest, "events is empty"},
		{"malformed protobuf", "\xff\xff\xff", with(svc, "Content-Type", "application/x-protobuf"), http.StatusBadRequest, "malformed protobuf"},
		{"unsupported content type", valid, with(svc, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType, "unsupported content type"},
		{"too large", `{"header":{"topic":"` + strings.Repeat("a", 2<<20) + `"}}`, svc, http.StatusRequestEntityTooLarge, "larger than"},
		{"valid", valid, svc, http.StatusAccepted, `"events":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.do(http.MethodPost, "/api/events", strings.NewReader(tt.body), tt.hdr)
			require.Equal(t, tt.want, code, "%s", body)
			require.Contains(t, string(body), tt.wantBody)
		})
	}
	// Binary protobuf is accepted too.
	te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Topic: umEvents}, Events: nil}
	te.Events = append(te.Events, anyOf(t, &opentera.StopSessionEvent{SessionUuid: "bin"}))
	b, _ := proto.Marshal(te)
	code, body := e.do(http.MethodPost, "/api/events", bytes.NewReader(b), with(svc, "Content-Type", "application/x-protobuf"))
	require.Equal(t, http.StatusAccepted, code, "%s", body)
}

// TestMisbehavingClients: a client that sends data, one that sends an oversized frame and one
// that vanishes do not disturb the others.
func TestMisbehavingClients(t *testing.T) {
	e := startGateway(t, nil)
	good := e.connect(directory.KindUser, "bob:bob-demo")

	chatty := e.connect(directory.KindUser, "admin:admin-demo")
	require.NoError(t, chatty.ws.WriteMessage(websocket.TextMessage, []byte(`{"hello":1}`)))
	_ = chatty.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		mt, data, err := chatty.ws.ReadMessage()
		require.NoError(t, err)
		if mt == websocket.TextMessage && string(data) == "Not allowed to send message" {
			break
		}
	}

	big := e.connect(directory.KindUser, "admin:admin-demo")
	require.NoError(t, big.ws.WriteMessage(websocket.BinaryMessage, make([]byte, 5000)))
	big.expectClose(websocket.CloseMessageTooBig)

	gone := e.connect(directory.KindParticipant, demoToken(directory.KindParticipant, paula))
	_ = gone.ws.UnderlyingConn().Close() // vanishes without a close frame

	m := e.marker("misbehave")
	for {
		ev := good.event()
		if ev["sessionUuid"] == m {
			break
		}
	}
	// The server is still serving new clients. (A lane still routing the marker when the socket
	// registers may deliver it first: the socket's own CONNECTED follows.)
	s := e.dial(e.wsURL(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot2UUID)))
	for i := 0; ; i++ {
		typ, _ := s.event()["type"].(string)
		if strings.HasSuffix(typ, "CONNECTED") {
			break
		}
		require.Less(t, i, 5, "no CONNECTED among the first frames")
	}
}

func TestProtoFormatAndDisconnectCommand(t *testing.T) {
	e := startGateway(t, nil)
	url := e.wsURL(directory.KindDevice, demoToken(directory.KindDevice, directory.DemoRobot1UUID)) + "&format=proto"
	s := e.dial(url)
	_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, data, err := s.ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.BinaryMessage, mt)
	var tm opentera.TeraMessage
	require.NoError(t, proto.Unmarshal(data, &tm))
	var te opentera.TeraEvent
	require.NoError(t, tm.GetMessage().UnmarshalTo(&te))
	var de opentera.DeviceEvent
	require.NoError(t, te.Events[0].UnmarshalTo(&de))
	require.Equal(t, opentera.DeviceEvent_DEVICE_CONNECTED, de.Type)
	require.Equal(t, directory.DemoRobot1UUID, de.DeviceUuid)

	// OpenTera's disconnect command, published by a service straight onto the bus topic.
	cmd := &opentera.TeraModuleMessage{Head: &opentera.TeraModuleMessage_Header{Version: 1, Dest: "module.TeraServer.TwistedModule.events." + directory.DemoRobot1UUID}}
	cmd.Data = append(cmd.Data, anyOf(t, &opentera.ServerCommand{Type: opentera.ServerCommand_CMD_CLIENT_DISCONNECT}))
	require.NoError(t, e.gw.Publish(context.Background(), "module.TeraServer.TwistedModule.events."+directory.DemoRobot1UUID, mustMarshal(t, cmd)))
	s.expectClose(4000)
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestTLSAndGracefulShutdown(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) { c.Insecure = false })
	require.True(t, strings.HasPrefix(e.base, "https://"))
	u := e.wsURL(directory.KindUser, "alice:alice-demo")
	require.True(t, strings.HasPrefix(u, "wss://"), u)
	s := e.dial(u)
	s.expectType("USER_CONNECTED")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.gw.Shutdown(ctx) }()
	s.expectClose(websocket.CloseGoingAway)
	require.NoError(t, <-done)
}

func TestMetricsAndHealth(t *testing.T) {
	e := startGateway(t, nil)
	e.connect(directory.KindUser, "alice:alice-demo")
	code, body := e.do(http.MethodGet, "/healthz", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status": "ok"}`, string(body))
	code, body = e.do(http.MethodGet, "/readyz", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status": "ready", "connections": 1}`, string(body))
	code, body = e.do(http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{`teragate_connections{kind="user"} 1`, `teragate_logins_total{kind="user",result="ok"} 1`, "teragate_deliveries_total", "go_goroutines"} {
		require.Contains(t, string(body), want)
	}
}

// TestCrossTopicOrder: a client sees events in publish order even when they come on different
// topic families (a direct invitation, then the session's stop on the user manager topic).
func TestCrossTopicOrder(t *testing.T) {
	e := startGateway(t, nil)
	a := e.connect(directory.KindUser, "alice:alice-demo")
	for i := 0; i < 30; i++ {
		s := "s-" + string(rune('a'+i%26)) + strings.Repeat("x", i)
		e.publish("websocket.user."+alice+".events", &opentera.JoinSessionEvent{SessionUuid: s, SessionUsers: []string{alice}})
		e.publish(umEvents, &opentera.StopSessionEvent{SessionUuid: s})
	}
	for i := 0; i < 30; i++ {
		s := "s-" + string(rune('a'+i%26)) + strings.Repeat("x", i)
		join := a.event()
		require.Equal(t, "type.googleapis.com/opentera.protobuf.JoinSessionEvent", join["@type"])
		require.Equal(t, s, join["sessionUuid"])
		stop := a.event()
		require.Equal(t, "type.googleapis.com/opentera.protobuf.StopSessionEvent", stop["@type"])
		require.Equal(t, s, stop["sessionUuid"])
	}
}
