package pdk

import (
	"math"
	"strings"

	protowire "github.com/teragate/teragate/sdk/pdk/internal/wire"
)

// Kind is a kind of directory entity and of connection: [KindUser], [KindParticipant],
// [KindDevice] or [KindService].
type Kind string

// The entity kinds, spelled as in the ABI's Subject.kind.
const (
	KindUser        Kind = "user"
	KindParticipant Kind = "participant"
	KindDevice      Kind = "device"
	KindService     Kind = "service"
)

// Event is one event on its way to the connections of one kind. It is only valid during the
// handler call that received it: its bytes live in the plugin's request buffer, which the next
// call overwrites. Copy what you keep (the accessors returning strings already do).
//
// The accessors decode the event's protobuf encoding on demand with protowire: `ev.String(1)` is
// field 1 as a string. They return the zero value for a missing or malformed field and never
// panic. The typed helpers ([Event.ParticipantEvent] …) decode the OpenTera events in one pass.
type Event struct {
	// Kind is the kind of the connections the event is about to reach (the recipient kind).
	Kind Kind
	// Topic is the bus topic the event arrived on, e.g.
	// "module.TeraServer.UserManagerModule.events".
	Topic string
	// Type is the event's full protobuf name, e.g. "opentera.protobuf.ParticipantEvent".
	Type string

	raw         []byte
	rewriteType string
	rewrite     []byte
}

// NewEvent returns an Event of the given recipient kind, topic, full type name and encoding. Tests
// and tools use it; plugins receive their events from the host.
func NewEvent(kind Kind, topic, typeName string, raw []byte) *Event {
	return &Event{Kind: kind, Topic: topic, Type: typeName, raw: raw}
}

// Bytes returns the event's protobuf encoding (an Any's value). Do not keep or modify it.
func (e *Event) Bytes() []byte { return e.raw }

// Name returns the short type name, e.g. "ParticipantEvent" for
// "opentera.protobuf.ParticipantEvent".
func (e *Event) Name() string {
	if i := strings.LastIndexByte(e.Type, '.'); i >= 0 {
		return e.Type[i+1:]
	}
	return e.Type
}

// String returns field num as a string ("" when absent).
func (e *Event) String(num int) string {
	return string(lastBytes(e.raw, protowire.Number(num)))
}

// Strings returns every value of the repeated string field num (nil when absent).
func (e *Event) Strings(num int) []string {
	raw := allBytes(e.raw, protowire.Number(num))
	if raw == nil {
		return nil
	}
	out := make([]string, len(raw))
	for i, b := range raw {
		out[i] = string(b)
	}
	return out
}

// Has reports whether the repeated string field num contains s, without allocating.
func (e *Event) Has(num int, s string) bool {
	found := false
	walk(e.raw, func(f *field) {
		if !found && int(f.num) == num && f.typ == protowire.BytesType && string(f.b) == s {
			found = true
		}
	})
	return found
}

// Int returns field num as an integer: an int32, int64, uint32, uint64, bool or enum varint (0
// when absent). Negative int32 and int64 values come back negative.
func (e *Event) Int(num int) int64 {
	return int64(lastVarint(e.raw, protowire.Number(num)))
}

// Bool returns field num as a bool (false when absent).
func (e *Event) Bool(num int) bool {
	return lastVarint(e.raw, protowire.Number(num)) != 0
}

// Double returns field num as a double (0 when absent).
func (e *Event) Double(num int) float64 {
	var out uint64
	walk(e.raw, func(f *field) {
		if int(f.num) == num && f.typ == protowire.Fixed64Type {
			out = f.v
		}
	})
	return math.Float64frombits(out)
}

// Message returns the embedded message field num as its encoding (nil when absent). Wrap it
// with [NewEvent] to read its fields.
func (e *Event) Message(num int) []byte {
	return lastBytes(e.raw, protowire.Number(num))
}

// Rewrite sets the replacement event that [Rewritten] verdicts deliver, in a
// [HandleRecipients] handler: typeName is its full protobuf name and value its encoding (copied).
func (e *Event) Rewrite(typeName string, value []byte) {
	e.rewriteType = typeName
	e.rewrite = append(e.rewrite[:0], value...)
}
