package loadtest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/proto/opentera"
)

// Marker is a string every bench event carries (in StopSessionEvent's
// sessionUuid, in ParticipantEvent's participantName), so clients tell bench
// events from the gateway's own presence events.
const Marker = "tgbench"

var markerBytes = []byte(Marker)

// UserManagerTopic is the topic bench events are published on; every socket
// type's filter sees it (docs/opentera.md).
const UserManagerTopic = "module.TeraServer.UserManagerModule.events"

// EventKind selects the event the bench publishes.
type EventKind string

const (
	// EventStop publishes StopSessionEvents, which every filter passes: each
	// event reaches every socket.
	EventStop EventKind = "stop"
	// EventParticipant publishes ParticipantEvents about one participant at a
	// time (cycling over all of them): each reaches the users of that
	// participant's project, the participant and its linked devices.
	EventParticipant EventKind = "participant"
)

// Format is a websocket frame format.
type Format string

const (
	// FormatJSON is OpenTera's protojson text frames (the default).
	FormatJSON Format = "json"
	// FormatProto is binary protobuf frames (`?format=proto`).
	FormatProto Format = "proto"
)

// eventBuilder makes the bench's TeraEvents.
type eventBuilder struct {
	kind        EventKind
	serviceUUID string
	dir         *Directory

	projectNames map[string][2]string // project id → {project name, site name}
}

// names returns the name of project id and of its site.
func (b *eventBuilder) names(id string) (project, site string) {
	if b.projectNames == nil {
		b.projectNames = map[string][2]string{}
		sites := map[string]string{}
		for _, s := range b.dir.Sites {
			sites[s.ID] = s.Name
		}
		for _, pr := range b.dir.Projects {
			b.projectNames[pr.ID] = [2]string{pr.Name, sites[pr.Site]}
		}
	}
	n := b.projectNames[id]
	return n[0], n[1]
}

// build returns event number seq about participant subject (ignored for
// stop events), stamped with publish time t (Unix seconds).
func (b *eventBuilder) build(seq uint64, subject int, t float64) (*opentera.TeraEvent, error) {
	var inner proto.Message
	switch b.kind {
	case EventParticipant:
		p := b.dir.Participants[subject]
		projName, siteName := b.names(p.Project)
		inner = &opentera.ParticipantEvent{
			ParticipantUuid:        p.UUID,
			Type:                   opentera.ParticipantEvent_PARTICIPANT_UNKNOWN,
			ParticipantName:        Marker,
			ParticipantProjectName: projName,
			ParticipantSiteName:    siteName,
		}
	default:
		inner = &opentera.StopSessionEvent{
			SessionUuid: Marker + "-" + strconv.FormatUint(seq, 10),
			ServiceUuid: b.serviceUUID,
		}
	}
	a, err := opentera.NewAny(inner)
	if err != nil {
		return nil, fmt.Errorf("loadtest: pack event: %w", err)
	}
	return &opentera.TeraEvent{
		Header: &opentera.TeraEvent_Header{Version: 1, Time: t, Topic: UserManagerTopic},
		Events: []*anypb.Any{a},
	}, nil
}

// encodeFrame returns the websocket frame payload the gateway sends for ev in
// format f: a TeraMessage wrapping ev, protojson with every default emitted
// (OpenTera's frame, docs/opentera.md) or binary protobuf.
func encodeFrame(ev *opentera.TeraEvent, f Format) ([]byte, error) {
	a, err := opentera.NewAny(ev)
	if err != nil {
		return nil, fmt.Errorf("loadtest: pack frame: %w", err)
	}
	msg := &opentera.TeraMessage{Message: a}
	if f == FormatProto {
		return proto.Marshal(msg)
	}
	return protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(msg)
}

// parseFrame extracts header.time from a frame and tells whether it is a
// bench event. ok is false when no time could be found.
func parseFrame(b []byte, binary bool) (t float64, ours, ok bool) {
	ours = bytes.Contains(b, markerBytes)
	if binary {
		t, ok = protoFrameTime(b)
	} else {
		t, ok = jsonFrameTime(b)
	}
	return t, ours, ok
}

var timeKey = []byte(`"time"`)

// jsonFrameTime finds `"time":<number>` in a JSON frame without decoding it.
// Only TeraEvent.Header has a field named time among the events the bench
// sends.
func jsonFrameTime(b []byte) (float64, bool) {
	i := bytes.Index(b, timeKey)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(timeKey):]
	i = 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	i++
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	j := i
	for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == '-' || b[j] == '+' || b[j] == 'e' || b[j] == 'E') {
		j++
	}
	if j == i {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(b[i:j]), 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// protoFrameTime walks TeraMessage.message (1) → Any.value (2) →
// TeraEvent.header (1) → Header.time (2, fixed64) with protowire.
func protoFrameTime(b []byte) (float64, bool) {
	for _, field := range [...]protowire.Number{1, 2, 1} {
		var ok bool
		b, ok = findBytesField(b, field)
		if !ok {
			return 0, false
		}
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == 2 && typ == protowire.Fixed64Type {
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return 0, false
			}
			return math.Float64frombits(v), true
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
	}
	return 0, false
}

// findBytesField returns the first length-delimited field number num of the
// message in b.
func findBytesField(b []byte, num protowire.Number) ([]byte, bool) {
	for len(b) > 0 {
		fn, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if fn == num && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			return v, true
		}
		n = protowire.ConsumeFieldValue(fn, typ, b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	return nil, false
}
