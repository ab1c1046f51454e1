package openterafilter_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/plugins/openterafilter"
	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/pdktest"
)

// The demo directory's shape (gateway/internal/directory/demo.yaml), with short uuids.
const (
	admin, alice, bob = "admin", "alice", "bob"
	pat, paula        = "pat", "paula"
	robot1, robot2    = "robot1", "robot2"
	topic             = "module.TeraServer.UserManagerModule.events"
)

func demo(t *testing.T) *pdktest.Harness {
	t.Helper()
	h := pdktest.New(t, pdktest.WithFilter(openterafilter.Rule))
	h.Directory.AddProject("p1", "s1").AddProject("p2", "s1").AddProject("p3", "s2").
		AddUser(admin, true).AddUser(alice, false, "p1").AddUser(bob, false, "p3").
		AddParticipant(pat, "p1").AddParticipant(paula, "p3").
		AddDevice(robot1, []string{"s1"}, pat).AddDevice(robot2, []string{"s2"}, paula)
	h.Presence.Join("s-1", pdk.KindUser, alice, bob).Join("s-1", pdk.KindParticipant, pat).Join("s-1", pdk.KindDevice, robot1)
	return h
}

var everyone = map[pdk.Kind][]pdktest.Recipient{
	pdk.KindUser:        {{UUID: admin}, {UUID: alice}, {UUID: bob}},
	pdk.KindParticipant: {{UUID: pat}, {UUID: paula}},
	pdk.KindDevice:      {{UUID: robot1}, {UUID: robot2}},
}

// TestTable checks the OpenTera table (docs/opentera.md) on the demo directory.
func TestTable(t *testing.T) {
	tests := []struct {
		name                        string
		ev                          proto.Message
		wantUser, wantPart, wantDev []string
	}{
		{"user event", &opentera.UserEvent{UserUuid: alice, Type: opentera.UserEvent_USER_CONNECTED},
			[]string{admin, alice}, []string{}, []string{}},
		{"user event of unknown user", &opentera.UserEvent{UserUuid: "ghost"},
			[]string{}, []string{}, []string{}},
		{"participant event", &opentera.ParticipantEvent{ParticipantUuid: pat},
			[]string{admin, alice}, []string{pat}, []string{robot1}},
		{"participant event p3", &opentera.ParticipantEvent{ParticipantUuid: paula},
			[]string{admin, bob}, []string{paula}, []string{robot2}},
		{"device event", &opentera.DeviceEvent{DeviceUuid: robot2, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED},
			[]string{admin, bob}, []string{paula}, []string{robot2}},
		{"device event without uuid", &opentera.DeviceEvent{},
			[]string{}, []string{}, []string{}},
		{"join session", &opentera.JoinSessionEvent{SessionUuid: "s-2", SessionUsers: []string{bob}, SessionParticipants: []string{pat, paula}},
			[]string{bob}, []string{pat, paula}, []string{}},
		{"join session, nobody invited", &opentera.JoinSessionEvent{SessionUuid: "s-2"},
			[]string{}, []string{}, []string{}},
		{"leave session", &opentera.LeaveSessionEvent{SessionUuid: "s-1"},
			[]string{alice, bob}, []string{pat}, []string{robot1}},
		{"leave session without uuid", &opentera.LeaveSessionEvent{},
			[]string{}, []string{}, []string{}},
		{"join reply from alice", &opentera.JoinSessionReplyEvent{SessionUuid: "s-1", UserUuid: alice, JoinReply: opentera.JoinSessionReplyEvent_REPLY_ACCEPTED},
			[]string{bob}, []string{pat}, []string{robot1}},
		{"join reply from pat", &opentera.JoinSessionReplyEvent{SessionUuid: "s-1", ParticipantUuid: pat},
			[]string{alice, bob}, []string{}, []string{robot1}},
		{"stop session", &opentera.StopSessionEvent{SessionUuid: "anything"},
			[]string{admin, alice, bob}, []string{pat, paula}, []string{robot1, robot2}},
		{"archive", &opentera.ArchiveEvent{OwnerUuid: bob},
			[]string{bob}, []string{}, []string{}},
		{"database event", &opentera.DatabaseEvent{Type: opentera.DatabaseEvent_DB_CREATE},
			[]string{}, []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := demo(t)
			require.Equal(t, tt.wantUser, h.Who(t, pdk.KindUser, topic, tt.ev, everyone[pdk.KindUser]...), "user")
			require.Equal(t, tt.wantPart, h.Who(t, pdk.KindParticipant, topic, tt.ev, everyone[pdk.KindParticipant]...), "participant")
			require.Equal(t, tt.wantDev, h.Who(t, pdk.KindDevice, topic, tt.ev, everyone[pdk.KindDevice]...), "device")
		})
	}
}

// TestCacheable checks that every rule is cacheable (they are pure functions of the event's type and
// subject).
func TestCacheable(t *testing.T) {
	tests := []struct {
		name string
		kind pdk.Kind
		ev   proto.Message
		want bool
	}{
		{"stop session", pdk.KindUser, &opentera.StopSessionEvent{}, true},
		{"database", pdk.KindDevice, &opentera.DatabaseEvent{}, true},
		{"user event to participants", pdk.KindParticipant, &opentera.UserEvent{UserUuid: alice}, true},
		{"user event to users", pdk.KindUser, &opentera.UserEvent{UserUuid: alice}, true},
		{"device event", pdk.KindUser, &opentera.DeviceEvent{DeviceUuid: robot1}, true},
		{"join", pdk.KindUser, &opentera.JoinSessionEvent{SessionUsers: []string{alice}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := demo(t)
			rule, err := h.Rule(tt.kind, topic, tt.ev)
			require.NoError(t, err)
			require.NotNil(t, rule)
			require.Equal(t, tt.want, rule.GetCacheable())
		})
	}
}
