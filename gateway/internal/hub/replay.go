package hub

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// ErrReplayClosed is returned by [Router.Replay] when the connection closed during the replay.
var ErrReplayClosed = errors.New("hub: connection closed during the replay")

// ReplayPage is how many recorded events [Router.Replay] reads at a time.
const ReplayPage = 256

// ReplayAloneMax is the most events a connection replays alone: one further behind joins the
// shared replay. Its first read is this small, since every connection of a storm makes one.
const ReplayAloneMax = 32

const (
	// replayStall is the longest a shared replay waits for one connection's queue to have room
	// before that connection goes on alone.
	replayStall = time.Second
	// replayStallBudget bounds the time a shared replay spends waiting in vain (for connections
	// that then go on alone); beyond it, it waits replayStallShort at most.
	replayStallBudget = 5 * time.Second
	replayStallShort  = 50 * time.Millisecond
	// replayReadTimeout bounds one read of the history by a shared replay.
	replayReadTimeout = 10 * time.Second
)

// ReplayResult is the outcome of [Router.Replay].
type ReplayResult struct {
	// Last is the position of the last event replayed (after, when there was none): the live
	// events at or before it are duplicates ([Conn.FinishReplay]).
	Last history.Token
	// Events is how many recorded events were read; Sent how many frames c was sent.
	Events, Sent int
	// Started reports whether the history accepted the position (its first read succeeded): a
	// failure before that is the client's to resynchronise, one after it interrupts the replay.
	Started bool
	// Alone reports that the connection left a shared replay, too slow for the others, and
	// finished its replay alone.
	Alone bool
}

// Replay sends c, a connection in replay mode, the events recorded in h after the position
// after that it may receive — the same filter decision as live events, for this one connection,
// with its access now — in order, pacing itself on the connection's queue. It does not end the
// replay mode: the caller calls [Conn.FinishReplay] with the result's Last.
//
// A connection with more than ReplayAloneMax events to replay joins the shared replay of h: the
// connections that resume at about the same time (every client of a node after a network blip)
// are routed each recorded event together, as the live path routes it to all of them, so an
// event is read, decoded and narrowed once rather than once per connection. A connection too
// slow to keep up with the others goes on alone from where it was.
func (r *Router) Replay(ctx context.Context, c *Conn, h history.Store, after history.Token) (ReplayResult, error) {
	ents, err := h.Read(ctx, after, ReplayAloneMax+1)
	if err != nil {
		return ReplayResult{Last: after}, err
	}
	m := &member{c: c, ctx: ctx, h: h, after: after, res: ReplayResult{Last: after, Started: true}}
	if len(ents) > ReplayAloneMax {
		m.done = make(chan struct{})
		r.replays.enqueue(r, m)
		<-m.done
		if !m.alone {
			return m.res, m.err
		}
		m.res.Alone, m.done = true, nil
		r.metrics.ResumeLeftShared()
		ents = nil // go on alone from m.res.Last
	}
	run := newReplayRun(ctx, h, m.res.Last, true)
	run.join(m)
	r.runReplay(run, ents, ReplayAloneMax+1)
	return m.res, m.err
}

// member is one connection of a replay run.
type member struct {
	c     *Conn
	ctx   context.Context
	h     history.Store
	after history.Token // the connection's position when it joined its current run
	res   ReplayResult
	err   error
	done  chan struct{} // closed when it leaves a shared run (nil for a replay alone)

	active bool // the run is past its position: it is routed the run's events
	start  int  // the run's event count when it became active
	left   bool // it left the run (done, failed, closed or going on alone)
	alone  bool // it left a shared run to go on alone from res.Last
}

// replayRun routes a stretch of a history, event by event, to the connections replaying it.
type replayRun struct {
	ctx    context.Context // the reads' (a solo run's is its connection's)
	h      history.Store
	epoch  string
	stream bool
	solo   bool // one connection, replaying in its own goroutine: it waits for its queue

	members map[*Conn]*member
	waiting []*member // not active yet, by position
	active  [directory.KindService + 1][]*Conn
	changed bool // a member left: the active lists need a sweep

	cursor  history.Token // the position after which the run reads next
	events  int           // events routed so far
	prev    history.Pos   // the position of the last event routed
	hasPrev bool
	stalled time.Duration // total time spent waiting in vain for slow connections
}

func newReplayRun(ctx context.Context, h history.Store, from history.Token, solo bool) *replayRun {
	return &replayRun{ctx: ctx, h: h, epoch: from.Epoch, stream: from.Stream, solo: solo, cursor: from,
		members: map[*Conn]*member{}}
}

// join adds m; it is activated once the run reaches its position.
func (run *replayRun) join(m *member) {
	m.active, m.left, m.alone = false, false, false
	m.after = m.res.Last
	run.members[m.c] = m
	i, _ := slices.BinarySearchFunc(run.waiting, m, func(a, b *member) int {
		switch {
		case a.after.Pos.Less(b.after.Pos):
			return -1
		case b.after.Pos.Less(a.after.Pos):
			return 1
		}
		return 0
	})
	run.waiting = slices.Insert(run.waiting, i, m)
}

// activate makes active the members whose position is before pos, the next event's.
func (run *replayRun) activate(pos history.Pos) {
	n := 0
	for _, m := range run.waiting {
		if !m.after.Pos.Less(pos) {
			break
		}
		n++
		if m.left {
			continue
		}
		m.active, m.start = true, run.events
		run.active[m.c.kind] = append(run.active[m.c.kind], m.c)
	}
	if n > 0 {
		clear(run.waiting[:n])
		run.waiting = run.waiting[n:]
	}
}

// anyActive reports whether some member is routed the next event (none: it need not be decoded).
func (run *replayRun) anyActive() bool {
	for _, cs := range run.active {
		if len(cs) > 0 {
			return true
		}
	}
	return false
}

// in reports whether c is routed the event being replayed.
func (run *replayRun) in(c *Conn) bool {
	m := run.members[c]
	return m != nil && m.active && !m.left
}

// last is the position m has been sent everything up to.
func (run *replayRun) last(m *member) history.Token {
	t := m.after
	if m.active && run.hasPrev && t.Pos.Less(run.prev) {
		t.Pos = run.prev
	}
	return t
}

// leave takes m out of the run with err (nil: its replay is complete, or it goes on alone).
func (run *replayRun) leave(m *member, err error) {
	if m.left {
		return
	}
	m.left, m.err = true, err
	if m.active {
		m.res.Events += run.events - m.start
	}
	m.res.Last = run.last(m)
	delete(run.members, m.c)
	run.changed = true
	if m.done != nil {
		close(m.done)
	}
}

// sweep drops the members that left from the active lists.
func (run *replayRun) sweep() {
	if !run.changed {
		return
	}
	run.changed = false
	for k, cs := range run.active {
		run.active[k] = slices.DeleteFunc(cs, func(c *Conn) bool { return run.members[c] == nil })
	}
	run.waiting = slices.DeleteFunc(run.waiting, func(m *member) bool { return m.left })
}

// check takes out the members whose context ended or whose connection closed.
func (run *replayRun) check() {
	for _, m := range run.members {
		switch {
		case m.ctx.Err() != nil:
			run.leave(m, m.ctx.Err())
		case m.c.isClosing():
			run.leave(m, ErrReplayClosed)
		}
	}
	run.sweep()
}

// runReplay routes the history from run.cursor to its newest event to the run's members, first
// (when set) being the first page already read, with the limit it was read with; members queued
// meanwhile whose position the run has not passed join it between pages. Every member has left
// when it returns.
func (r *Router) runReplay(run *replayRun, first []history.Entry, limit int) {
	w := &worker{replay: run}
	for len(run.members) > 0 {
		ents, err := first, error(nil)
		if first == nil {
			limit = ReplayPage
			ctx, cancel := context.WithTimeout(run.ctx, replayReadTimeout)
			ents, err = run.h.Read(ctx, run.cursor, limit)
			cancel()
		}
		first = nil
		if err != nil {
			for _, m := range run.members {
				run.leave(m, err)
			}
			return
		}
		for _, e := range ents {
			run.activate(e.Pos)
			if run.anyActive() {
				r.replayOne(w, e)
			}
			run.events++
			run.prev, run.hasPrev = e.Pos, true
			run.cursor.Pos = e.Pos
			run.sweep()
		}
		if len(ents) < limit {
			for _, m := range run.members {
				run.leave(m, nil)
			}
			return
		}
		run.check()
		if !run.solo {
			r.replays.admit(run)
		}
	}
}

// replayOne routes one recorded event to the run's members as the router routes its family.
func (r *Router) replayOne(w *worker, e history.Entry) {
	m := bus.Message{Channel: e.Channel, Payload: e.Payload, Position: e.Token}
	if k, uuid, ok := topic.ParseDirect(e.Channel); ok {
		if len(w.replay.active[k]) > 0 {
			r.routeEvents(w, m, k, uuid)
		}
		return
	}
	if Recorded(e.Channel) {
		r.routeEvents(w, m, 0, "")
	}
}

// sendReplay queues a replayed frame for c, a member of the worker's run, once its queue has
// room: a connection replaying alone waits for it; in a shared run, a connection without room
// holds the others back a little (replayStall; replayStallShort once the run has waited
// replayStallBudget in vain), then goes on alone.
func (r *Router) sendReplay(w *worker, c *Conn, fr []byte) bool {
	run := w.replay
	m := run.members[c]
	if m == nil || m.left {
		return false
	}
	if !c.hasRoom() {
		if run.solo {
			if !c.waitRoom(m.ctx, 0) {
				run.leave(m, run.stopErr(m))
				return false
			}
		} else {
			wait := replayStall
			if run.stalled >= replayStallBudget {
				wait = replayStallShort
			}
			start := time.Now()
			if !c.waitRoom(m.ctx, wait) {
				run.stalled += time.Since(start)
				if err := run.stopErr(m); err != nil {
					run.leave(m, err)
				} else {
					m.alone = true
					run.leave(m, nil)
				}
				return false
			}
		}
	}
	if !c.Send(fr) {
		run.leave(m, ErrReplayClosed)
		return false
	}
	m.res.Sent++
	return true
}

// stopErr is why m cannot go on: its context ended, its connection closed, or nil.
func (run *replayRun) stopErr(m *member) error {
	if err := m.ctx.Err(); err != nil {
		return err
	}
	if m.c.isClosing() {
		return ErrReplayClosed
	}
	return nil
}

// replayQueue holds the connections waiting for a shared replay and runs one replay at a time
// for them, in its own goroutine while there are any.
type replayQueue struct {
	mu      sync.Mutex
	waiting []*member
	running bool
	// gate, when set (tests), is waited for before the first run: it lets a test queue several
	// connections for one run.
	gate chan struct{}
}

// enqueue queues m for the next shared replay, starting one if none is running.
func (q *replayQueue) enqueue(r *Router, m *member) {
	q.mu.Lock()
	q.waiting = append(q.waiting, m)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go q.loop(r)
	}
}

// loop runs shared replays while connections wait for one: each takes every connection
// waiting on the same history and epoch, and starts at the oldest of their positions.
func (q *replayQueue) loop(r *Router) {
	if q.gate != nil {
		<-q.gate
	}
	for {
		q.mu.Lock()
		if len(q.waiting) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		first := q.waiting[0]
		run := newReplayRun(context.Background(), first.h, first.res.Last, false)
		q.takeLocked(run, func(*member) bool { return true })
		q.mu.Unlock()
		run.cursor.Pos = run.waiting[0].after.Pos
		run.check()
		r.runReplay(run, nil, 0)
	}
}

// admit adds to run the waiting connections of its history whose position it has not passed.
func (q *replayQueue) admit(run *replayRun) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.takeLocked(run, func(m *member) bool { return !m.res.Last.Pos.Less(run.cursor.Pos) })
}

// takeLocked moves the waiting members of run's history and epoch that ok accepts into run.
func (q *replayQueue) takeLocked(run *replayRun, ok func(*member) bool) {
	q.waiting = slices.DeleteFunc(q.waiting, func(m *member) bool {
		t := m.res.Last
		if m.h != run.h || t.Epoch != run.epoch || t.Stream != run.stream || !ok(m) {
			return false
		}
		run.join(m)
		return true
	})
}

// Recorded reports whether channel is one the event history keeps: the families whose events
// the router delivers to sockets (user manager, service and direct events; not commands).
func Recorded(channel string) bool {
	if channel == topic.UserManagerEvents {
		return true
	}
	if _, _, ok := topic.ParseDirect(channel); ok {
		return true
	}
	return bus.Match(topic.PatternServiceEvents, channel)
}
