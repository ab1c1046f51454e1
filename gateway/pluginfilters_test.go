package gateway_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/plugins/openterafilter"
	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/pdktest"
)

// fakeSessions is a session membership table shared by the native filter and the plugin harness.
type fakeSessions map[string][]directory.Kind

func (f fakeSessions) key(kind directory.Kind, uuid, session string) string {
	return kind.String() + "/" + uuid + "/" + session
}

func (f fakeSessions) InSession(kind directory.Kind, uuid, session string) bool {
	_, ok := f[f.key(kind, uuid, session)]
	return ok
}

// TestPluginFiltersMatchNative runs the first-party filter plugins' rules (through the pdk's byte
// boundary and pdktest's rule evaluator, with the real directory's access rule) and the native
// OpenTera table on the same events and the demo directory's recipients, and requires the same
// recipients for every (event, kind).
func TestPluginFiltersMatchNative(t *testing.T) {
	snap := directory.Demo()
	sessions := demoSessions()
	recipients := demoRecipients
	events := demoEvents()
	native := &filter.Native{Sessions: sessions}
	delivered := 0
	const topic = demoTopic

	for _, kind := range []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice} {
		t.Run(kind.String(), func(t *testing.T) {
			h := pdktest.New(t, pdktest.WithFilter(openterafilter.Rule, pdk.Kind(kind.String())))
			h.CanSee = func(viewer, subject pdk.Subject) bool {
				vk, _ := directory.ParseKind(string(viewer.Kind))
				sk, _ := directory.ParseKind(string(subject.Kind))
				return snap.CanSee(vk, viewer.UUID, sk, subject.UUID)
			}
			h.InSession = func(k pdk.Kind, uuid, session string) bool {
				dk, _ := directory.ParseKind(string(k))
				return sessions.InSession(dk, uuid, session)
			}
			var nativeRs []filter.Recipient
			var pluginRs []pdktest.Recipient
			for _, uuid := range recipients[kind] {
				a, _ := snap.Principal(kind, uuid)
				nativeRs = append(nativeRs, filter.Recipient{Kind: kind, UUID: uuid, Access: a})
				pluginRs = append(pluginRs, pdktest.Recipient{UUID: uuid, Admin: a.Admin()})
			}
			for _, m := range events {
				a, err := opentera.NewAny(m)
				require.NoError(t, err)
				ev := filter.DecodeEvent(topic, a)
				out := make([]filter.Decision, len(nativeRs))
				require.NoError(t, native.Decide(context.Background(), ev, kind, nativeRs, out))
				want := []string{}
				for i, d := range out {
					if d.Verdict == filter.Keep {
						want = append(want, nativeRs[i].UUID)
					}
				}
				got := h.Who(t, pdk.Kind(kind.String()), topic, m, pluginRs...)
				require.Equal(t, want, got, "%s %v", ev.Name(), m)
				delivered += len(got)
			}
		})
	}
	require.Greater(t, delivered, 30, "the corpus must exercise deliveries, not only drops")
}

const (
	demoTopic = "module.TeraServer.UserManagerModule.events"

	pfAdmin, pfAlice, pfBob = directory.DemoAdminUUID, directory.DemoAliceUUID, directory.DemoBobUUID
	pfPat, pfPaula          = directory.DemoPatUUID, directory.DemoPaulaUUID
	pfRobot1, pfRobot2      = directory.DemoRobot1UUID, directory.DemoRobot2UUID
	pfService               = directory.DemoServiceUUID
)

// demoSessions: admin, alice, pat and robot1 are in session s-1, paula in s-2.
func demoSessions() fakeSessions {
	sessions := fakeSessions{}
	for _, m := range []struct {
		k    directory.Kind
		uuid string
	}{{directory.KindUser, pfAlice}, {directory.KindUser, pfAdmin}, {directory.KindParticipant, pfPat}, {directory.KindDevice, pfRobot1}} {
		sessions[sessions.key(m.k, m.uuid, "s-1")] = nil
	}
	sessions[sessions.key(directory.KindParticipant, pfPaula, "s-2")] = nil
	return sessions
}

// demoRecipients are the candidate connections per kind (including unknown entities).
var demoRecipients = map[directory.Kind][]string{
	directory.KindUser:        {pfAdmin, pfAlice, pfBob, "unknown-user"},
	directory.KindParticipant: {pfPat, pfPaula, "unknown-participant"},
	directory.KindDevice:      {pfRobot1, pfRobot2, "unknown-device"},
}

// demoEvents is the corpus: every row of the table, with edge cases (empty and unknown uuids).
func demoEvents() []proto.Message {
	return []proto.Message{
		&opentera.UserEvent{UserUuid: pfAdmin}, &opentera.UserEvent{UserUuid: pfAlice}, &opentera.UserEvent{UserUuid: pfBob},
		&opentera.UserEvent{UserUuid: "nobody"}, &opentera.UserEvent{},
		&opentera.ParticipantEvent{ParticipantUuid: pfPat}, &opentera.ParticipantEvent{ParticipantUuid: pfPaula},
		&opentera.ParticipantEvent{ParticipantUuid: "nobody"}, &opentera.ParticipantEvent{},
		&opentera.DeviceEvent{DeviceUuid: pfRobot1, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED},
		&opentera.DeviceEvent{DeviceUuid: pfRobot2}, &opentera.DeviceEvent{DeviceUuid: pfService}, &opentera.DeviceEvent{},
		&opentera.JoinSessionEvent{SessionUuid: "s-1", SessionUsers: []string{pfAlice, pfBob}, SessionParticipants: []string{pfPat}, SessionDevices: []string{pfRobot2}},
		&opentera.JoinSessionEvent{SessionUuid: "s-3"},
		&opentera.JoinSessionEvent{SessionUsers: []string{""}},
		&opentera.LeaveSessionEvent{SessionUuid: "s-1"}, &opentera.LeaveSessionEvent{SessionUuid: "s-2"}, &opentera.LeaveSessionEvent{},
		&opentera.JoinSessionReplyEvent{SessionUuid: "s-1", UserUuid: pfAlice}, &opentera.JoinSessionReplyEvent{SessionUuid: "s-1", ParticipantUuid: pfPat},
		&opentera.JoinSessionReplyEvent{SessionUuid: "s-1", DeviceUuid: pfRobot1}, &opentera.JoinSessionReplyEvent{SessionUuid: "s-2"},
		&opentera.JoinSessionReplyEvent{},
		&opentera.StopSessionEvent{SessionUuid: "s-1"}, &opentera.StopSessionEvent{},
		&opentera.ArchiveEvent{OwnerUuid: pfAlice}, &opentera.ArchiveEvent{OwnerUuid: pfPat}, &opentera.ArchiveEvent{OwnerUuid: pfRobot2}, &opentera.ArchiveEvent{},
		&opentera.DatabaseEvent{Type: opentera.DatabaseEvent_DB_UPDATE, ObjectType: "user"},
		&opentera.LogEvent{Message: "not an event clients get"},
	}
}
