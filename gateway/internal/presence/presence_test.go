package presence

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/proto/opentera"
)

const (
	alice  = directory.DemoAliceUUID
	bob    = directory.DemoBobUUID
	pat    = directory.DemoPatUUID
	paula  = directory.DemoPaulaUUID
	robot1 = directory.DemoRobot1UUID
	robot2 = directory.DemoRobot2UUID
)

func TestOnlineIsRefcounted(t *testing.T) {
	tr := newTestReg(t)
	tr.feed(userConn(alice, true))
	require.True(t, proto.Equal(userConn(alice, true), tr.next()))
	tr.feed(userConn(alice, true))
	tr.none() // a second socket is greeted alone (Announce), not announced to everyone again
	require.Equal(t, 2, tr.r.Connections(directory.KindUser, alice))

	tr.feed(userConn(alice, false))
	require.True(t, tr.r.Online(directory.KindUser, alice), "one socket left")
	tr.none()
	tr.feed(userConn(alice, false))
	require.False(t, tr.r.Online(directory.KindUser, alice))
	require.True(t, proto.Equal(userConn(alice, false), tr.next()))
	tr.feed(userConn(alice, false))
	tr.none()
	require.Equal(t, 0, tr.r.Connections(directory.KindUser, alice), "no negative counts")
}

func TestOnlineListKeepsConnectionOrder(t *testing.T) {
	tr := newTestReg(t)
	tr.feed(userConn("c", true), userConn("a", true), userConn("b", true), userConn("a", true))
	require.Equal(t, []string{"c", "a", "b"}, tr.r.OnlineList(directory.KindUser))
	tr.feed(userConn("c", false), userConn("a", false))
	require.Equal(t, []string{"a", "b"}, tr.r.OnlineList(directory.KindUser))
	tr.feed(userConn("c", true))
	require.Equal(t, []string{"a", "b", "c"}, tr.r.OnlineList(directory.KindUser))
	require.Equal(t, []string{}, tr.r.OnlineList(directory.KindDevice))
}

func TestBusySemantics(t *testing.T) {
	tr := newTestReg(t)
	tr.feed(partConn(pat, true))
	tr.next()
	tr.feed(&opentera.JoinSessionEvent{SessionUuid: "s1", SessionParticipants: []string{pat}, SessionUsers: []string{alice}})
	ev := tr.next().(*opentera.UserEvent)
	require.Equal(t, opentera.UserEvent_USER_JOINED_SESSION, ev.GetType())
	require.Equal(t, "Alice Demo", ev.GetUserFullname())
	pev := tr.next().(*opentera.ParticipantEvent)
	require.Equal(t, opentera.ParticipantEvent_PARTICIPANT_JOINED_SESSION, pev.GetType())
	require.Equal(t, []string{"Pat Demo", "Rehab", "Montreal"}, []string{pev.GetParticipantName(), pev.GetParticipantProjectName(), pev.GetParticipantSiteName()})

	// First session wins.
	tr.feed(&opentera.JoinSessionEvent{SessionUuid: "s2", SessionParticipants: []string{pat}})
	tr.next()
	s, ok := tr.r.Busy(directory.KindParticipant, pat)
	require.True(t, ok)
	require.Equal(t, "s1", s)

	// Busy survives going offline.
	tr.feed(partConn(pat, false))
	tr.next()
	s, ok = tr.r.Busy(directory.KindParticipant, pat)
	require.True(t, ok, "busy is kept while offline, as in OpenTera")
	require.Equal(t, "s1", s)
	require.Equal(t, StatusList{Entries: []StatusEntry{{UUID: pat, Busy: true}}}, tr.r.StatusList(directory.KindParticipant, nil))

	// Leave for another session does not clear it; for the right one it does.
	tr.feed(&opentera.LeaveSessionEvent{SessionUuid: "s2", LeavingParticipants: []string{pat}})
	tr.next()
	_, ok = tr.r.Busy(directory.KindParticipant, pat)
	require.True(t, ok)
	tr.feed(&opentera.LeaveSessionEvent{SessionUuid: "s1", LeavingParticipants: []string{pat}})
	require.Equal(t, opentera.ParticipantEvent_PARTICIPANT_LEFT_SESSION, tr.next().(*opentera.ParticipantEvent).GetType())
	_, ok = tr.r.Busy(directory.KindParticipant, pat)
	require.False(t, ok)

	// Stop clears everyone busy in the session; a refused invitation clears the invitee.
	tr.feed(&opentera.JoinSessionEvent{SessionUuid: "s3", SessionUsers: []string{bob}, SessionDevices: []string{robot1}})
	tr.next()
	tr.next()
	tr.feed(&opentera.JoinSessionReplyEvent{SessionUuid: "s3", DeviceUuid: robot1, JoinReply: opentera.JoinSessionReplyEvent_REPLY_DENIED})
	require.Equal(t, opentera.DeviceEvent_DEVICE_LEFT_SESSION, tr.next().(*opentera.DeviceEvent).GetType())
	tr.feed(&opentera.StopSessionEvent{SessionUuid: "s3"})
	ev = tr.next().(*opentera.UserEvent)
	require.Equal(t, opentera.UserEvent_USER_LEFT_SESSION, ev.GetType())
	require.Equal(t, bob, ev.GetUserUuid())
	tr.none()
	require.Equal(t, BusyList{{alice, "s1"}}, tr.r.BusyList(directory.KindUser, nil), "only alice (s1) is still busy")
	require.False(t, tr.r.InSession(directory.KindUser, bob, "s3"))
	require.True(t, tr.r.InSession(directory.KindUser, alice, "s1"))
}

func TestDeviceStatus(t *testing.T) {
	tr := newTestReg(t)
	ctx := context.Background()

	_, res := tr.r.UpdateDeviceStatus(ctx, robot1, `{"battery": 10}`, rpc.Int(100))
	require.Equal(t, StatusOffline, res, "an offline device cannot set a status")
	tr.none()

	tr.feed(devConn(robot1, true))
	tr.next()
	ds, res := tr.r.UpdateDeviceStatus(ctx, robot1, `{"battery": 10.4}`, rpc.Float(1732145425.5))
	require.Equal(t, StatusUpdated, res)
	require.Equal(t, DeviceStatus{`{"battery": 10.4}`, rpc.Float(1732145425.5)}, ds)
	ev := tr.next().(*opentera.DeviceEvent)
	require.Equal(t, opentera.DeviceEvent_DEVICE_STATUS_CHANGED, ev.GetType())
	require.Equal(t, "robot1", ev.GetDeviceName())
	require.Equal(t, `{"status": "{\"battery\": 10.4}", "timestamp": 1732145425.5}`, ev.GetDeviceStatus(), "double-encoded as OpenTera")

	// Older timestamps are ignored (int against float compares numerically); equal is accepted.
	ds, res = tr.r.UpdateDeviceStatus(ctx, robot1, `{"battery": 1}`, rpc.Int(1732145425))
	require.Equal(t, StatusStale, res)
	require.Equal(t, rpc.Float(1732145425.5), ds.Timestamp, "the kept status is returned")
	tr.none()
	_, res = tr.r.UpdateDeviceStatus(ctx, robot1, `{"battery": 9}`, rpc.Float(1732145425.5))
	require.Equal(t, StatusUpdated, res)
	tr.next()
	_, res = tr.r.UpdateDeviceStatus(ctx, robot1, `{"battery": 8}`, rpc.Int(1732145426))
	require.Equal(t, StatusUpdated, res)
	ev = tr.next().(*opentera.DeviceEvent)
	require.Equal(t, `{"status": "{\"battery\": 8}", "timestamp": 1732145426}`, ev.GetDeviceStatus(), "an int stays an int")

	// Going offline clears the status; a new connection starts without one.
	tr.feed(devConn(robot1, false))
	tr.next()
	_, ok := tr.r.DeviceStatus(robot1)
	require.False(t, ok)
	tr.feed(devConn(robot1, true))
	tr.next()
	_, ok = tr.r.DeviceStatus(robot1)
	require.False(t, ok)
	_, res = tr.r.UpdateDeviceStatus(ctx, robot1, `{}`, rpc.Int(1))
	require.Equal(t, StatusUpdated, res, "an old timestamp is fine after the status was cleared")
}

func TestHammerRegistry(t *testing.T) {
	tr := newTestReg(t)
	go func() {
		for range tr.events {
		}
	}()
	n := 300
	if testing.Short() {
		n = 50
	}
	done := make(chan struct{})
	for w := 0; w < 4; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < n; i++ {
				tr.r.StatusList(directory.KindDevice, nil)
				tr.r.OnlineList(directory.KindUser)
				tr.r.UpdateDeviceStatus(context.Background(), robot1, "{}", rpc.Int(int64(i)))
			}
		}()
	}
	for i := 0; i < n; i++ {
		tr.feed(userConn(alice, true), devConn(robot1, true), &opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: []string{alice}})
		tr.feed(userConn(alice, false), devConn(robot1, false), &opentera.StopSessionEvent{SessionUuid: "s"})
	}
	for w := 0; w < 4; w++ {
		<-done
	}
	require.False(t, tr.r.Online(directory.KindUser, alice))
	require.Empty(t, tr.r.BusyList(directory.KindUser, nil))
}
