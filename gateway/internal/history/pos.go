package history

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/teragate/teragate/gateway/internal/bus"
)

// Errors of [Store.Read] and [ParseToken].
var (
	// ErrMalformed is a string that is not a position token.
	ErrMalformed = errors.New("history: malformed position")
	// ErrUnknown is a position this history never gave: another epoch (another cluster, a
	// flushed Redis, a restarted in-memory node) or beyond the newest event.
	ErrUnknown = errors.New("history: unknown position")
	// ErrTooOld is a position some of whose successors were trimmed from the history.
	ErrTooOld = errors.New("history: position older than the history kept")
)

// Reasons of a failed resume, as clients see them in ResumeFailed.reason and as metrics labels.
const (
	ReasonTooOld   = "too_old"
	ReasonUnknown  = "unknown"
	ReasonDisabled = "disabled"
	ReasonError    = "error"
)

// Reason returns the client-facing reason of a [Store.Read] error.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrTooOld):
		return ReasonTooOld
	case errors.Is(err, ErrUnknown), errors.Is(err, ErrMalformed):
		return ReasonUnknown
	default:
		return ReasonError
	}
}

// Pos is a position within one history: ordered by Hi then Lo. The zero Pos is before every event.
type Pos struct{ Hi, Lo uint64 }

// Less reports whether p comes before q.
func (p Pos) Less(q Pos) bool { return p.Hi < q.Hi || p.Hi == q.Hi && p.Lo < q.Lo }

// Token is a parsed position token: the epoch of the history that gave it and the position.
type Token struct {
	Epoch string
	Pos   Pos
	// Stream is set for Redis tokens ("<epoch>-<ms>-<seq>"), clear for memory ones.
	Stream bool
}

// maxEpoch bounds the epoch part of a token.
const maxEpoch = 32

// ParseToken parses a position token; any string that is not one is [ErrMalformed].
func ParseToken(s string) (Token, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 2 && len(parts) != 3 {
		return Token{}, ErrMalformed
	}
	ep := parts[0]
	if ep == "" || len(ep) > maxEpoch {
		return Token{}, ErrMalformed
	}
	for i := 0; i < len(ep); i++ {
		if c := ep[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return Token{}, ErrMalformed
		}
	}
	var nums [2]uint64
	for i, p := range parts[1:] {
		if p == "" || p[0] == '+' {
			return Token{}, ErrMalformed
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Token{}, ErrMalformed
		}
		nums[i] = n
	}
	if len(parts) == 2 {
		return Token{Epoch: ep, Pos: Pos{Lo: nums[0]}}, nil
	}
	return Token{Epoch: ep, Pos: Pos{Hi: nums[0], Lo: nums[1]}, Stream: true}, nil
}

// String formats t as a token.
func (t Token) String() string {
	if t.Stream {
		return t.Epoch + "-" + strconv.FormatUint(t.Pos.Hi, 10) + "-" + strconv.FormatUint(t.Pos.Lo, 10)
	}
	return t.Epoch + "-" + strconv.FormatUint(t.Pos.Lo, 10)
}

// Entry is one recorded event.
type Entry struct {
	Token   string
	Pos     Pos
	Channel string
	Payload []byte
}

// Store is an event history.
type Store interface {
	// Publish records payload on channel and publishes it on the bus with its position.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Read returns up to limit events recorded after t, oldest first. It fails with
	// [ErrUnknown] when t is not a position of this history and with [ErrTooOld] when events
	// after t were trimmed.
	Read(ctx context.Context, after Token, limit int) ([]Entry, error)
	// Head returns the token of the newest recorded event (a token before every event when
	// there is none).
	Head(ctx context.Context) (Token, error)
	// Len returns how many events the history keeps.
	Len(ctx context.Context) (int, error)
}

// Bus is the event bus with history: publishes on the channels Record accepts go through Store.
type Bus struct {
	bus.Bus
	Store  Store
	Record func(channel string) bool
}

// Publish implements [bus.Bus].
func (b *Bus) Publish(ctx context.Context, channel string, payload []byte) error {
	if b.Record(channel) {
		return b.Store.Publish(ctx, channel, payload)
	}
	return b.Bus.Publish(ctx, channel, payload)
}

var _ bus.Bus = (*Bus)(nil)
