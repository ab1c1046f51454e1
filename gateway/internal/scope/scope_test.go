package scope_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/scope"
	"github.com/teragate/teragate/proto/opentera"
)

const (
	alice = directory.DemoAliceUUID
	bob   = directory.DemoBobUUID
	pat   = directory.DemoPatUUID
	paula = directory.DemoPaulaUUID
)

func access(t *testing.T, k directory.Kind, uuid string) directory.Access {
	a, ok := directory.Demo().Principal(k, uuid)
	require.True(t, ok)
	return a
}

func TestReaches(t *testing.T) {
	aliceScope := scope.Of(access(t, directory.KindUser, alice))
	patScope := scope.Of(access(t, directory.KindParticipant, pat))
	admin := scope.Of(access(t, directory.KindUser, directory.DemoAdminUUID))
	tests := []struct {
		name string
		s    scope.Scope
		k    directory.Kind
		uuid string
		want bool
	}{
		{"alice herself", aliceScope, directory.KindUser, alice, true},
		{"alice sees pat (p1)", aliceScope, directory.KindParticipant, pat, true},
		{"alice does not see paula (p3)", aliceScope, directory.KindParticipant, paula, false},
		{"alice does not see bob (p3)", aliceScope, directory.KindUser, bob, false},
		{"wrong kind for a uuid", aliceScope, directory.KindUser, pat, false},
		{"any kind", aliceScope, 0, pat, true},
		{"any kind, stranger", aliceScope, 0, paula, false},
		{"unknown uuid", aliceScope, directory.KindUser, "nobody", false},
		{"empty uuid", aliceScope, directory.KindUser, "", false},
		{"pat does not see alice", patScope, directory.KindUser, alice, false},
		{"pat sees robot1", patScope, directory.KindDevice, directory.DemoRobot1UUID, true},
		{"admin sees everyone", admin, directory.KindUser, bob, true},
		{"trusted sees unknown", scope.Trusted(), directory.KindUser, "nobody", true},
		{"zero access reaches nothing", scope.Of(directory.Access{}), directory.KindUser, alice, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.s.Reaches(tt.k, tt.uuid))
		})
	}
	require.True(t, admin.Trusted())
	require.False(t, aliceScope.Trusted())
}

func anyOf(t *testing.T, m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	require.NoError(t, err)
	return a
}

func TestCheckEvents(t *testing.T) {
	s := scope.Of(access(t, directory.KindUser, alice))
	tests := []struct {
		name    string
		ev      *anypb.Any
		wantErr string
	}{
		{"invitation in project", anyOf(t, &opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: []string{alice}, SessionParticipants: []string{pat}}), ""},
		{"invitation naming paula", anyOf(t, &opentera.JoinSessionEvent{SessionUuid: "s", SessionParticipants: []string{pat, paula}}), paula},
		{"reply about bob", anyOf(t, &opentera.JoinSessionReplyEvent{SessionUuid: "s", UserUuid: bob}), bob},
		{"leave naming paula", anyOf(t, &opentera.LeaveSessionEvent{SessionUuid: "s", LeavingParticipants: []string{paula}}), paula},
		{"user event about bob", anyOf(t, &opentera.UserEvent{UserUuid: bob}), bob},
		{"archive for pat", anyOf(t, &opentera.ArchiveEvent{OwnerUuid: pat}), ""},
		{"archive for paula", anyOf(t, &opentera.ArchiveEvent{OwnerUuid: paula}), paula},
		{"stop session names no one", anyOf(t, &opentera.StopSessionEvent{SessionUuid: "s"}), ""},
		{"unknown type", &anypb.Any{TypeUrl: "type.googleapis.com/x.Y"}, "cannot be checked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CheckEvents([]*anypb.Any{tt.ev})
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, scope.ErrDenied)
			require.ErrorContains(t, err, tt.wantErr)
			require.NoError(t, scope.Trusted().CheckEvents([]*anypb.Any{tt.ev}), "trusted callers are not checked")
		})
	}
}

func TestDirectTarget(t *testing.T) {
	tests := []struct {
		topic string
		want  scope.Entity
		ok    bool
	}{
		{"websocket.user.u1.events", scope.Entity{Kind: directory.KindUser, UUID: "u1"}, true},
		{"websocket.device.d.events", scope.Entity{Kind: directory.KindDevice, UUID: "d"}, true},
		{"websocket.service.s.events", scope.Entity{}, false},
		{"websocket.user.a.b.events", scope.Entity{}, false},
		{"websocket.user..events", scope.Entity{}, false},
		{"service.X.events", scope.Entity{}, false},
	}
	for _, tt := range tests {
		got, ok := scope.DirectTarget(tt.topic)
		require.Equal(t, tt.ok, ok, tt.topic)
		require.Equal(t, tt.want, got, tt.topic)
	}
}
