package hub

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// Format is the wire format a client asked for.
type Format uint8

const (
	// FormatJSON is OpenTera's format: protojson text frames (the default).
	FormatJSON Format = iota
	// FormatProto is binary protobuf frames (`?format=proto`).
	FormatProto
	numFormats
)

// String returns "json" or "proto".
func (f Format) String() string {
	if f == FormatProto {
		return "proto"
	}
	return "json"
}

// Conn is one websocket connection as the hub sees it: an identity, a wire format and a bounded
// outbound queue drained by an on-demand writer goroutine.
type Conn struct {
	hub    *Hub
	id     uint64
	kind   directory.Kind
	uuid   string
	format Format
	nc     net.Conn
	// vectored is set for plain TCP connections, which take several frames in one writev.
	vectored bool
	// deadlineAt is when the writer last set the write deadline (only the writer touches it):
	// a deadline set less than a quarter of WriteTimeout ago is not set again, which saves a
	// timer update per wake-up on a busy socket (a write may then block for 3/4 of WriteTimeout
	// at least, the whole of it at most).
	deadlineAt time.Time
	// positions is set for connections that asked for positioned event frames (resume=1).
	positions bool

	access   atomic.Pointer[directory.Access]
	lastSeen atomic.Int64 // unix nanoseconds of the last frame read (pongs included)

	// guarded by the hub's index mutex (index.go)
	ixIn       bool
	ixSnap     *directory.Snapshot
	ixSlots    []ixSlot
	ixProjects []string

	// guarded by the shard's mutex
	shard   *shard
	kindPos int
	removed bool

	mu          sync.Mutex
	queue       [][]byte
	spare       [][]byte
	queued      int // bytes in queue
	writing     bool
	closing     bool
	closeReason string
	closeFrame  []byte
	// replaying is set while the connection is being sent the history it resumes: live events
	// wait in pending meanwhile ([Conn.FinishReplay]).
	replaying bool
	pending   []pendingFrame
	// replayed is the position the last replay ended at (hasReplayed): a live event at or before
	// it reaching the connection after the replay (its lane was behind) is a duplicate.
	replayed    history.Pos
	hasReplayed bool
	lateDups    int // live events dropped as duplicates of the replay that ended

	// The frames a routing lane staged for the connection during a batch of events
	// ([Router.flush]): indexes+1 of the first and last in the lane's arena, 0 when none. Only
	// the lane of the connection's kind touches them.
	stageFirst, stageLast int32
}

// ConnOptions are a connection's options at registration ([Hub.RegisterWith]).
type ConnOptions struct {
	// Format is the wire format.
	Format Format
	// Positions asks for positioned event frames: each event frame carries the event's history
	// position (resume=1).
	Positions bool
	// Replay starts the connection in replay mode: live events are held back until
	// [Conn.FinishReplay]. Requires Positions.
	Replay bool
}

// pendingFrame is a live event frame held back during a replay.
type pendingFrame struct {
	f   []byte
	pos history.Pos
	has bool // the event has a position (false: not recorded, never a duplicate)
}

// ID returns the connection's process-unique id.
func (c *Conn) ID() uint64 { return c.id }

// Kind returns the connected entity's kind.
func (c *Conn) Kind() directory.Kind { return c.kind }

// UUID returns the connected entity's uuid.
func (c *Conn) UUID() string { return c.uuid }

// Format returns the connection's wire format.
func (c *Conn) Format() Format { return c.format }

// Positions reports whether the connection gets positioned event frames.
func (c *Conn) Positions() bool { return c.positions }

// Access returns the entity's access handle in the current directory snapshot.
func (c *Conn) Access() directory.Access {
	if a := c.access.Load(); a != nil {
		return *a
	}
	return directory.Access{}
}

// Touch records that the client sent something (a pong or any frame).
func (c *Conn) Touch() { c.lastSeen.Store(time.Now().UnixNano()) }

// CloseReason returns the metrics reason of a close the gateway started, or
// [metrics.DisconnectClient] when the client closed or the connection broke.
func (c *Conn) CloseReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeReason == "" {
		return metrics.DisconnectClient
	}
	return c.closeReason
}

// Send queues a pre-framed websocket frame (see [TextFrame]). The frame is shared: it must not be
// modified afterwards. Send never blocks; it reports false and counts the drop when the connection
// is closing, and closes the connection with [CloseSlowConsumer] when its queue overflows.
func (c *Conn) Send(f []byte) bool {
	c.mu.Lock()
	r := c.enqueueLocked(f)
	c.mu.Unlock()
	return c.enqueued(r)
}

// enqueueResult is what [Conn.enqueueLocked] did, for [Conn.enqueued] to finish outside the lock.
type enqueueResult struct {
	queued, start, closing bool
	lost                   int // frames lost to a slow-consumer close
}

// enqueueLocked queues f, or starts the slow-consumer close when the queue is full.
func (c *Conn) enqueueLocked(f []byte) enqueueResult {
	cfg := &c.hub.cfg
	if c.closing {
		return enqueueResult{closing: true}
	}
	if len(c.queue) >= cfg.MaxQueueFrames || c.queued+len(f) > cfg.MaxQueueBytes {
		lost := len(c.queue) + len(c.pending) + 1
		c.pending = nil
		start := c.startCloseLocked(CloseSlowConsumer, "slow consumer", metrics.DisconnectSlowConsumer, true)
		return enqueueResult{start: start, lost: lost}
	}
	c.queue = append(c.queue, f)
	c.queued += len(f)
	start := !c.writing
	c.writing = true
	return enqueueResult{queued: true, start: start}
}

// enqueued starts the writer and counts and logs drops, after [Conn.enqueueLocked].
func (c *Conn) enqueued(r enqueueResult) bool {
	cfg := &c.hub.cfg
	if r.start {
		go c.writeLoop()
	}
	switch {
	case r.closing:
		cfg.Metrics.Dropped(metrics.DropClosing, 1)
	case r.lost > 0:
		cfg.Metrics.Dropped(metrics.DropQueueFull, r.lost)
		cfg.Logger.Warn("slow consumer disconnected", "kind", c.kind, "uuid", c.uuid, "conn", c.id, "lost_frames", r.lost)
	}
	return r.queued
}

// sendEvent queues a live event frame with the event's position (has: the event has one).
// During a replay it is held back, bounded like the queue, until [Conn.FinishReplay].
func (c *Conn) sendEvent(f []byte, pos history.Pos, has bool) bool {
	c.mu.Lock()
	r := c.eventLocked(pendingFrame{f: f, pos: pos, has: has})
	c.mu.Unlock()
	return c.enqueued(r)
}

// SendEvent queues f, a live event frame without a history position (a greeting): as [Conn.Send],
// except that it is held back, in order with the live events, while the connection replays.
func (c *Conn) SendEvent(f []byte) bool { return c.sendEvent(f, history.Pos{}, false) }

// eventLocked queues a live event frame, holds it back during a replay, or drops it as a
// duplicate of the replay that ended; the result is for [Conn.enqueued].
func (c *Conn) eventLocked(p pendingFrame) enqueueResult {
	switch {
	case c.closing || !c.replaying && !c.hasReplayed:
		return c.enqueueLocked(p.f)
	case !c.replaying:
		if p.has && !c.replayed.Less(p.pos) {
			c.lateDups++
			c.hub.cfg.Metrics.ResumeDuplicates(1)
			return enqueueResult{queued: true} // the replay sent it
		}
		return c.enqueueLocked(p.f)
	case len(c.pending) >= c.hub.cfg.MaxQueueFrames:
		lost := len(c.queue) + len(c.pending) + 1
		c.pending = nil
		start := c.startCloseLocked(CloseSlowConsumer, "slow consumer", metrics.DisconnectSlowConsumer, true)
		return enqueueResult{start: start, lost: lost}
	}
	c.pending = append(c.pending, p)
	return enqueueResult{queued: true}
}

// sendStaged queues the frames a routing lane staged for c during a batch of events, in order,
// under one lock and with at most one writer start: the writer then finds them together and
// writes them with one system call. It returns how many were queued (or held back).
func (c *Conn) sendStaged(arena []stagedFrame, first int32) int {
	n, dropped := 0, 0
	var r enqueueResult
	c.mu.Lock()
	for i := first; i >= 0; i = arena[i].next {
		if dropped > 0 {
			dropped++
			continue
		}
		rr := c.eventLocked(arena[i].pendingFrame)
		r.start = r.start || rr.start
		if !rr.queued {
			r.closing, r.lost = rr.closing, rr.lost
			dropped = 1
			continue
		}
		n++
	}
	c.mu.Unlock()
	c.enqueued(r)
	if dropped > 1 {
		// The frames after the one that found the connection closing (or closed it).
		c.hub.cfg.Metrics.Dropped(metrics.DropClosing, dropped-1)
	}
	return n
}

// Replaying reports whether the connection is still in replay mode.
func (c *Conn) Replaying() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replaying
}

// FinishReplay ends replay mode: the live events held back are queued in order, except those
// at or before last (the replay sent them already). It returns how many were dropped as
// duplicates.
func (c *Conn) FinishReplay(last history.Pos) int {
	c.mu.Lock()
	if !c.replaying {
		c.mu.Unlock()
		return 0
	}
	c.replaying = false
	c.replayed, c.hasReplayed = last, true
	pending := c.pending
	c.pending = nil
	dups := 0
	var r enqueueResult
	for _, p := range pending {
		if p.has && !last.Less(p.pos) {
			dups++
			continue
		}
		rr := c.enqueueLocked(p.f)
		r.start = r.start || rr.start
		if !rr.queued {
			r.closing, r.lost = rr.closing, max(r.lost, rr.lost)
			break
		}
	}
	r.queued = true
	c.mu.Unlock()
	c.enqueued(r)
	return dups
}

// hasRoom reports whether the queue is at most half full: a replay paces itself on the client.
func (c *Conn) hasRoom() bool {
	cfg := &c.hub.cfg
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) < cfg.MaxQueueFrames/2 && c.queued < cfg.MaxQueueBytes/2
}

// isClosing reports whether the connection is closing.
func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// waitRoom waits until the queue has room ([Conn.hasRoom]), the connection closes, ctx is done
// or, when limit is positive, limit has passed; it reports whether there is room.
func (c *Conn) waitRoom(ctx context.Context, limit time.Duration) bool {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var expired <-chan time.Time
	if limit > 0 {
		timer := time.NewTimer(limit)
		defer timer.Stop()
		expired = timer.C
	}
	for {
		if c.hasRoom() {
			return !c.isClosing()
		}
		if c.isClosing() {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-expired:
			return false
		case <-t.C:
		}
	}
}

// ping queues a ping frame; pings bypass the queue bounds.
func (c *Conn) ping() { c.control(pingFrame) }

// Pong queues a pong frame answering a client's ping with its payload (at most 125 bytes): as
// pings, pongs bypass the queue bounds, and go in order with the frames queued before them (the
// writer is the only one writing to the connection while it is open).
func (c *Conn) Pong(payload []byte) {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	c.control(frame(opPong, payload))
}

// control queues a control frame bypassing the queue bounds, unless the connection is closing.
func (c *Conn) control(f []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, f)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// Close starts a close handshake with code and reason after the frames already queued; reason
// is the metrics reason. Closing twice is a no-op.
func (c *Conn) Close(code int, text, reason string) {
	c.mu.Lock()
	start := c.startCloseLocked(code, text, reason, false)
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// startCloseLocked marks the connection closing and queues the close frame. With discard, queued
// frames are dropped and a blocked write is given only the close grace to finish. It reports
// whether the caller must start the writer.
func (c *Conn) startCloseLocked(code int, text, reason string, discard bool) bool {
	if c.closing {
		return false
	}
	c.closing = true
	c.closeReason = reason
	c.closeFrame = closeFrame(code, text)
	if discard {
		clear(c.queue)
		c.queue = c.queue[:0]
		c.queued = 0
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.hub.cfg.CloseGrace))
	}
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

// Abort closes the connection at once, without a close handshake (pong timeout, broken writes).
func (c *Conn) Abort(reason string) {
	c.mu.Lock()
	if c.closeReason == "" {
		c.closeReason = reason
	}
	c.closing = true
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queued = 0
	c.pending = nil
	c.mu.Unlock()
	_ = c.nc.Close()
}

// bufPool holds the buffers that coalesce several frames into one write on connections without
// vectored writes (TLS). Plain TCP connections use writev (net.Buffers) and copy nothing.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *Conn) writeLoop() {
	timeout := c.hub.cfg.WriteTimeout
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 {
			cf := c.closeFrame
			c.closeFrame = nil
			if cf == nil {
				c.writing = false
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			// The close frame goes last; the reader then waits up to the grace for the
			// client's close reply before the connection is torn down.
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.hub.cfg.CloseGrace))
			if _, err := c.nc.Write(cf); err != nil {
				c.Abort(metrics.DisconnectWriteError)
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(c.hub.cfg.CloseGrace))
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.queue = c.spare[:0]
		c.spare = nil
		c.queued = 0
		closing := c.closing
		c.mu.Unlock()

		if now := time.Now(); !closing && now.Sub(c.deadlineAt) > timeout/4 {
			_ = c.nc.SetWriteDeadline(now.Add(timeout))
			c.deadlineAt = now
		}
		err := c.writeBatch(batch)
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		c.mu.Unlock()
		if err != nil {
			c.Abort(metrics.DisconnectWriteError)
			c.mu.Lock()
			c.writing = false
			c.closeFrame = nil
			c.mu.Unlock()
			return
		}
	}
}

// writeBatch writes frames with as few system calls as possible: one frame as is, several with
// one writev on TCP, or coalesced into pooled buffers otherwise.
func (c *Conn) writeBatch(batch [][]byte) error {
	if len(batch) == 1 {
		_, err := c.nc.Write(batch[0])
		return err
	}
	if c.vectored {
		nb := net.Buffers(batch)
		_, err := nb.WriteTo(c.nc)
		return err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:0]
	for _, f := range batch {
		if len(buf) > 0 && len(buf)+len(f) > cap(buf) {
			if _, err := c.nc.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if len(f) > cap(buf) {
			if _, err := c.nc.Write(f); err != nil {
				return err
			}
			continue
		}
		buf = append(buf, f...)
	}
	*bp = buf[:0]
	if len(buf) > 0 {
		_, err := c.nc.Write(buf)
		return err
	}
	return nil
}

// LateDuplicates returns how many live events reached the connection after its replay ended
// though the replay had sent them, and were dropped.
func (c *Conn) LateDuplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lateDups
}
