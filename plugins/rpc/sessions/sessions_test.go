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
