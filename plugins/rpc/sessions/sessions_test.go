package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/pdktest"
)

func TestInit(t *testing.T) {
	h := pdktest.New(t)
	require.Equal(t, "sessions", h.Info.GetRpcModule())
	require.Equal(t, []string{"busy", "invite"}, h.Info.GetRpcMethods())
	require.Empty(t, h.Info.GetFilterKinds())
}

// TestInviteBusyAndFree: a busy invitee gets no invitation and a REPLY_BUSY is published for it;
// a free one receives the JoinSessionEvent on its own topic (OpenTera issue #267).
func TestInviteBusyAndFree(t *testing.T) {
	h := pdktest.New(t)
	h.Presence.SetBusy(pdk.KindParticipant, "pat", "s-old").SetOnline(pdk.KindParticipant, "paula", true)
	h.Presence.SetBusy(pdk.KindUser, "alice", "s-new") // already in this session: still invited

	got, err := h.Call("invite", `{"sessionUuid": "s-new", "sessionUrl": "https://rtc/s-new", "sessionCreatorName": "Alice",
		"sessionUsers": ["alice"], "sessionParticipants": ["pat", "paula"]}`)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"forwarded": []any{"alice", "paula"}, "busy": map[string]any{"pat": "s-old"}}, got)

	pub := h.Published()
	require.Len(t, pub, 3)
	require.Equal(t, DefaultReplyTopic, pub[0].Topic)
	m, err := pub[0].Events[0].Message()
	require.NoError(t, err)
	reply := m.(*opentera.JoinSessionReplyEvent)
	require.Equal(t, "s-new", reply.GetSessionUuid())
	require.Equal(t, "pat", reply.GetParticipantUuid())
	require.Equal(t, opentera.JoinSessionReplyEvent_REPLY_BUSY, reply.GetJoinReply())

	require.Equal(t, "websocket.user.alice.events", pub[1].Topic)
	require.Equal(t, "websocket.participant.paula.events", pub[2].Topic)
	m, err = pub[2].Events[0].Message()
	require.NoError(t, err)
	join := m.(*opentera.JoinSessionEvent)
	require.Equal(t, "s-new", join.GetSessionUuid())
	require.Equal(t, "https://rtc/s-new", join.GetSessionUrl())
	require.Equal(t, []string{"paula"}, join.GetSessionParticipants(), "busy invitees are left out of the roster")
	require.Equal(t, []string{"alice"}, join.GetSessionUsers())
	require.Len(t, h.Logs(), 1)
}

func TestInviteArguments(t *testing.T) {
	tests := []struct {
		name    string
		args    []any
		config  string
		want    any
		topic   string
		wantErr string
	}{
		{"object argument, snake_case, reply topic", []any{map[string]any{"session_uuid": "s", "session_devices": []any{"d"}, "replyTo": "service.X.events"}},
			"", map[string]any{"forwarded": []any{}, "busy": map[string]any{"d": "s-other"}}, "service.X.events", ""},
		{"configured reply topic, comma list", []any{`{"sessionUuid": "s", "sessionDevices": "d,e"}`},
			`{"reply_topic": "service.Y.events"}`, map[string]any{"forwarded": []any{"e"}, "busy": map[string]any{"d": "s-other"}}, "service.Y.events", ""},
		{"no session", []any{`{"sessionUsers": ["a"]}`}, "", nil, "", "sessionUuid"},
		{"not json", []any{`{`}, "", nil, "", "invalid json"},
		{"no argument", nil, "", nil, "", "JoinSessionEvent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := pdktest.New(t, pdktest.WithConfig("rpc.sessions", []byte(tt.config)))
			h.Presence.SetBusy(pdk.KindDevice, "d", "s-other")
			got, err := h.Call("invite", tt.args...)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, pdktest.ErrPlugin)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.topic, h.Published()[0].Topic)
		})
	}
}

func TestInviteHostFailure(t *testing.T) {
	h := pdktest.New(t)
	h.FailPublish = -2 // denied
	_, err := h.Call("invite", `{"sessionUuid": "s", "sessionUsers": ["a"]}`)
	require.ErrorContains(t, err, "denied")
}

func TestBusyMethod(t *testing.T) {
	h := pdktest.New(t)
	h.Presence.SetBusy(pdk.KindUser, "alice", "s-1")
	got, err := h.Call("busy", "user", "alice")
	require.NoError(t, err)
	require.Equal(t, "s-1", got)
	got, err = h.Call("busy", "user", "bob")
	require.NoError(t, err)
	require.Nil(t, got)
	_, err = h.Call("busy", "robot", "x")
	require.ErrorContains(t, err, "kind")
}

// TestCallerScope: a caller may name only the entities it may see. An invitation naming a
// stranger is refused whole (nothing published, no busy state revealed), busy() about a stranger
// is refused, and trusted callers (bus services, admins) may name anyone.
func TestCallerScope(t *testing.T) {
	alice := pdk.Caller{Kind: pdk.KindUser, UUID: "alice"}
	sees := map[pdk.Subject]map[pdk.Subject]bool{
		{Kind: pdk.KindUser, UUID: "alice"}: {{Kind: pdk.KindParticipant, UUID: "pat"}: true, {Kind: pdk.KindUser, UUID: "alice"}: true},
	}
	invite := func(users, participants string) string {
		return `{"sessionUuid": "s", "sessionUrl": "https://evil.example/", "sessionUsers": [` + users + `], "sessionParticipants": [` + participants + `]}`
	}
	tests := []struct {
		name      string
		caller    pdk.Caller
		method    string
		args      []any
		wantErr   string
		published int
	}{
		{"invite a stranger", alice, "invite", []any{invite(`"alice"`, `"paula"`)}, `participant "paula" is outside your access`, 0},
		{"invite a stranger user", alice, "invite", []any{invite(`"bob"`, `"pat"`)}, `user "bob" is outside your access`, 0},
		{"invite own project", alice, "invite", []any{invite(`"alice"`, `"pat"`)}, "", 2},
		{"busy of a stranger", alice, "busy", []any{"user", "bob"}, "outside your access", 0},
		{"busy of a visible one", alice, "busy", []any{"participant", "pat"}, "", 0},
		{"admin invites anyone", pdk.Caller{Kind: pdk.KindUser, UUID: "root", Admin: true}, "invite", []any{invite(`"bob"`, `"paula"`)}, "", 2},
		{"bus caller invites anyone", pdk.Caller{}, "invite", []any{invite(`"bob"`, `"paula"`)}, "", 2},
		{"participant names another", pdk.Caller{Kind: pdk.KindParticipant, UUID: "pat"}, "busy", []any{"user", "alice"}, "outside your access", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := pdktest.New(t)
			h.CanSee = func(viewer, subject pdk.Subject) bool { return viewer == subject || sees[viewer][subject] }
			h.Presence.SetBusy(pdk.KindUser, "bob", "s-secret")
			got, err := h.CallAs(tt.caller, tt.method, tt.args...)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "s-secret")
				require.Nil(t, got)
			} else {
				require.NoError(t, err)
			}
			require.Len(t, h.Published(), tt.published)
		})
	}
}

// TestHostEnforcesScope: even a plugin that forgets to check (here, a method that asks about
// and publishes to whatever it is given) cannot reach past its caller: the host denies it.
func TestHostEnforcesScope(t *testing.T) {
	h := pdktest.New(t, pdktest.WithRPC("careless", map[string]pdk.RPCFunc{
		"poke": func(args []any) (any, error) {
			uuid, _ := args[0].(string)
			if _, _, err := pdk.PresenceBusy(pdk.KindUser, uuid); err != nil {
				return nil, err
			}
			return nil, pdk.Publish("websocket.user."+uuid+".events", pdk.JoinSessionEvent{SessionUUID: "s"})
		},
	}))
	h.CanSee = func(viewer, subject pdk.Subject) bool { return viewer == subject }
	_, err := h.CallAs(pdk.Caller{Kind: pdk.KindUser, UUID: "alice"}, "poke", "bob")
	require.ErrorContains(t, err, "denied")
	_, err = h.CallAs(pdk.Caller{Kind: pdk.KindUser, UUID: "alice"}, "poke", "alice")
	require.NoError(t, err)
	require.Len(t, h.Published(), 1)
}
