package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Tickets issues and redeems websocket tickets: the `id` parameter of the websocket URL that a
// login reply returns (wss://host/wss/<kind>?id=<ticket>). A ticket is random, single-use, valid
// for a short time, and bound to one entity kind and uuid.
//
// Implementations must be safe for concurrent use, and Redeem must be atomic: of two concurrent
// redeems of one ticket, exactly one succeeds.
type Tickets interface {
	// Issue returns a new ticket for the entity of kind kind with the given uuid.
	Issue(ctx context.Context, kind directory.Kind, uuid string) (string, error)
	// Redeem consumes ticket and returns the uuid it was issued for. kind is the kind of the
	// websocket path it is presented on. It returns [ErrTicketInvalid] for an unknown, used or
	// malformed ticket and for a ticket of another kind, and [ErrTicketExpired] for one presented
	// too late.
	Redeem(ctx context.Context, ticket string, kind directory.Kind) (uuid string, err error)
}

// ticketBytes is the ticket's entropy: 256 bits, sent as 64 hex characters.
const ticketBytes = 32

// MemoryTickets is the in-process [Tickets] implementation.
//
// # Notes
//
// A ticket presented for the wrong kind fails with [ErrTicketInvalid] and is NOT consumed: the
// caller holds the secret anyway and may retry on the right path, and a typo in a client should not
// cost it a login. Any other redeem consumes the ticket, successful or not (an expired ticket is
// deleted when seen).
//
// Expired tickets are pruned on every call, in issue order, so memory is bounded by the number of
// tickets issued within one TTL; there is no background goroutine. Tickets are stored under their
// decoded bytes, never as the text that was sent.
type MemoryTickets struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	tickets map[[ticketBytes]byte]ticket
	queue   []queued // in issue order, hence in expiry order
	head    int
}

type ticket struct {
	kind directory.Kind
	uuid string
	exp  time.Time
}

type queued struct {
	key [ticketBytes]byte
	exp time.Time
}

// NewMemoryTickets returns an empty MemoryTickets. A ttl ≤ 0 means [DefaultTicketTTL] (60 s); a nil
// now means time.Now.
func NewMemoryTickets(ttl time.Duration, now func() time.Time) *MemoryTickets {
	if ttl <= 0 {
		ttl = DefaultTicketTTL
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryTickets{ttl: ttl, now: now, tickets: make(map[[ticketBytes]byte]ticket)}
}

// Issue returns a new 64-hex-character ticket for the entity. It fails with [ErrKind] for an
// invalid kind and [ErrTicketInvalid] for an empty uuid.
func (m *MemoryTickets) Issue(ctx context.Context, kind directory.Kind, uuid string) (string, error) {
	key, err := newTicketKey(ctx, kind, uuid)
	if err != nil {
		return "", err
	}
	now := m.now()
	exp := now.Add(m.ttl)

	m.mu.Lock()
	m.prune(now)
	m.tickets[key] = ticket{kind: kind, uuid: uuid, exp: exp}
	m.queue = append(m.queue, queued{key: key, exp: exp})
	m.mu.Unlock()
	return hex.EncodeToString(key[:]), nil
}

// Redeem consumes a ticket. See [Tickets.Redeem] and the notes on [MemoryTickets].
func (m *MemoryTickets) Redeem(ctx context.Context, s string, kind directory.Kind) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var key [ticketBytes]byte
	if len(s) != 2*ticketBytes {
		return "", ErrTicketInvalid
	}
	if _, err := hex.Decode(key[:], []byte(s)); err != nil {
		return "", ErrTicketInvalid
	}
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tickets[key]
	switch {
	case !ok:
		m.prune(now)
		return "", ErrTicketInvalid
	case !now.Before(t.exp):
		delete(m.tickets, key)
		m.prune(now)
		return "", ErrTicketExpired
	case t.kind != kind:
		m.prune(now)
		return "", fmt.Errorf("%w: issued for a %s, presented as %s", ErrTicketInvalid, t.kind, kind)
	}
	delete(m.tickets, key)
	m.prune(now)
	return t.uuid, nil
}

// Len returns the number of live tickets (issued, not redeemed, not yet pruned).
func (m *MemoryTickets) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tickets)
}

// prune drops the tickets that have expired, oldest first. m.mu must be held.
func (m *MemoryTickets) prune(now time.Time) {
	for m.head < len(m.queue) && !now.Before(m.queue[m.head].exp) {
		q := m.queue[m.head]
		if t, ok := m.tickets[q.key]; ok && t.exp.Equal(q.exp) {
			delete(m.tickets, q.key)
		}
		m.queue[m.head] = queued{}
		m.head++
	}
	switch {
	case m.head == len(m.queue):
		m.queue, m.head = m.queue[:0], 0
		if cap(m.queue) > 4096 {
			m.queue = nil // give back the memory of a past burst
		}
	case m.head > 1024 && m.head*2 >= len(m.queue):
		n := copy(m.queue, m.queue[m.head:])
		clear(m.queue[n:])
		m.queue, m.head = m.queue[:n], 0
	}
}

var _ Tickets = (*MemoryTickets)(nil)

// newTicketKey checks a ticket request and draws the ticket's random key. It fails with
// [ErrKind] for an invalid kind and [ErrTicketInvalid] for an empty uuid.
func newTicketKey(ctx context.Context, kind directory.Kind, uuid string) (key [ticketBytes]byte, err error) {
	if err := ctx.Err(); err != nil {
		return key, err
	}
	if !kind.Valid() {
		return key, fmt.Errorf("%w: %d", ErrKind, kind)
	}
	if uuid == "" {
		return key, fmt.Errorf("%w: empty uuid", ErrTicketInvalid)
	}
	_, _ = rand.Read(key[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return key, nil
}
