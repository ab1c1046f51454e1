package bus

import (
	"context"
	"sync"
	"sync/atomic"
)

// MemoryConfig configures [NewMemory].
type MemoryConfig struct {
	// MaxPending bounds the messages queued for one subscription whose handler is behind.
	// Past it, new messages for that subscription are dropped and counted by OnDrop.
	// Zero value means 1<<20.
	MaxPending int
	// OnDrop, if set, is called (from the publisher's goroutine) for every message dropped
	// because a subscription's queue was full.
	OnDrop func(pattern, channel string)
}

// Memory is the in-process [Bus]: the embedded default for a single node.
type Memory struct {
	cfg    MemoryConfig
	mu     sync.Mutex // serialises subscribe/unsubscribe (copy-on-write of subs)
	subs   atomic.Pointer[subTable]
	closed atomic.Bool
	wg     sync.WaitGroup
}

type subTable struct {
	exact    map[string][]entry
	patterns []entry
}

// entry is one pattern of a subscription (a subscription may have several).
type entry struct {
	pattern string
	s       *memSub
}

// NewMemory returns an empty in-memory bus.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1 << 20
	}
	m := &Memory{cfg: cfg}
	m.subs.Store(&subTable{exact: map[string][]entry{}})
	return m
}

// Publish implements [Bus].
func (m *Memory) Publish(ctx context.Context, channel string, payload []byte) error {
	return m.PublishAt(ctx, channel, payload, "")
}

// PublishAt implements [Positioner].
func (m *Memory) PublishAt(_ context.Context, channel string, payload []byte, position string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	t := m.subs.Load()
	for _, e := range t.exact[channel] {
		e.s.push(e.pattern, channel, payload, position)
	}
	for _, e := range t.patterns {
		if Match(e.pattern, channel) {
			e.s.push(e.pattern, channel, payload, position)
		}
	}
	return nil
}

// Subscribe implements [Bus].
func (m *Memory) Subscribe(ctx context.Context, pattern string, h Handler) (Subscription, error) {
	return m.SubscribeAll(ctx, []string{pattern}, h)
}

// SubscribeAll implements [Bus]: one delivery goroutine and queue for all the patterns.
func (m *Memory) SubscribeAll(_ context.Context, patterns []string, h Handler) (Subscription, error) {
	if err := checkSubscription(patterns, h); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return nil, ErrClosed
	}
	s := &memSub{bus: m, mailbox: newMailbox(h, m.cfg.MaxPending, m.cfg.OnDrop)}
	old := m.subs.Load()
	nt := &subTable{exact: make(map[string][]entry, len(old.exact)+len(patterns)), patterns: append([]entry(nil), old.patterns...)}
	for k, v := range old.exact {
		nt.exact[k] = v
	}
	for _, p := range patterns {
		if HasMeta(p) {
			nt.patterns = append(nt.patterns, entry{p, s})
		} else {
			nt.exact[p] = append(append([]entry(nil), nt.exact[p]...), entry{p, s})
		}
	}
	m.subs.Store(nt)
	m.wg.Add(1)
	go s.run(&m.wg)
	return s, nil
}

func (m *Memory) remove(s *memSub) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.subs.Load()
	nt := &subTable{exact: make(map[string][]entry, len(old.exact)), patterns: without(old.patterns, s)}
	for k, v := range old.exact {
		if v = without(v, s); len(v) > 0 {
			nt.exact[k] = v
		}
	}
	m.subs.Store(nt)
}

func without(list []entry, s *memSub) []entry {
	out := make([]entry, 0, len(list))
	for _, e := range list {
		if e.s != s {
			out = append(out, e)
		}
	}
	return out
}

// Close implements [Bus]: it stops every subscription and waits for running handlers to return.
func (m *Memory) Close(ctx context.Context) error {
	if m.closed.Swap(true) {
		return nil
	}
	m.mu.Lock()
	t := m.subs.Load()
	m.subs.Store(&subTable{exact: map[string][]entry{}})
	m.mu.Unlock()
	for _, list := range t.exact {
		for _, e := range list {
			e.s.stop()
		}
	}
	for _, e := range t.patterns {
		e.s.stop()
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type memSub struct {
	bus *Memory
	mailbox
}

// Unsubscribe implements [Subscription].
func (s *memSub) Unsubscribe(_ context.Context) error {
	s.bus.remove(s)
	s.stop()
	return nil
}

var (
	_ Bus          = (*Memory)(nil)
	_ Positioner   = (*Memory)(nil)
	_ Subscription = (*memSub)(nil)
)
