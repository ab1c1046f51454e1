package gateway_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/proto/opentera"
)

// strictFrame decodes one frame the way a strict OpenTera client would: JSON with protojson's
// default options (an unknown field is an error), binary with no unknown field anywhere, and the
// TeraEvent inside with every event of a known type. It returns the event type names.
func strictFrame(t *testing.T, mt int, data []byte) []string {
	t.Helper()
	var tm opentera.TeraMessage
	if mt == websocket.TextMessage {
		require.NoError(t, protojson.Unmarshal(data, &tm), "strict JSON decode of %s", data)
	} else {
		require.NoError(t, proto.Unmarshal(data, &tm))
		require.Empty(t, tm.ProtoReflect().GetUnknown(), "unknown fields in the TeraMessage")
	}
	var te opentera.TeraEvent
	require.NoError(t, tm.GetMessage().UnmarshalTo(&te))
	require.Empty(t, te.ProtoReflect().GetUnknown())
	require.NotEmpty(t, te.GetHeader().GetTopic())
	var names []string
	for _, a := range te.GetEvents() {
		m, err := a.UnmarshalNew()
		require.NoError(t, err)
		require.Empty(t, m.ProtoReflect().GetUnknown(), "unknown fields in %s", a.GetTypeUrl())
		names = append(names, string(m.ProtoReflect().Descriptor().Name()))
	}
	return names
}

// TestFramesStrict: every kind of event frame the gateway sends — the greeting, presence events
// of each kind (connected, status changed, joined and left a session), session invitations,
// replies, leaves, stops and archive notices — decodes with a strict protobuf parser in JSON and in
// format=proto.
func TestFramesStrict(t *testing.T) {
	for _, format := range []string{"json", "proto"} {
		t.Run(format, func(t *testing.T) {
			e := startGateway(t, nil)
			url := e.wsURL(directory.KindUser, "admin:admin-demo")
			if format == "proto" {
				url += "&format=proto"
			}
			ws := e.dial(url).ws
			read := func() []string {
				_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				mt, data, err := ws.ReadMessage()
				require.NoError(t, err)
				return strictFrame(t, mt, data)
			}
			require.Equal(t, []string{"UserEvent"}, read(), "the greeting")
			e.connect(directory.KindParticipant, "pat:pat-demo")
			require.Equal(t, []string{"ParticipantEvent"}, read())
			e.connect(directory.KindDevice, demoToken(directory.KindDevice, robot1))
			require.Equal(t, []string{"DeviceEvent"}, read())
			e.rpcCall(serviceToken, presence.Module, `{"method": "update_device_status", "args": ["`+robot1+`", "{\"battery\": 1}", 5]}`)
			require.Equal(t, []string{"DeviceEvent"}, read(), "DEVICE_STATUS_CHANGED")
			e.moduleMessage(&opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: []string{directory.DemoAdminUUID}, SessionParticipants: []string{pat}})
			require.Equal(t, []string{"UserEvent"}, read(), "USER_JOINED_SESSION")
			require.Equal(t, []string{"ParticipantEvent"}, read(), "PARTICIPANT_JOINED_SESSION")
			for _, m := range []proto.Message{
				&opentera.JoinSessionEvent{SessionUuid: "s2", SessionUsers: []string{directory.DemoAdminUUID}, SessionUrl: "https://x"},
				&opentera.JoinSessionReplyEvent{SessionUuid: "s", ParticipantUuid: pat, JoinReply: opentera.JoinSessionReplyEvent_REPLY_BUSY},
				&opentera.LeaveSessionEvent{SessionUuid: "s", LeavingParticipants: []string{pat}},
				&opentera.ArchiveEvent{ArchiveUuid: "a", OwnerUuid: directory.DemoAdminUUID, ArchiveUrl: "https://x/a"},
				&opentera.StopSessionEvent{SessionUuid: "s"},
			} {
				e.publish(umEvents, m)
				require.Equal(t, []string{string(m.ProtoReflect().Descriptor().Name())}, read())
			}
		})
	}
}
