package filter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

type sessions map[string][]string // session → uuids

func (s sessions) InSession(_ directory.Kind, uuid, session string) bool {
	for _, u := range s[session] {
		if u == uuid {
			return true
		}
	}
	return false
}

const (
	admin  = directory.DemoAdminUUID
	alice  = directory.DemoAliceUUID
	bob    = directory.DemoBobUUID
	pat    = directory.DemoPatUUID
	paula  = directory.DemoPaulaUUID
	robot1 = directory.DemoRobot1UUID
	robot2 = directory.DemoRobot2UUID
)

// TestNativeTable checks OpenTera's table (docs/opentera.md) on the demo directory:
// for each event and each kind, exactly who receives it.
func TestNativeTable(t *testing.T) {
	snap := directory.Demo()
	f := &Native{Sessions: sessions{"s1": {alice, pat, robot1}}}
	all := map[directory.Kind][]string{
		directory.KindUser:        {admin, alice, bob},
		directory.KindParticipant: {pat, paula},
		directory.KindDevice:      {robot1, robot2},
	}
	tests := []struct {
		name string
		ev   proto.Message
		want map[directory.Kind][]string
	}{
		{"user event about alice", &opentera.UserEvent{UserUuid: alice}, map[directory.Kind][]string{directory.KindUser: {admin, alice}}},
		{"user event about bob", &opentera.UserEvent{UserUuid: bob}, map[directory.Kind][]string{directory.KindUser: {admin, bob}}},
		{"participant pat", &opentera.ParticipantEvent{ParticipantUuid: pat}, map[directory.Kind][]string{directory.KindUser: {admin, alice}, directory.KindParticipant: {pat}, directory.KindDevice: {robot1}}},
		{"participant paula", &opentera.ParticipantEvent{ParticipantUuid: paula}, map[directory.Kind][]string{directory.KindUser: {admin, bob}, directory.KindParticipant: {paula}, directory.KindDevice: {robot2}}},
		{"device robot1", &opentera.DeviceEvent{DeviceUuid: robot1}, map[directory.Kind][]string{directory.KindUser: {admin, alice}, directory.KindParticipant: {pat}, directory.KindDevice: {robot1}}},
		{"unknown participant", &opentera.ParticipantEvent{ParticipantUuid: "nobody"}, nil},
		{"join lists", &opentera.JoinSessionEvent{SessionUuid: "s9", SessionUsers: []string{bob}, SessionParticipants: []string{paula}, SessionDevices: []string{robot1}},
			map[directory.Kind][]string{directory.KindUser: {bob}, directory.KindParticipant: {paula}, directory.KindDevice: {robot1}}},
		{"leave: in session", &opentera.LeaveSessionEvent{SessionUuid: "s1"}, map[directory.Kind][]string{directory.KindUser: {alice}, directory.KindParticipant: {pat}, directory.KindDevice: {robot1}}},
		{"leave: empty session", &opentera.LeaveSessionEvent{}, nil},
		{"reply: not to the replier", &opentera.JoinSessionReplyEvent{SessionUuid: "s1", ParticipantUuid: pat},
			map[directory.Kind][]string{directory.KindUser: {alice}, directory.KindDevice: {robot1}}},
		{"stop: everyone", &opentera.StopSessionEvent{SessionUuid: "x"}, all},
		{"archive: owner", &opentera.ArchiveEvent{OwnerUuid: robot2}, map[directory.Kind][]string{directory.KindDevice: {robot2}}},
		{"database: nobody", &opentera.DatabaseEvent{ObjectType: "user"}, nil},
		{"log: nobody", &opentera.LogEvent{Message: "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := opentera.NewAny(tt.ev)
			require.NoError(t, err)
			ev := DecodeEvent("topic", a)
			for kind, uuids := range all {
				rs := make([]Recipient, len(uuids))
				for i, u := range uuids {
					acc, ok := snap.Principal(kind, u)
					require.True(t, ok)
					rs[i] = Recipient{Kind: kind, UUID: u, Access: acc}
				}
				out := make([]Decision, len(rs))
				require.NoError(t, f.Decide(context.Background(), ev, kind, rs, out))
				var got []string
				for i, d := range out {
					if d.Verdict == Keep {
						got = append(got, rs[i].UUID)
					}
				}
				require.Equal(t, tt.want[kind], got, "kind %s", kind)
			}
		})
	}
	require.ErrorIs(t, f.Decide(context.Background(), &Event{}, directory.KindUser, make([]Recipient, 2), make([]Decision, 1)), ErrLengthMismatch)
}

func TestDecodeEventUnknownType(t *testing.T) {
	ev := DecodeEvent("t", nil)
	require.Nil(t, ev.Msg)
	a, _ := opentera.NewAny(&opentera.UserEvent{})
	a.Value = []byte{0xff}
	require.Nil(t, DecodeEvent("t", a).Msg, "undecodable payloads have no message")
	require.Equal(t, "UserEvent", DecodeEvent("t", a).Name())
}

// BenchmarkNativeFilter is the baseline for plugin filters: one ParticipantEvent, a batch of user
// recipients.
func BenchmarkNativeFilter(b *testing.B) {
	snap := directory.Demo()
	a, _ := opentera.NewAny(&opentera.ParticipantEvent{ParticipantUuid: pat})
	ev := DecodeEvent("t", a)
	f := &Native{}
	for _, n := range []int{1, 100, 1000} {
		b.Run(map[int]string{1: "batch=1", 100: "batch=100", 1000: "batch=1000"}[n], func(b *testing.B) {
			rs := make([]Recipient, n)
			for i := range rs {
				u := []string{admin, alice, bob}[i%3]
				acc, _ := snap.Principal(directory.KindUser, u)
				rs[i] = Recipient{Kind: directory.KindUser, UUID: u, Access: acc}
			}
			out := make([]Decision, n)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = f.Decide(context.Background(), ev, directory.KindUser, rs, out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
		})
	}
}
