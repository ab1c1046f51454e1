package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/teragate/teragate/gateway/internal/bus"
)

// Config bounds a history. Zero values get the documented defaults.
type Config struct {
	// MaxEvents is the most events kept. Zero value means [DefaultMaxEvents].
	MaxEvents int
	// MaxAge is how long an event is kept at most. Zero value means [DefaultMaxAge].
	MaxAge time.Duration
	// Now is the in-memory history's clock. Nil means time.Now.
	Now func() time.Time
}

// Defaults of [Config].
const (
	DefaultMaxEvents = 100000
	DefaultMaxAge    = 10 * time.Minute
)

func (c *Config) defaults() {
	if c.MaxEvents <= 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
}

// newEpoch returns a random epoch (lowercase hex).
func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Memory is the in-process history of a single node: a queue of the recent events, positions
// "<epoch>-<seq>". Its epoch is new at every start, so positions of a previous run are unknown.
type Memory struct {
	cfg   Config
	bus   bus.Positioner
	epoch string
	now   func() time.Time

	mu    sync.Mutex
	ents  []memEntry // ents[start:] are kept, oldest first
	start int
	next  uint64 // seq of the next event; the first is 1
	bytes int64
}

type memEntry struct {
	seq     uint64
	at      int64 // unix nanoseconds
	token   string
	channel string
	payload []byte
}

// NewMemory returns an empty history publishing on b.
func NewMemory(b bus.Positioner, cfg Config) *Memory {
	cfg.defaults()
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Memory{cfg: cfg, bus: b, epoch: newEpoch(), now: now, next: 1}
}

// Epoch returns the history's epoch.
func (m *Memory) Epoch() string { return m.epoch }

// Publish implements [Store]: the event is recorded and published under one lock, so positions
// follow the bus order.
func (m *Memory) Publish(ctx context.Context, channel string, payload []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UnixNano()
	m.trimLocked(now)
	seq := m.next
	tok := m.epoch + "-" + strconv.FormatUint(seq, 10)
	if err := m.bus.PublishAt(ctx, channel, payload, tok); err != nil {
		return err
	}
	m.next++
	m.ents = append(m.ents, memEntry{seq: seq, at: now, token: tok, channel: channel, payload: payload})
	m.bytes += entryBytes(channel, payload, tok)
	if len(m.ents)-m.start > m.cfg.MaxEvents {
		m.dropLocked()
	}
	return nil
}

// entryBytes estimates the memory an entry holds (its strings, payload and slot).
func entryBytes(channel string, payload []byte, tok string) int64 {
	const slot = 8 + 8 + 16 + 16 + 24
	return int64(slot + len(channel) + len(payload) + len(tok))
}

func (m *Memory) dropLocked() {
	e := &m.ents[m.start]
	m.bytes -= entryBytes(e.channel, e.payload, e.token)
	*e = memEntry{seq: e.seq}
	m.start++
	// Compact once half the slice is dropped entries: amortised O(1) per event.
	if m.start >= 1024 && m.start*2 >= len(m.ents) {
		n := copy(m.ents, m.ents[m.start:])
		clear(m.ents[n:])
		m.ents = m.ents[:n]
		m.start = 0
	}
}

// trimLocked drops the events older than MaxAge.
func (m *Memory) trimLocked(now int64) {
	limit := now - int64(m.cfg.MaxAge)
	for m.start < len(m.ents) && m.ents[m.start].at < limit {
		m.dropLocked()
	}
}

// firstLocked returns the seq of the oldest event kept (next when none is).
func (m *Memory) firstLocked() uint64 {
	if m.start < len(m.ents) {
		return m.ents[m.start].seq
	}
	return m.next
}

// Read implements [Store].
func (m *Memory) Read(_ context.Context, after Token, limit int) ([]Entry, error) {
	if after.Epoch != m.epoch || after.Stream {
		return nil, ErrUnknown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trimLocked(m.now().UnixNano())
	seq := after.Pos.Lo
	if seq >= m.next {
		return nil, ErrUnknown
	}
	first := m.firstLocked()
	if seq+1 < first {
		return nil, ErrTooOld
	}
	i := m.start + int(seq+1-first)
	n := min(limit, len(m.ents)-i)
	if n <= 0 {
		return nil, nil
	}
	out := make([]Entry, n)
	for j := range out {
		e := &m.ents[i+j]
		out[j] = Entry{Token: e.token, Pos: Pos{Lo: e.seq}, Channel: e.channel, Payload: e.payload}
	}
	return out, nil
}

// Head implements [Store].
func (m *Memory) Head(context.Context) (Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Token{Epoch: m.epoch, Pos: Pos{Lo: m.next - 1}}, nil
}

// Len implements [Store].
func (m *Memory) Len(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trimLocked(m.now().UnixNano())
	return len(m.ents) - m.start, nil
}

// Bytes returns an estimate of the memory the kept events hold.
func (m *Memory) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trimLocked(m.now().UnixNano())
	return m.bytes
}

var _ Store = (*Memory)(nil)
