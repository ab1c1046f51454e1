package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/client"
)

// nextOf waits for the next event whose first message satisfies match.
func nextOf(t *testing.T, conn *client.Conn, match func(proto.Message) bool) proto.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-conn.Events():
			require.True(t, ok, "events closed: %v", conn.Err())
			for _, m := range ev.Messages {
				if match(m) {
					return m
				}
			}
		case <-deadline:
			t.Fatal("no matching event")
			return nil
		}
	}
}

func userEvent(uuid string, typ opentera.UserEvent_EventType) func(proto.Message) bool {
	return func(m proto.Message) bool {
		e, ok := m.(*opentera.UserEvent)
		return ok && e.GetUserUuid() == uuid && e.GetType() == typ
	}
}

func TestLoginDialAndCall(t *testing.T) {
	for _, format := range []client.Format{client.FormatJSON, client.FormatProto} {
		t.Run(map[client.Format]string{client.FormatJSON: "json", client.FormatProto: "proto"}[format], func(t *testing.T) {
			gw := startGateway(t)
			ctx := context.Background()
			c, err := client.Login(ctx, gw.URL(), client.KindUser, client.Basic("alice", "alice-demo"), client.WithFormat(format))
			require.NoError(t, err)
			require.Equal(t, aliceUUID, c.UUID())
			conn, err := c.Dial(ctx)
			require.NoError(t, err)
			defer conn.Close()
			nextOf(t, conn, userEvent(aliceUUID, opentera.UserEvent_USER_CONNECTED))

			raw, err := c.Call(ctx, client.UserManagerModule, "online_users")
			require.NoError(t, err)
			require.JSONEq(t, `["`+aliceUUID+`"]`, string(raw))

			_, err = c.Call(ctx, client.UserManagerModule, "no_such_method")
			var re *client.RPCError
			require.ErrorAs(t, err, &re)
			require.Equal(t, http.StatusNotFound, re.StatusCode)
			require.Contains(t, re.Reason, "unknown method")
		})
	}
}

func TestServiceCallsAndPublish(t *testing.T) {
	gw := startGateway(t)
	ctx := context.Background()
	dev, err := client.Login(ctx, gw.URL(), client.KindDevice, client.Token(robot1Token))
	require.NoError(t, err)
	require.Equal(t, robot1UUID, dev.UUID())

	// Offline device: the status update is refused.
	_, err = dev.UpdateDeviceStatus(ctx, map[string]any{"battery": 50}, 100)
	var he *client.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusForbidden, he.StatusCode)
	require.Equal(t, "Status update forbidden on offline device.", he.Message)

	conn, err := dev.Dial(ctx)
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool { return gw.Online("device", robot1UUID) }, 5*time.Second, 10*time.Millisecond)
	raw, err := dev.UpdateDeviceStatus(ctx, map[string]any{"battery": 50}, 100.5)
	require.NoError(t, err)
	require.JSONEq(t, `{"uuid": "`+robot1UUID+`", "status": "{\"battery\": 50}", "timestamp": 100.5}`, string(raw))

	svc, err := client.New(gw.URL(), client.WithToken(serviceToken))
	require.NoError(t, err)
	raw, err = svc.Call(ctx, client.UserManagerModule, "status_devices")
	require.NoError(t, err)
	require.Equal(t, `{"`+robot1UUID+`": {"online": true, "busy": false, "status": {"status": "{\"battery\": 50}", "timestamp": 100.5}}}`, string(raw))

	// A float argument stays a float: 7.0 is sent as 7.0 and echoed as 7.0.
	raw, err = svc.Call(ctx, client.UserManagerModule, "update_device_status", robot1UUID, "{}", 700.0)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"timestamp": 700.0`)

	// Wrong argument types: an Error reply with the reason.
	_, err = svc.Call(ctx, client.UserManagerModule, "update_device_status", 1, 2, 3)
	var re *client.RPCError
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusBadRequest, re.StatusCode)
	require.Contains(t, re.Reason, "want a string")

	// Publishing: the device receives a direct event.
	require.NoError(t, svc.PublishEvent(ctx, &opentera.TeraEvent{
		Header: &opentera.TeraEvent_Header{Version: 1, Topic: "websocket.device." + robot1UUID + ".events"},
		Events: []*anypbAny{mustAny(t, &opentera.StopSessionEvent{SessionUuid: "direct-1"})},
	}))
	nextOf(t, conn, func(m proto.Message) bool {
		e, ok := m.(*opentera.StopSessionEvent)
		return ok && e.GetSessionUuid() == "direct-1"
	})

	bad, err := client.New(gw.URL(), client.WithToken("nope"))
	require.NoError(t, err)
	_, err = bad.Call(ctx, client.UserManagerModule, "online_users")
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusUnauthorized, he.StatusCode)
}

// TestReconnectAfterDrop cuts the network under the websocket: the client logs in again with a
// fresh ticket, reconnects and sees its own CONNECTED event again.
func TestReconnectAfterDrop(t *testing.T) {
	// The proxy's address is the gateway's public host, as behind any proxy: the websocket_url
	// of a login then leads through the proxy too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gw := gatewaytest.Start(t, func(c *gateway.Config) { c.PublicHost = ln.Addr().String() })
	px := startProxy(t, ln, gw.Addr().String())
	ctx := context.Background()
	var mu sync.Mutex
	var states []client.State
	c, err := client.Login(ctx, px.URL(), client.KindUser, client.Basic("alice", "alice-demo"),
		client.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
		client.WithStateHook(func(s client.State, _ error) { mu.Lock(); states = append(states, s); mu.Unlock() }))
	require.NoError(t, err)
	conn, err := c.Dial(ctx)
	require.NoError(t, err)
	nextOf(t, conn, userEvent(aliceUUID, opentera.UserEvent_USER_CONNECTED))

	px.cut()
	nextOf(t, conn, userEvent(aliceUUID, opentera.UserEvent_USER_CONNECTED))
	require.NoError(t, conn.Err())
	require.NoError(t, conn.Close())
	require.NoError(t, conn.Err(), "Close is not an error")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []client.State{client.StateConnected, client.StateDisconnected, client.StateConnected, client.StateClosed}, states)
}

// TestNoReconnectAfter4000: a logout closes the socket with 4000; the Conn ends with
// ErrDisconnected and does not reconnect.
func TestNoReconnectAfter4000(t *testing.T) {
	gw := startGateway(t)
	ctx := context.Background()
	var mu sync.Mutex
	connects := 0
	c, err := client.Login(ctx, gw.URL(), client.KindUser, client.Basic("alice", "alice-demo"),
		client.WithBackoff(10*time.Millisecond, 50*time.Millisecond),
		client.WithStateHook(func(s client.State, _ error) {
			if s == client.StateConnected {
				mu.Lock()
				connects++
				mu.Unlock()
			}
		}))
	require.NoError(t, err)
	conn, err := c.Dial(ctx)
	require.NoError(t, err)
	nextOf(t, conn, userEvent(aliceUUID, opentera.UserEvent_USER_CONNECTED))

	require.NoError(t, c.Logout(ctx))
	select {
	case <-conn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the Conn did not end after close 4000")
	}
	for range conn.Events() { // drained and closed
	}
	require.ErrorIs(t, conn.Err(), client.ErrDisconnected)
	var ce *client.CloseError
	require.True(t, errors.As(conn.Err(), &ce))
	require.Equal(t, 4000, ce.Code)
	time.Sleep(200 * time.Millisecond) // several backoff periods
	mu.Lock()
	require.Equal(t, 1, connects, "no reconnection after 4000")
	mu.Unlock()
	require.Eventually(t, func() bool { return !gw.Online("user", aliceUUID) }, 5*time.Second, 10*time.Millisecond)
}

func TestEncodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		args    []any
		want    string
		wantErr bool
	}{
		{"scalars", []any{true, 1, int64(-2), 1.5, 2.0, 1e21, "x\"y", json.Number("3.10")}, `{"method": "m", "args": [true, 1, -2, 1.5, 2.0, 1e+21, "x\"y", 3.10]}`, false},
		{"none", nil, `{"method": "m", "args": []}`, false},
		{"struct", []any{struct{}{}}, ``, true},
		{"nil", []any{nil}, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.EncodeRequest("m", tt.args...)
			if tt.wantErr {
				require.ErrorIs(t, err, client.ErrBadArgument)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
}

func TestDecodeFrameRejectsGarbage(t *testing.T) {
	_, err := client.DecodeFrame(false, []byte(`{"message": 3}`))
	require.Error(t, err)
	_, err = client.DecodeFrame(true, []byte{0xff})
	require.Error(t, err)
	_, err = client.DecodeFrame(false, []byte(strings.Repeat("[", 10)))
	require.Error(t, err)
}

type anypbAny = anypb.Any

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := opentera.NewAny(m)
	require.NoError(t, err)
	return a
}

// TestDialContextCancelEnds: cancelling Dial's ctx ends a Conn blocked reading an idle websocket
// (what Ctrl-C does in `teragate ws --user`): Events closes and Err is the context's error.
func TestDialContextCancelEnds(t *testing.T) {
	gw := startGateway(t)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := client.Login(ctx, gw.URL(), client.KindUser, client.Basic("alice", "alice-demo"))
	require.NoError(t, err)
	conn, err := c.Dial(ctx)
	require.NoError(t, err)
	<-conn.Events() // the greeting; then the socket is idle
	cancel()
	select {
	case <-conn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the Conn did not end when its context was cancelled")
	}
	for range conn.Events() {
	}
	require.ErrorIs(t, conn.Err(), context.Canceled)
}
