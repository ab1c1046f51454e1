package client_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/proto/opentera"
	teragatev1 "github.com/teragate/teragate/proto/teragate/v1"
	"github.com/teragate/teragate/sdk/client"
)

// publishStops publishes StopSessionEvents (every user sees them) as the demo service.
func publishStops(t *testing.T, svc *client.Client, sessions ...string) {
	t.Helper()
	for _, s := range sessions {
		require.NoError(t, svc.PublishEvent(context.Background(), &opentera.TeraEvent{
			Header: &opentera.TeraEvent_Header{Version: 1, Topic: "module.TeraServer.UserManagerModule.events"},
			Events: []*anypbAny{mustAny(t, &opentera.StopSessionEvent{SessionUuid: s})},
		}))
	}
}

// stops reads events until n StopSessionEvents with the prefix arrived and returns their
// sessions, checking positions are set and increase.
func stops(t *testing.T, conn *client.Conn, prefix string, n int) []string {
	t.Helper()
	var out []string
	deadline := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-conn.Events():
			require.True(t, ok, "events closed: %v", conn.Err())
			require.Nil(t, ev.ResumeFailed, "unexpected ResumeFailed")
			for _, m := range ev.Messages {
				if s, ok := m.(*opentera.StopSessionEvent); ok && strings.HasPrefix(s.GetSessionUuid(), prefix) {
					require.NotEmpty(t, ev.Position)
					out = append(out, s.GetSessionUuid())
				}
			}
		case <-deadline:
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

// TestResumeAfterDrop: with WithResume, the events published while the network was cut arrive
// after the reconnection, once each and in order, in JSON and in binary frames.
func TestResumeAfterDrop(t *testing.T) {
	for _, f := range []client.Format{client.FormatJSON, client.FormatProto} {
		t.Run(fmt.Sprint(f), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			gw := gatewaytest.Start(t, func(c *gateway.Config) { c.PublicHost = ln.Addr().String() })
			px := startProxy(t, ln, gw.Addr().String())
			ctx := context.Background()
			svc, err := client.New(gw.URL(), client.WithToken(serviceToken))
			require.NoError(t, err)
			disconnected := make(chan struct{}, 4)
			c, err := client.Login(ctx, px.URL(), client.KindUser, client.Basic("alice", "alice-demo"),
				client.WithResume(), client.WithFormat(f), client.WithBackoff(200*time.Millisecond, time.Second),
				client.WithStateHook(func(s client.State, _ error) {
					if s == client.StateDisconnected {
						disconnected <- struct{}{}
					}
				}))
			require.NoError(t, err)
			conn, err := c.Dial(ctx)
			require.NoError(t, err)
			defer conn.Close()
			nextOf(t, conn, userEvent(aliceUUID, opentera.UserEvent_USER_CONNECTED))
			publishStops(t, svc, "a-0", "a-1")
			require.Equal(t, []string{"a-0", "a-1"}, stops(t, conn, "a-", 2))
			require.NotEmpty(t, conn.Position())

			px.cut()
			<-disconnected
			publishStops(t, svc, "a-2", "a-3", "a-4") // while alice has no socket (backoff ≥ 100 ms)
			require.Equal(t, []string{"a-2", "a-3", "a-4"}, stops(t, conn, "a-", 3))
			publishStops(t, svc, "a-5")
			require.Equal(t, []string{"a-5"}, stops(t, conn, "a-", 1))
		})
	}
}

// TestResumeFailedSurfaced: a position the gateway does not know gives an event with
// ResumeFailed first; the live events follow.
func TestResumeFailedSurfaced(t *testing.T) {
	gw := startGateway(t)
	ctx := context.Background()
	c, err := client.Login(ctx, gw.URL(), client.KindUser, client.Basic("alice", "alice-demo"), client.WithResumeFrom("zz0-12"))
	require.NoError(t, err)
	conn, err := c.Dial(ctx)
	require.NoError(t, err)
	defer conn.Close()
	select {
	case ev := <-conn.Events():
		require.NotNil(t, ev.ResumeFailed)
		require.Equal(t, "unknown", ev.ResumeFailed.GetReason())
		require.IsType(t, &teragatev1.ResumeFailed{}, ev.Messages[0])
		require.NotEmpty(t, ev.ResumeFailed.GetPosition(), "where the stream continues from")
	case <-time.After(10 * time.Second):
		t.Fatal("no ResumeFailed")
	}
	_, err = client.Login(ctx, gw.URL(), client.KindUser, client.Basic("alice", "alice-demo"), client.WithResumeFrom("a&b"))
	require.Error(t, err)
}
