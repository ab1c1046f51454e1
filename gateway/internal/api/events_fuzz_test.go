package api

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/proto/opentera"
)

// FuzzDecodeTeraEvent feeds arbitrary bodies to the POST /api/events decoder in both content
// types: it must never panic, and whatever it accepts must re-encode and carry a topic and events.
func FuzzDecodeTeraEvent(f *testing.F) {
	f.Add("application/json", []byte(`{"header":{"topic":"module.TeraServer.UserManagerModule.events"},"events":[{"@type":"type.googleapis.com/opentera.protobuf.StopSessionEvent","sessionUuid":"x"}]}`))
	f.Add("application/json", []byte(`{"header":{}}`))
	a, _ := opentera.NewAny(&opentera.UserEvent{UserUuid: "u"})
	b, _ := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Topic: "t"}, Events: []*anypb.Any{a}})
	f.Add(ContentTypeProtobuf, b)
	f.Add("text/plain; charset=", []byte("x"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		te, err := DecodeTeraEvent(ct, body)
		if err != nil {
			return
		}
		if te.GetHeader().GetTopic() == "" || len(te.Events) == 0 {
			t.Fatalf("accepted an event without topic or events: %v", te)
		}
		if _, err := proto.Marshal(te); err != nil {
			t.Fatalf("accepted an event that does not re-encode: %v", err)
		}
	})
}
