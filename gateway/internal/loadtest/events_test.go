package loadtest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/proto/opentera"
)

func TestEncodeAndParseFrames(t *testing.T) {
	dir, err := GenerateDirectory(GenerateOptions{Users: 1, Participants: 3, Projects: 2})
	require.NoError(t, err)
	const ts = 1732145425.123456
	tests := []struct {
		name     string
		kind     EventKind
		format   Format
		wantType string
	}{
		{name: "stop json", kind: EventStop, format: FormatJSON, wantType: "type.googleapis.com/opentera.protobuf.StopSessionEvent"},
		{name: "stop proto", kind: EventStop, format: FormatProto, wantType: "type.googleapis.com/opentera.protobuf.StopSessionEvent"},
		{name: "participant json", kind: EventParticipant, format: FormatJSON, wantType: "type.googleapis.com/opentera.protobuf.ParticipantEvent"},
		{name: "participant proto", kind: EventParticipant, format: FormatProto, wantType: "type.googleapis.com/opentera.protobuf.ParticipantEvent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newEventBuilder(tt.kind, dir)
			ev, err := b.build(7, 1, ts)
			require.NoError(t, err)
			frame, err := encodeFrame(ev, tt.format)
			require.NoError(t, err)

			got, ours, ok := parseFrame(frame, tt.format == FormatProto)
			require.True(t, ok)
			require.True(t, ours)
			require.Equal(t, ts, got)

			// The frame decodes as a TeraMessage wrapping the event.
			msg := &opentera.TeraMessage{}
			if tt.format == FormatProto {
				require.NoError(t, proto.Unmarshal(frame, msg))
			} else {
				require.NoError(t, protojson.Unmarshal(frame, msg))
				// OpenTera's shape: every default emitted, enum names.
				var raw map[string]map[string]any
				require.NoError(t, json.Unmarshal(frame, &raw))
				require.Equal(t, "type.googleapis.com/opentera.protobuf.TeraEvent", raw["message"]["@type"])
				evs := raw["message"]["events"].([]any)
				require.Len(t, evs, 1)
				if tt.kind == EventParticipant {
					e := evs[0].(map[string]any)
					require.Equal(t, "PARTICIPANT_UNKNOWN", e["type"])
					require.Equal(t, dir.Participants[1].UUID, e["participantUuid"])
					require.Equal(t, "Project 1", e["participantProjectName"])
					require.Equal(t, "Site 1", e["participantSiteName"])
				}
			}
			inner := &opentera.TeraEvent{}
			require.NoError(t, msg.GetMessage().UnmarshalTo(inner))
			require.Equal(t, UserManagerTopic, inner.GetHeader().GetTopic())
			require.Equal(t, uint32(1), inner.GetHeader().GetVersion())
			require.Equal(t, tt.wantType, inner.GetEvents()[0].GetTypeUrl())
		})
	}
}

func TestParseFrameNotOurs(t *testing.T) {
	ev := &opentera.UserEvent{UserUuid: "u-1", Type: opentera.UserEvent_USER_CONNECTED, UserFullname: "Alice"}
	a, err := opentera.NewAny(ev)
	require.NoError(t, err)
	te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 12.5, Topic: UserManagerTopic}, Events: []*anypb.Any{a}}
	frame, err := encodeFrame(te, FormatJSON)
	require.NoError(t, err)
	tm, ours, ok := parseFrame(frame, false)
	require.False(t, ours)
	require.True(t, ok)
	require.Equal(t, 12.5, tm)
}

func TestJSONFrameTime(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   float64
		wantOK bool
	}{
		{name: "compact", in: `{"header":{"version":1,"time":1732145425.5,"topic":"x"}}`, want: 1732145425.5, wantOK: true},
		{name: "spaces", in: `{"time" :  17.25 , "x":1}`, want: 17.25, wantOK: true},
		{name: "exponent", in: `{"time":1.5e+09}`, want: 1.5e9, wantOK: true},
		{name: "missing", in: `{"header":{}}`},
		{name: "not a number", in: `{"time":"soon"}`},
		{name: "truncated", in: `{"time"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jsonFrameTime([]byte(tt.in))
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestProtoFrameTimeGarbage(t *testing.T) {
	for _, in := range [][]byte{nil, {0xff}, {0x0a, 0x05, 0x01}, {0x0a, 0x00}} {
		_, ok := protoFrameTime(in)
		require.False(t, ok)
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add([]byte(`{"message":{"header":{"time":1.5}}}`), false)
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00}, true)
	f.Fuzz(func(t *testing.T, b []byte, binary bool) {
		_, _, _ = parseFrame(b, binary)
	})
}
