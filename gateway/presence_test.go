package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

const (
	robot1 = directory.DemoRobot1UUID
	robot2 = directory.DemoRobot2UUID
)

// rpcCall posts an RPC over HTTP with token and returns the status code and the body.
func (e *env) rpcCall(token, module, body string) (int, string) {
	e.t.Helper()
	code, b := e.do(http.MethodPost, "/api/rpc/"+module, strings.NewReader(body),
		map[string]string{"Authorization": "OpenTera " + token, "Content-Type": "application/json"})
	return code, strings.TrimSpace(string(b))
}

// returnValue calls a user-manager method as the admin service and returns its return_value.
func (e *env) returnValue(method string) string {
	e.t.Helper()
	code, body := e.rpcCall(serviceToken, presence.Module, `{"method": "`+method+`"}`)
	require.Equal(e.t, http.StatusOK, code, body)
	var rep struct {
		ReturnValue json.RawMessage `json:"return_value"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(body), &rep))
	return string(rep.ReturnValue)
}

// moduleMessage sends data to the user manager as a session service would.
func (e *env) moduleMessage(m proto.Message) {
	e.t.Helper()
	payload, err := presence.EncodeModuleMessage("serviceVideoRehabService", topic.UserManagerMessages, m)
	require.NoError(e.t, err)
	require.NoError(e.t, e.gw.Publish(context.Background(), topic.UserManagerMessages, payload))
}

// TestTwoSocketsStayOnlineUntilBothClose opens two real websockets for alice: she stays online
// (and nobody sees USER_DISCONNECTED) until both are closed.
func TestTwoSocketsStayOnlineUntilBothClose(t *testing.T) {
	e := startGateway(t, nil)
	adm := e.connect(directory.KindUser, "admin:admin-demo")
	s1 := e.connect(directory.KindUser, "alice:alice-demo")
	s2 := e.connect(directory.KindUser, "alice:alice-demo")
	drainUntilType(t, adm, "USER_CONNECTED")
	require.Equal(t, `["`+directory.DemoAdminUUID+`", "`+alice+`"]`, e.returnValue("online_users"))
	require.Empty(t, drainUntil(t, adm, e.marker("two-open")), "one USER_CONNECTED for two sockets")

	require.NoError(t, s1.ws.Close())
	require.Eventually(t, func() bool { return readyConnections(t, e) == 2 }, 5*time.Second, 5*time.Millisecond)
	require.Never(t, func() bool { return !e.gw.Online("user", alice) }, 300*time.Millisecond, 10*time.Millisecond,
		"alice must stay online while her second socket is open")
	got := drainUntil(t, adm, e.marker("one-closed"))
	require.Empty(t, got, "no USER_DISCONNECTED while a socket is open")
	require.Equal(t, `["`+directory.DemoAdminUUID+`", "`+alice+`"]`, e.returnValue("online_users"))

	require.NoError(t, s2.ws.Close())
	ev := drainUntilType(t, adm, "USER_DISCONNECTED")
	require.Equal(t, alice, ev["userUuid"])
	require.False(t, e.gw.Online("user", alice))
	require.Equal(t, `["`+directory.DemoAdminUUID+`"]`, e.returnValue("online_users"))
}

func readyConnections(t *testing.T, e *env) int {
	t.Helper()
	code, b := e.do(http.MethodGet, "/readyz", nil, nil)
	require.Equal(t, http.StatusOK, code)
	var r struct{ Connections int }
	require.NoError(t, json.Unmarshal(b, &r))
	return r.Connections
}

// TestBusySurvivesOffline: a participant busy in a session stays busy after its socket closes, as
// in OpenTera, and status_participants shows it offline and busy.
func TestBusySurvivesOffline(t *testing.T) {
	e := startGateway(t, nil)
	p := e.connect(directory.KindParticipant, "pat:pat-demo")
	e.moduleMessage(&opentera.JoinSessionEvent{SessionUuid: "sess-1", SessionParticipants: []string{pat}})
	p.expectType("PARTICIPANT_JOINED_SESSION")
	require.Equal(t, `{"`+pat+`": "sess-1"}`, e.returnValue("busy_participants"))

	require.NoError(t, p.ws.Close())
	require.Eventually(t, func() bool { return e.returnValue("online_participants") == `[]` }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, `{"`+pat+`": "sess-1"}`, e.returnValue("busy_participants"))
	require.Equal(t, `{"`+pat+`": {"online": false, "busy": true}}`, e.returnValue("status_participants"))

	e.moduleMessage(&opentera.StopSessionEvent{SessionUuid: "sess-1"})
	require.Eventually(t, func() bool { return e.returnValue("busy_participants") == `{}` }, 5*time.Second, 10*time.Millisecond)
}

// TestDeviceStatusOverHTTP drives POST /api/device/status as a device: refused while offline
// (403, and the RPC returns null), stored and announced (double-encoded) while online, a stale
// timestamp ignored.
func TestDeviceStatusOverHTTP(t *testing.T) {
	e := startGateway(t, nil)
	tok := demoToken(directory.KindDevice, robot1)
	post := func(body string) (int, string) {
		code, b := e.do(http.MethodPost, "/api/device/status", strings.NewReader(body),
			map[string]string{"Authorization": "OpenTera " + tok, "Content-Type": "application/json"})
		return code, strings.TrimSpace(string(b))
	}
	code, body := post(`{"status": {"battery": 10.4}, "timestamp": 1732145425.5}`)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, `"Status update forbidden on offline device."`, body)
	code, body = e.rpcCall(serviceToken, presence.Module, `{"method": "update_device_status", "args": ["`+robot1+`", "{}", 1]}`)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"method": "update_device_status", "id": 0, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": null}`, body)

	a := e.connect(directory.KindUser, "alice:alice-demo") // alice sees robot1 (site s1)
	e.connect(directory.KindDevice, tok)
	a.expectType("DEVICE_CONNECTED")

	code, body = post(`{"status": {"battery": 10.40, "charging": false}, "timestamp": 1732145425.5}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, `{"uuid": "`+robot1+`", "status": "{\"battery\": 10.4, \"charging\": false}", "timestamp": 1732145425.5}`, body)
	ev := a.expectType("DEVICE_STATUS_CHANGED")
	require.Equal(t, `{"status": "{\"battery\": 10.4, \"charging\": false}", "timestamp": 1732145425.5}`, ev["deviceStatus"])
	require.Equal(t, "robot1", ev["deviceName"])

	// Stale: ignored, the kept status is answered, no event.
	code, body = post(`{"status": {"battery": 1}, "timestamp": 1732145424}`)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"timestamp": 1732145425.5`)
	got := drainUntil(t, a, e.marker("stale"))
	require.Empty(t, got, "a stale status is not announced")
	require.Equal(t, `{"`+robot1+`": {"online": true, "busy": false, "status": {"status": "{\"battery\": 10.4, \"charging\": false}", "timestamp": 1732145425.5}}}`,
		e.returnValue("status_devices"))

	code, body = post(`{"status": {"battery": 1}}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, `"Missing arguments"`, body)
}
