package hub

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
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
}

// ID returns the connection's process-unique id.
func (c *Conn) ID() uint64 { return c.id }

// Kind returns the connected entity's kind.
func (c *Conn) Kind() directory.Kind { return c.kind }

// UUID returns the connected entity's uuid.
func (c *Conn) UUID() string { return c.uuid }

// Format returns the connection's wire format.
func (c *Conn) Format() Format { return c.format }

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
	cfg := &c.hub.cfg
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		cfg.Metrics.Dropped(metrics.DropClosing, 1)
		return false
	}
	if len(c.queue) >= cfg.MaxQueueFrames || c.queued+len(f) > cfg.MaxQueueBytes {
		lost := len(c.queue) + 1
		start := c.startCloseLocked(CloseSlowConsumer, "slow consumer", metrics.DisconnectSlowConsumer, true)
		c.mu.Unlock()
		if start {
			go c.writeLoop()
		}
		cfg.Metrics.Dropped(metrics.DropQueueFull, lost)
		cfg.Logger.Warn("slow consumer disconnected", "kind", c.kind, "uuid", c.uuid, "conn", c.id, "lost_frames", lost)
		return false
	}
	c.queue = append(c.queue, f)
	c.queued += len(f)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return true
}

// ping queues a ping frame; pings bypass the queue bounds.
func (c *Conn) ping() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, pingFrame)
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

		if !closing {
			_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
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
