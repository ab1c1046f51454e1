package loadtest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// BareMode selects how the bare baseline writes frames.
type BareMode string

const (
	// BarePrepared builds one websocket.PreparedMessage per published message
	// and has one writer goroutine per connection write each queued frame with
	// its own write system call: the bare one-write-per-frame loop.
	BarePrepared BareMode = "prepared"
	// BareBatched frames each published message once (server frames are not
	// masked, so the bytes are the same for every connection) and has the
	// writer drain everything queued and write it with one writev system
	// call: several frames per write, each frame still one message.
	BareBatched BareMode = "batched"
)

// ErrBareMode reports an unknown BareMode.
var ErrBareMode = errors.New("loadtest: unknown bare mode")

// BareFrameHeader is the request header that marks a POST /api/events body
// as a ready-made frame payload for the bare server. The bench always sets
// it; the bare server broadcasts the body unchanged either way.
const BareFrameHeader = "X-Bare-Frame"

// BareConfig configures a BareServer.
type BareConfig struct {
	// Mode is how frames are written. Zero value means BarePrepared.
	Mode BareMode
	// PingInterval is how often every connection is pinged (by one shared
	// ticker, not a timer per connection). Zero value means 10s.
	PingInterval time.Duration
	// PongTimeout closes a connection that sent nothing (no pong) for this
	// long. Zero value means 30s.
	PongTimeout time.Duration
	// MaxQueue is the most frames queued per connection; more are dropped
	// and counted. Zero value means 4096.
	MaxQueue int
	// LazyWriter starts a connection's writer goroutine when its queue goes
	// non-empty and ends it when the queue is drained, instead of keeping
	// one parked per connection: idle connections then hold no writer
	// goroutine (DESIGN.md §A "Idle cost"). Zero value: a permanent writer,
	// the classic bare loop.
	LazyWriter bool
}

// BareStats are the counters a BareServer exposes at GET /stats.
type BareStats struct {
	// Conns is the number of open websocket connections.
	Conns int64 `json:"conns"`
	// Published is the number of messages posted to /api/events.
	Published int64 `json:"published"`
	// Enqueued is the number of frames queued to connections.
	Enqueued int64 `json:"enqueued"`
	// Written is the number of frames written to connections.
	Written int64 `json:"written"`
	// Dropped is the number of frames dropped because a queue was full.
	Dropped int64 `json:"dropped"`
	// Writes is the number of write system calls (writev counts once).
	Writes int64 `json:"writes"`
}

// BareServer is the bare gorilla broadcast baseline: websocket
// upgrade at /ws without authentication (`?format=proto` selects binary
// frames), and POST /api/events broadcasting the body as one frame to every
// connection of the matching format (binary when the Content-Type is
// application/x-protobuf, text otherwise). It also answers GET /healthz and
// GET /stats (BareStats as JSON).
//
// Connections are tuned for idle memory as STYLE.md measured: a 1 KiB read
// buffer, a shared write buffer pool, the HTTP handler returns after the
// upgrade and the read loop runs in its own goroutine. Each connection has a
// writer goroutine and a queue; one shared ticker pings every connection.
type BareServer struct {
	cfg      BareConfig
	upgrader websocket.Upgrader

	mu      sync.RWMutex
	conns   map[*bareConn]struct{}
	closing bool

	published, enqueued, written, dropped, writes atomic.Int64

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewBareServer returns a server ready to serve; its ping ticker runs until
// Close.
func NewBareServer(cfg BareConfig) (*BareServer, error) {
	if cfg.Mode == "" {
		cfg.Mode = BarePrepared
	}
	if cfg.Mode != BarePrepared && cfg.Mode != BareBatched {
		return nil, fmt.Errorf("%w: %q", ErrBareMode, cfg.Mode)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = 30 * time.Second
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 4096
	}
	s := &BareServer{
		cfg: cfg,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     func(*http.Request) bool { return true },
		},
		conns: map[*bareConn]struct{}{},
		done:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.pingLoop()
	return s, nil
}

// ServeHTTP routes /ws, /api/events, /healthz and /stats.
func (s *BareServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ws":
		s.serveWS(w, r)
	case "/api/events":
		s.servePublish(w, r)
	case "/healthz":
		_, _ = io.WriteString(w, "ok\n")
	case "/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	default:
		http.NotFound(w, r)
	}
}

// Stats returns the current counters.
func (s *BareServer) Stats() BareStats {
	s.mu.RLock()
	n := len(s.conns)
	s.mu.RUnlock()
	return BareStats{
		Conns: int64(n), Published: s.published.Load(), Enqueued: s.enqueued.Load(),
		Written: s.written.Load(), Dropped: s.dropped.Load(), Writes: s.writes.Load(),
	}
}

// Close closes every connection and stops the server's goroutines. It does
// not close the HTTP listener, which belongs to the caller.
func (s *BareServer) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	s.closing = true
	conns := make([]*bareConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close() // may take s.mu to remove c
	}
	s.wg.Wait()
}

func (s *BareServer) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade already replied
	}
	c := &bareConn{
		s: s, ws: ws, nc: ws.NetConn(), binary: r.URL.Query().Get("format") == "proto",
		slot: int(slotCounter.Add(1)),
	}
	if !s.cfg.LazyWriter {
		c.wake = make(chan struct{}, 1)
	}
	_ = ws.SetReadDeadline(time.Now().Add(s.cfg.PongTimeout))
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(s.cfg.PongTimeout))
	})
	if s.cfg.Mode == BareBatched {
		// Only the writer goroutine writes to the connection: gorilla's
		// default handlers would write control frames behind its back.
		ws.SetPingHandler(func(string) error { return nil })
		ws.SetCloseHandler(func(int, string) error { return nil })
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	if s.cfg.LazyWriter {
		s.wg.Add(1) // under mu: never concurrent with Close's Wait
		go c.readLoop()
	} else {
		s.wg.Add(2)
		go c.readLoop()
		go c.writeLoop()
	}
	s.mu.Unlock()
	// Return now so net/http releases its per-request buffers (gorilla #761).
}

func (s *BareServer) servePublish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	binaryFrame := r.Header.Get("Content-Type") == "application/x-protobuf"
	s.broadcast(body, binaryFrame)
	w.WriteHeader(http.StatusNoContent)
}

// broadcast queues payload as one frame to every connection of its format.
func (s *BareServer) broadcast(payload []byte, binaryFrame bool) {
	s.published.Add(1)
	var it bareItem
	msgType := websocket.TextMessage
	if binaryFrame {
		msgType = websocket.BinaryMessage
	}
	if s.cfg.Mode == BareBatched {
		it.frame = appendFrame(nil, byte(msgType), payload)
	} else {
		pm, err := websocket.NewPreparedMessage(msgType, payload)
		if err != nil {
			return
		}
		it.pm = pm
	}
	var n, dropped int64
	s.mu.RLock()
	for c := range s.conns {
		if c.binary != binaryFrame {
			continue
		}
		if c.enqueue(it) {
			n++
		} else {
			dropped++
		}
	}
	s.mu.RUnlock()
	s.enqueued.Add(n)
	s.dropped.Add(dropped)
}

// pingLoop pings every connection once per interval, spread over it in
// small groups, from a single goroutine.
func (s *BareServer) pingLoop() {
	defer s.wg.Done()
	const slots = 10
	t := time.NewTicker(s.cfg.PingInterval / slots)
	defer t.Stop()
	slot := 0
	ping := bareItem{ping: true, frame: appendFrame(nil, websocket.PingMessage, nil)}
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.RLock()
		for c := range s.conns {
			if c.slot%slots == slot {
				c.enqueue(ping)
			}
		}
		s.mu.RUnlock()
		slot = (slot + 1) % slots
	}
}

func (s *BareServer) remove(c *bareConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

var slotCounter atomic.Uint32

// bareItem is one queued frame: a prepared message (prepared mode) or
// ready-made frame bytes (batched mode, and pings in both modes).
type bareItem struct {
	pm    *websocket.PreparedMessage
	frame []byte
	ping  bool
}

type bareConn struct {
	s      *BareServer
	ws     *websocket.Conn
	nc     net.Conn
	binary bool
	slot   int

	mu      sync.Mutex
	queue   []bareItem
	closed  bool
	writing bool          // a lazy writer goroutine is running
	wake    chan struct{} // permanent writer only
}

// enqueue adds it to the queue; false when the queue is full or closed.
func (c *bareConn) enqueue(it bareItem) bool {
	c.mu.Lock()
	if c.closed || len(c.queue) >= c.s.cfg.MaxQueue {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, it)
	if c.s.cfg.LazyWriter {
		if !c.writing {
			c.writing = true
			go c.drainLazy()
		}
	} else {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	return true
}

// close marks the connection closed. The permanent writer closes the socket
// when it sees it; with lazy writers the socket is closed here.
func (c *bareConn) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	if !already && !c.s.cfg.LazyWriter {
		close(c.wake)
	}
	c.mu.Unlock()
	if !already && c.s.cfg.LazyWriter {
		c.s.remove(c)
		_ = c.nc.Close()
	}
}

func (c *bareConn) readLoop() {
	defer c.s.wg.Done()
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			break
		}
		// Inbound data is ignored (the gateway refuses it).
	}
	c.close()
}

// take swaps the queue out; it returns nil when nothing is queued.
func (c *bareConn) take(spare []bareItem) []bareItem {
	batch := c.queue
	if len(batch) == 0 {
		return nil
	}
	c.queue = spare[:0]
	if cap(c.queue) > 64 && len(batch) < 16 {
		c.queue = nil // let a burst's big queue go
	}
	return batch
}

// writeLoop is the permanent writer goroutine of a connection.
func (c *bareConn) writeLoop() {
	defer c.s.wg.Done()
	defer func() {
		c.s.remove(c)
		_ = c.nc.Close()
	}()
	var w bareWriter
	var spare []bareItem
	for range c.wake {
		c.mu.Lock()
		batch := c.take(spare)
		c.mu.Unlock()
		if batch == nil {
			continue
		}
		if err := w.write(c, batch); err != nil {
			c.close()
			return
		}
		clear(batch)
		spare = batch
	}
}

// drainLazy is a writer goroutine started when the queue goes non-empty; it
// exits when the queue is drained.
func (c *bareConn) drainLazy() {
	var w bareWriter
	var spare []bareItem
	for {
		c.mu.Lock()
		batch := c.take(spare)
		if batch == nil || c.closed {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if err := w.write(c, batch); err != nil {
			c.close()
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			return
		}
		clear(batch)
		spare = batch
	}
}

// bareWriter writes batches of queued frames for one writer goroutine.
type bareWriter struct {
	bufs net.Buffers
}

func (w *bareWriter) write(c *bareConn, batch []bareItem) error {
	if c.s.cfg.Mode == BareBatched {
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		w.bufs = w.bufs[:0]
		for _, it := range batch {
			w.bufs = append(w.bufs, it.frame)
		}
		wb := w.bufs // WriteTo consumes its receiver
		if _, err := wb.WriteTo(c.nc); err != nil {
			return err
		}
		c.s.writes.Add(1)
	} else {
		_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for _, it := range batch {
			var err error
			if it.ping {
				err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second))
			} else {
				err = c.ws.WritePreparedMessage(it.pm)
			}
			if err != nil {
				return err
			}
		}
		c.s.writes.Add(int64(len(batch)))
	}
	var frames int64
	for _, it := range batch {
		if !it.ping {
			frames++
		}
	}
	c.s.written.Add(frames)
	return nil
}

// appendFrame appends an unmasked, final websocket frame of the given opcode
// (RFC 6455 §5.2) holding payload.
func appendFrame(b []byte, opcode byte, payload []byte) []byte {
	b = append(b, 0x80|opcode)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

var _ http.Handler = (*BareServer)(nil)
