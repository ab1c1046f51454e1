package gateway_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// Two non-admin services added to the demo identities: one that reaches project p1, one that
// reaches nothing but itself.
const (
	reportsUUID  = "00000000-0000-4000-8000-000000000302"
	reportsToken = "reports-service-token-0123456789abcdefghij"
	plainUUID    = "00000000-0000-4000-8000-000000000303"
	plainToken   = "plain-service-token-0123456789abcdefghijkl"
)

func identitiesWithServices(t *testing.T) string {
	t.Helper()
	extra := `
  - uuid: ` + reportsUUID + `
    name: Reports
    token: ` + reportsToken + `
    projects: [p1]
  - uuid: ` + plainUUID + `
    name: Plain
    token: ` + plainToken + `
`
	path := filepath.Join(t.TempDir(), "identities.yaml")
	require.NoError(t, os.WriteFile(path, append(append([]byte{}, directory.DemoYAML...), extra...), 0o600))
	return path
}

// rpcToken logs in with a password and returns the session token.
func (e *env) rpcToken(kind directory.Kind, cred string) string {
	e.t.Helper()
	code, out := e.login(kind, cred, "")
	require.Equal(e.t, http.StatusOK, code, "login: %v", out)
	tok, _ := out[kind.String()+"_token"].(string)
	require.NotEmpty(e.t, tok, "no token in %v", out)
	return tok
}

// joinEvent reads the next frame and checks that it is a JoinSessionEvent.
func joinEvent(s *sock) map[string]any {
	s.t.Helper()
	ev := s.event()
	require.Equal(s.t, "type.googleapis.com/opentera.protobuf.JoinSessionEvent", ev["@type"], "%v", ev)
	return ev
}

// TestSecurityRPCSessionsScope: rpc.sessions acts for its caller. alice (project p1) may not invite
// paula or bob (project p3) nor learn whether bob is busy; pat's static token may not either; the
// refusal is a 403 with the reason, nothing reaches paula; within her access alice is served, and
// the admin service may name anyone.
func TestSecurityRPCSessionsScope(t *testing.T) {
	dir := builtPlugins(t)
	e := startGateway(t, func(c *gateway.Config) { c.Plugins = dir })
	<-e.gw.PluginsReady()
	e.moduleMessage(&opentera.JoinSessionEvent{SessionUuid: "s-bob-secret", SessionUsers: []string{bob}})
	require.Eventually(t, func() bool { return strings.Contains(e.returnValue("busy_users"), "s-bob-secret") }, 5*time.Second, 10*time.Millisecond)

	paulaSock := e.connect(directory.KindParticipant, "paula:paula-demo")
	patSock := e.connect(directory.KindParticipant, "pat:pat-demo")
	aliceTok := e.rpcToken(directory.KindUser, "alice:alice-demo")
	patStatic := demoToken(directory.KindParticipant, pat)

	invite := func(users, participants []string) string {
		inv, err := json.Marshal(map[string]any{"sessionUuid": "s-phish", "sessionUrl": "https://evil.example/",
			"sessionUsers": users, "sessionParticipants": participants})
		require.NoError(t, err)
		b, err := json.Marshal(map[string]any{"method": "invite", "args": []string{string(inv)}})
		require.NoError(t, err)
		return string(b)
	}
	tests := []struct {
		name  string
		token string
		body  string
		code  int
		want  string // in the body
	}{
		{"alice invites paula and bob", aliceTok, invite([]string{bob}, []string{paula}), http.StatusForbidden, "outside your access"},
		{"alice invites paula only", aliceTok, invite(nil, []string{paula}), http.StatusForbidden, paula},
		{"alice asks if bob is busy", aliceTok, `{"method": "busy", "args": ["user", "` + bob + `"]}`, http.StatusForbidden, bob},
		{"pat's static token asks about bob", patStatic, `{"method": "busy", "args": ["user", "` + bob + `"]}`, http.StatusForbidden, "outside your access"},
		{"pat's static token invites paula", patStatic, invite(nil, []string{paula}), http.StatusForbidden, "outside your access"},
		{"alice invites pat (her project)", aliceTok, invite([]string{alice}, []string{pat}), http.StatusOK, `"forwarded"`},
		{"alice asks about pat", aliceTok, `{"method": "busy", "args": ["participant", "` + pat + `"]}`, http.StatusOK, `"return_value": null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.rpcCall(tt.token, "sessions", tt.body)
			require.Equal(t, tt.code, code, body)
			require.Contains(t, body, tt.want)
			require.NotContains(t, body, "s-bob-secret")
		})
	}
	// pat got alice's legitimate invitation; paula got nothing but the marker.
	require.Equal(t, "s-phish", joinEvent(patSock)["sessionUuid"])
	paulaSock.expectMarker(e.marker("after-refusals"))

	// The admin service may invite anyone, paula included.
	code, body := e.rpcCall(serviceToken, "sessions", invite(nil, []string{paula}))
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "s-phish", joinEvent(paulaSock)["sessionUuid"])
}

// TestSecurityServicePublish: a service without admin may publish only on its own topic and to
// entities it reaches, only session and archive events, and only about entities it reaches;
// everything else is a 403 with the reason and nothing is delivered. An admin service is not
// limited.
func TestSecurityServicePublish(t *testing.T) {
	ids := identitiesWithServices(t)
	e := startGateway(t, func(c *gateway.Config) { c.Identities = ids })
	aliceSock := e.connect(directory.KindUser, "alice:alice-demo")
	bobSock := e.connect(directory.KindUser, "bob:bob-demo")

	tests := []struct {
		name   string
		token  string
		topic  string
		events []proto.Message
		code   int
		want   string
	}{
		{"server command closing alice", plainToken, "module.TeraServer.TwistedModule.events." + alice,
			[]proto.Message{&opentera.ServerCommand{Type: opentera.ServerCommand_CMD_CLIENT_DISCONNECT}}, http.StatusForbidden, "may publish only on"},
		{"forged session membership", reportsToken, "module.TeraServer.UserManagerModule.messages",
			[]proto.Message{&opentera.JoinSessionEvent{SessionUuid: "forged", SessionUsers: []string{bob}}}, http.StatusForbidden, "may publish only on"},
		{"forged USER_DELETED on the events topic", reportsToken, "module.TeraServer.UserManagerModule.events",
			[]proto.Message{&opentera.UserEvent{UserUuid: alice, Type: opentera.UserEvent_USER_DELETED}}, http.StatusForbidden, "may publish only on"},
		{"forged USER_DELETED on its own topic", reportsToken, "service.Reports.events",
			[]proto.Message{&opentera.UserEvent{UserUuid: alice, Type: opentera.UserEvent_USER_DELETED}}, http.StatusForbidden, "UserEvent"},
		{"another service's topic", reportsToken, "service.VideoRehabService.events",
			[]proto.Message{&opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: []string{alice}}}, http.StatusForbidden, "may publish only on"},
		{"direct to bob, outside its projects", reportsToken, "websocket.user." + bob + ".events",
			[]proto.Message{&opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: []string{bob}}}, http.StatusForbidden, "outside this service's access"},
		{"invitation naming bob on its own topic", reportsToken, "service.Reports.events",
			[]proto.Message{&opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: []string{alice, bob}}}, http.StatusForbidden, bob},
		{"stop session to everyone", reportsToken, "service.Reports.events",
			[]proto.Message{&opentera.StopSessionEvent{SessionUuid: "s"}}, http.StatusForbidden, "only on websocket"},
		{"a service without projects reaches no one", plainToken, "websocket.user." + alice + ".events",
			[]proto.Message{&opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: []string{alice}}}, http.StatusForbidden, "outside"},
		{"direct invitation to alice", reportsToken, "websocket.user." + alice + ".events",
			[]proto.Message{&opentera.JoinSessionEvent{SessionUuid: "s-direct", SessionUsers: []string{alice}}}, http.StatusAccepted, ""},
		{"invitation on its own topic", reportsToken, "service.Reports.events",
			[]proto.Message{&opentera.JoinSessionEvent{SessionUuid: "s-own", SessionUsers: []string{alice}, SessionParticipants: []string{pat}}}, http.StatusAccepted, ""},
		{"admin service publishes anything", serviceToken, "service.Anything.events",
			[]proto.Message{&opentera.UserEvent{UserUuid: bob, Type: opentera.UserEvent_USER_UPDATED}}, http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1, Topic: tt.topic}}
			for _, m := range tt.events {
				te.Events = append(te.Events, anyOf(t, m))
			}
			body, err := protojson.Marshal(te)
			require.NoError(t, err)
			code, out := e.do(http.MethodPost, "/api/events", strings.NewReader(string(body)),
				map[string]string{"Authorization": "OpenTera " + tt.token, "Content-Type": "application/json"})
			require.Equal(t, tt.code, code, "%s", out)
			require.Contains(t, string(out), tt.want)
		})
	}
	// Only the accepted events arrived, in order; alice's socket is still open.
	require.Equal(t, "s-direct", joinEvent(aliceSock)["sessionUuid"])
	require.Equal(t, "s-own", joinEvent(aliceSock)["sessionUuid"])
	m := e.marker("after-publish")
	aliceSock.expectMarker(m)
	require.Equal(t, "USER_UPDATED", bobSock.expectType("USER_UPDATED")["type"])
	bobSock.expectMarker(m)
	code, metrics := e.do(http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(metrics), `teragate_access_denied_total{what="publish"} 9`)
}

// TestSecurityBinaryEventsChecked: a binary TeraEvent whose event has an unknown type or a string
// that is not UTF-8 is refused with 400, as the JSON path refuses it, instead of a 202 followed by
// a silent drop.
func TestSecurityBinaryEventsChecked(t *testing.T) {
	e := startGateway(t, nil)
	badUTF8, err := proto.Marshal(&opentera.StopSessionEvent{})
	require.NoError(t, err)
	// field 1 (session_uuid), length 2, bytes 0xff 0xfe: not UTF-8.
	badUTF8 = append(badUTF8, 0x0a, 0x02, 0xff, 0xfe)
	tests := []struct {
		name string
		ev   *anypb.Any
		code int
		want string
	}{
		{"unknown type", &anypb.Any{TypeUrl: "type.googleapis.com/evil.Unknown", Value: []byte{0x0a, 0x01, 'x'}}, http.StatusBadRequest, "evil.Unknown"},
		{"invalid UTF-8", &anypb.Any{TypeUrl: "type.googleapis.com/opentera.protobuf.StopSessionEvent", Value: badUTF8}, http.StatusBadRequest, "UTF-8"},
		{"bad wire data", &anypb.Any{TypeUrl: "type.googleapis.com/opentera.protobuf.StopSessionEvent", Value: []byte{0x0a, 0x7f}}, http.StatusBadRequest, "cannot be decoded"},
		{"valid", anyOf(t, &opentera.StopSessionEvent{SessionUuid: "ok"}), http.StatusAccepted, "events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1, Topic: umEvents}, Events: []*anypb.Any{tt.ev}}
			body, err := proto.Marshal(te)
			require.NoError(t, err)
			code, out := e.do(http.MethodPost, "/api/events", strings.NewReader(string(body)),
				map[string]string{"Authorization": "OpenTera " + serviceToken, "Content-Type": "application/x-protobuf"})
			require.Equal(t, tt.code, code, "%s", out)
			require.Contains(t, string(out), tt.want)
		})
	}
}

// TestSecurityReservedModule: a plugin declaring the built-in user manager module is rejected
// with the reason; online_users and status_devices keep their built-in answers; deleting the
// file leaves the module (and POST /api/device/status) in place. A plugin with its own module is
// served as before.
func TestSecurityReservedModule(t *testing.T) {
	dir := t.TempDir()
	wasm, err := os.ReadFile("internal/pluginhost/testdata/echo.wasm")
	require.NoError(t, err)
	echoCfg := func(module string) string {
		init, _ := proto.Marshal(&pluginv1.InitResult{Name: "takeover", RpcModule: module, RpcMethods: []string{"online_users", "ping"}})
		rpc, _ := proto.Marshal(&pluginv1.RPCResult{ReturnJson: []byte(`["pwned"]`)})
		cfg := binary.LittleEndian.AppendUint32(nil, uint32(len(init)))
		cfg = binary.LittleEndian.AppendUint32(cfg, 0)
		cfg = binary.LittleEndian.AppendUint32(cfg, 0)
		return string(append(append(cfg, init...), rpc...))
	}
	writeRename(t, dir, "rpc.evil.wasm", wasm)
	writeRename(t, dir, "rpc.fine.wasm", variant(wasm, 1))
	e := startGateway(t, func(c *gateway.Config) {
		c.Plugins = dir
		c.PluginConfig = map[string]gateway.PluginConfig{
			"rpc.evil": {Config: echoCfg(presence.Module)},
			"rpc.fine": {Config: echoCfg("fine")},
		}
	})
	<-e.gw.PluginsReady()
	admin := e.userToken("admin:admin-demo")
	_, body := e.do(http.MethodGet, "/api/plugins", nil, map[string]string{"Authorization": "OpenTera " + admin})
	require.Contains(t, string(body), `is reserved: the gateway serves that module itself`)

	require.Equal(t, `[]`, e.returnValue("online_users"))
	require.Equal(t, `{}`, e.returnValue("status_devices"))
	code, out := e.rpcCall(serviceToken, "fine", `{"method": "ping"}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Contains(t, out, `"pwned"`, "a plugin's own module is served")

	require.NoError(t, os.Remove(filepath.Join(dir, "rpc.evil.wasm")))
	require.NoError(t, os.Remove(filepath.Join(dir, "rpc.fine.wasm")))
	require.Eventually(t, func() bool {
		code, _ := e.rpcCall(serviceToken, "fine", `{"method": "ping"}`)
		return code == http.StatusNotFound
	}, 10*time.Second, 20*time.Millisecond, "the plugin's module goes with its file")
	require.Equal(t, `{}`, e.returnValue("status_devices"))
	code, raw := e.do(http.MethodPost, "/api/device/status", strings.NewReader(`{"status": {}, "timestamp": 1}`),
		map[string]string{"Authorization": "OpenTera " + demoToken(directory.KindDevice, robot1), "Content-Type": "application/json"})
	require.Equal(t, http.StatusForbidden, code, "%s", raw) // offline device: the built-in answers
}

// TestSecurityInvalidUTF8: a text message that is not UTF-8 closes the socket with 1007; a valid
// one is answered "Not allowed to send message" as before.
func TestSecurityInvalidUTF8(t *testing.T) {
	e := startGateway(t, nil)
	s := e.connect(directory.KindUser, "alice:alice-demo")
	require.NoError(t, s.ws.WriteMessage(websocket.TextMessage, []byte("hello")))
	_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := s.ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "Not allowed to send message", string(b))
	require.NoError(t, s.ws.WriteMessage(websocket.TextMessage, []byte{'a', 0xff, 0xfe, 'b'}))
	s.expectClose(websocket.CloseInvalidFramePayloadData)
	require.Eventually(t, func() bool { return !e.gw.Online("user", alice) }, 5*time.Second, 5*time.Millisecond)
}

// TestSecurityWebsocketURLHost: websocket_url never takes the Host header (or X-External*): it is
// the address the login arrived on, or the configured public host.
func TestSecurityWebsocketURLHost(t *testing.T) {
	for _, public := range []string{"", "gw.example.test:8443"} {
		t.Run("public_host="+public, func(t *testing.T) {
			e := startGateway(t, func(c *gateway.Config) { c.PublicHost = public })
			req, err := http.NewRequest(http.MethodGet, e.base+"/api/user/login?with_websocket=true", nil)
			require.NoError(t, err)
			req.Host = "evil.example"
			req.Header.Set("X-ExternalServer", "evil.example")
			req.Header.Set("X-Forwarded-Host", "evil.example")
			req.SetBasicAuth("alice", "alice-demo")
			resp, err := e.client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var out struct {
				URL string `json:"websocket_url"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			require.NotContains(t, out.URL, "evil")
			want := public
			if want == "" {
				want = e.gw.Addr().String()
			}
			require.True(t, strings.HasPrefix(out.URL, "ws://"+want+"/wss/user?id="), out.URL)
		})
	}
}

// TestSecuritySlowSenders: connections that send a request too slowly (headers or body, with or
// without credentials) are closed after the read timeouts, while an upgraded websocket idles past
// them and keeps working.
func TestSecuritySlowSenders(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) {
		c.ReadHeaderTimeout = gateway.Duration(300 * time.Millisecond)
		c.ReadTimeout = gateway.Duration(600 * time.Millisecond)
	})
	ws := e.connect(directory.KindUser, "alice:alice-demo")
	partial := []string{
		"POST /api/events HTTP/1.1\r\nHost: x\r\n",                                   // headers never end
		"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"head", // body never ends
		"POST /api/rpc/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: OpenTera " + serviceToken + "\r\nContent-Length: 50\r\n\r\n{",
	}
	for _, p := range partial {
		c, err := net.Dial("tcp", e.gw.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte(p))
		require.NoError(t, err)
		// The server closes the connection; reading ends (the test's own deadline is far longer).
		require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Second)))
		_, err = io.Copy(io.Discard, c)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept a slow sender: %q", p)
	}
	// The websocket outlived both timeouts and still receives events.
	ws.expectMarker(e.marker("after-slow"))
}

// TestSecuritySlowConsumerSees4001: a client that stops reading until its queue overflows, then
// reads again within the close grace, drains what was written and then reads the 4001 close (the
// close frame waits behind the write in flight instead of aborting it).
func TestSecuritySlowConsumerSees4001(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) { c.MaxQueueBytes = 64 << 10 })
	s := e.connect(directory.KindUser, "alice:alice-demo")
	big := strings.Repeat("x", 30<<10)
	te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1, Topic: umEvents}}
	for range 20 {
		te.Events = append(te.Events, anyOf(t, &opentera.StopSessionEvent{SessionUuid: big}))
	}
	body, err := proto.Marshal(te)
	require.NoError(t, err)
	overflowed := func() bool {
		_, b := e.do(http.MethodGet, "/metrics", nil, nil)
		return strings.Contains(string(b), `teragate_disconnects_total{reason="slow_consumer"} 1`)
	}
	for i := 0; i < 200 && !overflowed(); i++ {
		code, out := e.do(http.MethodPost, "/api/events", bytes.NewReader(body),
			map[string]string{"Authorization": "OpenTera " + serviceToken, "Content-Type": "application/x-protobuf"})
		require.Equal(t, http.StatusAccepted, code, "%s", out)
	}
	// The connection is counted when its close ends: after the write in flight and the close
	// frame went into the socket buffers, or after the close grace.
	require.Eventually(t, overflowed, 20*time.Second, 20*time.Millisecond, "the socket's queue never overflowed")
	s.expectClose(hub.CloseSlowConsumer)
}
