package bus

import (
	"context"
	"errors"
	"fmt"
)

// ErrClosed is returned by operations on a bus that has been closed.
var ErrClosed = errors.New("bus: closed")

// ErrBadPattern is returned when a subscription pattern is empty or malformed.
var ErrBadPattern = errors.New("bus: bad pattern")

// Message is one delivery to a subscription.
type Message struct {
	// Pattern is the subscription pattern that matched.
	Pattern string
	// Channel is the channel the payload was published on.
	Channel string
	// Payload is the published bytes. It is shared between subscriptions: do not modify it.
	Payload []byte
	// Position is the message's place in the event history ([Positioner]), or "" for a message
	// that was not recorded (history off, a channel it does not keep, a publisher outside
	// teragate). It is an opaque token of the history that assigned it.
	Position string
}

// Positioner is implemented by the buses that can carry a history position with a message: the
// event history publishes through it so that live deliveries carry the position the event got.
type Positioner interface {
	// PublishAt is [Bus.Publish] with the message's [Message.Position].
	PublishAt(ctx context.Context, channel string, payload []byte, position string) error
}

// Handler receives the messages of one subscription, in publish order, one at a time.
type Handler func(Message)

// Subscription is a live pattern subscription.
type Subscription interface {
	// Unsubscribe stops deliveries. Messages already queued for the subscription are discarded.
	// It is safe to call more than once.
	Unsubscribe(ctx context.Context) error
}

// Bus publishes payloads on channels and delivers them to matching pattern subscriptions.
type Bus interface {
	// Publish sends payload on channel to every subscription whose pattern matches it.
	// The bus keeps a reference to payload: the caller must not modify it afterwards.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe registers h for every channel matching pattern (PSUBSCRIBE semantics). When
	// Subscribe returns, the subscription is active: a message published afterwards reaches h.
	Subscribe(ctx context.Context, pattern string, h Handler) (Subscription, error)
	// SubscribeAll registers h for every channel matching any of patterns, as one subscription:
	// its messages reach h in publish order across all the patterns, the way one Redis
	// connection's PSUBSCRIBE does. Use it when the order between topics matters (a client must
	// see a direct JoinSessionEvent before the StopSessionEvent published after it).
	SubscribeAll(ctx context.Context, patterns []string, h Handler) (Subscription, error)
	// Close stops all subscriptions and releases resources.
	Close(ctx context.Context) error
}

// checkSubscription validates the arguments of SubscribeAll: at least one valid pattern and a
// handler.
func checkSubscription(patterns []string, h Handler) error {
	if len(patterns) == 0 {
		return fmt.Errorf("%w: no pattern", ErrBadPattern)
	}
	for _, p := range patterns {
		if !ValidPattern(p) {
			return fmt.Errorf("%w: %q", ErrBadPattern, p)
		}
	}
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrBadPattern)
	}
	return nil
}
