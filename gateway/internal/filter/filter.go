package filter

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// ErrLengthMismatch is returned when the decisions slice is shorter than the recipients slice.
var ErrLengthMismatch = errors.New("filter: decisions and recipients differ in length")

// Event is one event (a single Any of a TeraEvent) on its way to clients.
type Event struct {
	// Topic is the bus channel the event arrived on.
	Topic string
	// Any is the event as received.
	Any *anypb.Any
	// Msg is the decoded event, or nil when its type is unknown or it failed to decode.
	Msg proto.Message
}

// Name returns the event's short type name, e.g. "UserEvent" (the part of the type URL after the
// last '/' and the last '.').
func (e *Event) Name() string {
	u := e.Any.GetTypeUrl()
	if i := strings.LastIndexByte(u, '.'); i >= 0 {
		return u[i+1:]
	}
	return u
}

// DecodeEvent builds an [Event] from an Any, decoding it with the global protobuf registry.
// Unknown types and undecodable payloads give an Event with a nil Msg (which filters drop).
func DecodeEvent(topic string, a *anypb.Any) *Event {
	ev := &Event{Topic: topic, Any: a}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(a.GetTypeUrl())
	if err != nil {
		return ev
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(a.GetValue(), m); err != nil {
		return ev
	}
	ev.Msg = m
	return ev
}

// Recipient is one candidate connection of a batch.
type Recipient struct {
	// Kind is the kind of the connected entity (user, participant or device).
	Kind directory.Kind
	// UUID is the connected entity's uuid.
	UUID string
	// Access is the entity's access handle in the current directory snapshot (may be the zero
	// Access if the entity vanished from the directory; it then sees nothing).
	Access directory.Access
}

// Verdict is a filter's answer for one recipient.
type Verdict uint8

const (
	// Drop: the recipient does not receive the event.
	Drop Verdict = iota
	// Keep: the recipient receives the event as it is.
	Keep
	// Rewritten: the recipient receives Decision.Rewrite instead of the event.
	Rewritten
)

// Decision is the verdict for one recipient.
type Decision struct {
	// Verdict says what happens to the event for this recipient.
	Verdict Verdict
	// Rewrite is the replacement event when Verdict is [Rewritten]. Recipients that share the same
	// pointer share one encoded frame.
	Rewrite *anypb.Any
}

// Filter decides, for one event and a batch of recipients of one kind, who receives it.
type Filter interface {
	// Decide fills out[i] for every rs[i]. len(out) >= len(rs). A returned error means "deliver
	// nothing for this batch" (fail closed); out is then ignored.
	Decide(ctx context.Context, ev *Event, kind directory.Kind, rs []Recipient, out []Decision) error
}

// Func adapts a function to the [Filter] interface.
type Func func(ctx context.Context, ev *Event, kind directory.Kind, rs []Recipient, out []Decision) error

// Decide implements [Filter].
func (f Func) Decide(ctx context.Context, ev *Event, kind directory.Kind, rs []Recipient, out []Decision) error {
	return f(ctx, ev, kind, rs, out)
}

// Sessions answers the session facts the OpenTera table needs: OpenTera asks its database whether
// an entity takes part in a session; teragate asks the presence registry.
type Sessions interface {
	// InSession reports whether the entity was invited to (or joined) the session and the session
	// has not been stopped.
	InSession(kind directory.Kind, uuid, session string) bool
}

var _ Filter = Func(nil)
