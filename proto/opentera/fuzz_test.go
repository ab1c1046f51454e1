package opentera_test

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/proto/opentera"
)

// FuzzTeraEventDecode feeds arbitrary bytes (as received from Redis) to the
// TeraEvent decoder. Whatever decodes must re-marshal, decode again and
// JSON-encode (the websocket path) without panicking.
//
//	go test -run='^$' -fuzz=FuzzTeraEventDecode ./proto/opentera
func FuzzTeraEventDecode(f *testing.F) {
	seeds := []*opentera.TeraEvent{
		{
			Header: &opentera.TeraEvent_Header{Version: 1, Time: 1732145425.5, Topic: "module.TeraServer.UserManagerModule.events"},
			Events: []*anypb.Any{mustAny(f, &opentera.UserEvent{
				UserUuid: "u-1", Type: opentera.UserEvent_USER_CONNECTED, UserFullname: "Super Admin",
			})},
		},
		{
			Header: &opentera.TeraEvent_Header{Version: 1, Time: 2, Topic: "websocket.user.u-1.events"},
			Events: []*anypb.Any{
				mustAny(f, &opentera.JoinSessionEvent{SessionUuid: "s-1", SessionUsers: []string{"u-1"}, SessionDevices: []string{"d-1"}}),
				mustAny(f, &opentera.DeviceEvent{DeviceUuid: "d-1", Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: "{}"}),
			},
		},
		{},
	}
	for _, s := range seeds {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// An unknown Any type and a truncated frame.
	f.Add([]byte("\x12\x0a\x0a\x08foo/bar."))
	f.Add([]byte("\x0a\x05\x08\x01\x11"))

	f.Fuzz(func(t *testing.T, data []byte) {
		ev := &opentera.TeraEvent{}
		if err := proto.Unmarshal(data, ev); err != nil {
			return
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			t.Fatalf("re-marshal of a decoded TeraEvent failed: %v", err)
		}
		again := &opentera.TeraEvent{}
		if err := proto.Unmarshal(b, again); err != nil {
			t.Fatalf("decode of a re-marshalled TeraEvent failed: %v", err)
		}
		if !proto.Equal(ev, again) {
			t.Fatalf("round trip changed the message:\n%v\n%v", ev, again)
		}
		// The JSON encoding may legitimately fail (unknown or corrupt Any
		// payloads, invalid UTF-8); it must just not panic.
		_, _ = protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(&opentera.TeraMessage{Message: mustAny(t, ev)})
		_, _ = protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(ev)
	})
}
