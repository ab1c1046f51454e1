package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// stormClient is a client of a storm run: it reconnects by itself.
type stormClient struct {
	c      *client
	mu     sync.Mutex   // guards c.ws after the first open
	isOpen atomic.Bool  // a websocket is open
	dropAt atomic.Int64 // when the storm dropped the open websocket (Unix ns; 0: not dropped)

	// Owned by the client's goroutine (read once it ended).
	backed   bool       // came back after the storm
	ivals    []interval // when each of its websockets was live
	received int64      // bench events received while live
	early    int64      // those of them received on a socket opened before the storm

	// With StormConfig.Resume (owned by the client's goroutine too).
	firstLive float64             // when its first websocket was live (Unix s)
	lastPos   string              // position of the last frame received
	seen      map[string]struct{} // positions of the bench events received
	unique    int64               // bench events since firstLive received, once each
	dups      int64               // bench events received again
	failed    int64               // ResumeFailed frames
}

// interval is a span of Unix seconds [from, to) during which a websocket was
// live; early marks a websocket opened before the storm.
type interval struct {
	from, to float64
	early    bool
}

func (sc *stormClient) conn() *websocket.Conn {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.c.ws
}

// runClient is a storm client's goroutine: it reads, and reconnects when
// the websocket breaks, until the storm stops.
func (s *storm) runClient(c *client) {
	defer s.h.readers.Done()
	sc := s.clients[c.idx]
	sc.isOpen.Store(true)
	ws := c.ws
	for ws != nil {
		s.read(sc, ws)
		if s.stopping.Load() {
			return
		}
		ws = s.reconnect(sc)
	}
}

// read counts the frames of ws until it fails, then records the span during
// which ws was live: from its first frame (the server greets every new
// socket with its entity's CONNECTED event, so the socket is registered by
// then) to its end. Bench events published before the span are not counted.
func (s *storm) read(sc *stormClient, ws *websocket.Conn) {
	h := s.h
	sh := &h.shards[sc.c.idx%numShards]
	buf := make([]byte, 0, 512)
	early := s.at.Load() == 0
	var live float64
	for {
		typ, b, err := readFrame(ws, buf)
		buf = b
		if err != nil {
			s.ended(sc, ws, interval{from: live, early: early}, err)
			return
		}
		now := time.Now()
		if live == 0 {
			live = unixSeconds(now)
			if sc.firstLive == 0 {
				sc.firstLive = live
			}
		}
		t, ours, ok := parseFrame(b, typ == websocket.BinaryMessage)
		if sc.seen != nil {
			s.resumeFrame(sc, b, typ == websocket.BinaryMessage, t, ours && ok)
		}
		switch {
		case !ours:
			sh.other.Add(1)
			continue
		case !ok:
			sh.bad.Add(1)
			continue
		case t < live:
			sh.outside.Add(1)
			continue
		}
		sh.received.Add(1)
		sh.bytes.Add(int64(len(b)))
		sc.received++
		if early {
			sc.early++
		}
		h.hist.Record(sc.c.idx, uint64(max(0, now.UnixNano()-int64(t*1e9))/1000))
	}
}

// ended records the end of ws, live during iv (from 0: never), at the
// storm's drop when it dropped it, now otherwise.
func (s *storm) ended(sc *stormClient, ws *websocket.Conn, iv interval, err error) {
	_ = ws.Close()
	sc.isOpen.Store(false)
	s.h.open.Add(-1)
	end := unixSeconds(time.Now())
	if d := sc.dropAt.Swap(0); d != 0 {
		end = float64(d) / 1e9
	}
	if iv.from != 0 {
		iv.to = max(iv.from, end)
		sc.ivals = append(sc.ivals, iv)
	}
	if s.at.Load() == 0 && !s.stopping.Load() {
		s.h.disconnected.Add(1)
		s.h.noteErr(fmt.Errorf("loadtest: %s client %d: read before the storm: %w", sc.c.kind, sc.c.idx, err))
	}
}

// reconnect logs in and opens a websocket again, with sdk/client's backoff,
// until it succeeds (it returns the websocket) or the storm stops (nil).
func (s *storm) reconnect(sc *stormClient) *websocket.Conn {
	delay := s.cfg.BackoffMin
	for {
		var wait time.Duration
		wait, delay = backoff(delay, s.cfg.BackoffMax)
		if sleepCtx(s.ctx, wait) != nil {
			return nil
		}
		s.attempts.Add(1)
		tmp := &client{idx: sc.c.idx, kind: sc.c.kind, entity: sc.c.entity, query: sc.c.query}
		if sc.seen != nil && sc.lastPos != "" {
			tmp.query = "resume=1&since=" + url.QueryEscape(sc.lastPos)
		}
		if err := s.d.open(s.ctx, tmp); err != nil {
			s.failed(err)
			continue
		}
		if !s.adopt(sc, tmp.ws) {
			return nil
		}
		return tmp.ws
	}
}

// backoff returns how long to wait before the next attempt and the delay
// after it, as sdk/client's Conn does: a wait drawn between half and all of
// delay, and the delay doubled up to limit.
func backoff(delay, limit time.Duration) (wait, next time.Duration) {
	return delay/2 + rand.N(delay/2+1), min(2*delay, limit)
}

// adopt makes ws sc's websocket, unless the storm is stopping.
func (s *storm) adopt(sc *stormClient, ws *websocket.Conn) bool {
	sc.mu.Lock()
	if s.stopping.Load() {
		sc.mu.Unlock()
		abort(ws)
		return false
	}
	sc.c.ws = ws
	sc.dropAt.Store(0)
	sc.isOpen.Store(true)
	sc.mu.Unlock()
	s.h.opens.Add(1)
	s.h.open.Add(1)
	s.reconnects.Add(1)
	s.markBack(sc)
	return true
}

// markBack counts sc back, once, when it reconnected after the storm.
func (s *storm) markBack(sc *stormClient) {
	at := s.at.Load()
	if at == 0 || sc.backed {
		return
	}
	sc.backed = true
	since := time.Duration(time.Now().UnixNano() - at)
	s.mu.Lock()
	s.backAt = append(s.backAt, since)
	s.mu.Unlock()
	if s.back.Add(1) >= s.target {
		s.allBackOnce.Do(func() { close(s.allBack) })
	}
}

// failed counts a failed reconnection attempt: by status when the server
// answered, as a transport error when it could not be reached.
func (s *storm) failed(err error) {
	if s.stopping.Load() {
		return
	}
	var se *StatusError
	if !errors.As(err, &se) {
		s.transportErrs.Add(1)
		return
	}
	op := "websocket"
	if se.Login {
		op = "login"
	}
	s.mu.Lock()
	s.statuses[fmt.Sprintf("%s %d", op, se.Code)]++
	s.mu.Unlock()
	s.h.noteErr(err)
}

// dropAll closes every open websocket abruptly, at once.
func (s *storm) dropAll() {
	for _, sc := range s.clients {
		sc.mu.Lock()
		ws := sc.c.ws
		if ws != nil && sc.isOpen.Load() {
			sc.dropAt.Store(time.Now().UnixNano())
		}
		sc.mu.Unlock()
		if ws != nil {
			abort(ws)
		}
	}
}

// abort closes ws's TCP connection with a reset: no close frame, no FIN
// handshake, nothing left in TIME_WAIT.
func abort(ws *websocket.Conn) {
	if tc, ok := ws.NetConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = ws.Close()
}

// resumeFrame does a resuming client's accounting of a frame: its position
// becomes the one to resume from, and a bench event published since the
// client's first socket was live counts once (again: a duplicate).
func (s *storm) resumeFrame(sc *stormClient, b []byte, binary bool, t float64, bench bool) {
	if bytes.Contains(b, resumeFailedType) {
		sc.failed++
	}
	pos := framePosition(b, binary)
	if pos == "" {
		return
	}
	sc.lastPos = pos
	if !bench || t < sc.firstLive {
		return
	}
	if _, dup := sc.seen[pos]; dup {
		sc.dups++
		return
	}
	sc.seen[pos] = struct{}{}
	sc.unique++
}

var (
	resumeFailedType = []byte("teragate.v1.ResumeFailed")
	positionKey      = []byte(`"position"`)
)

// positionField is the field of TeraMessage holding the event's position in
// binary frames (hub.PositionField).
const positionField = 1000

// framePosition returns the position of a frame: the last "position" string
// of a JSON frame (a ResumeFailed's is in its message), field 1000 of a
// binary TeraMessage; "" without one.
func framePosition(b []byte, binary bool) string {
	if binary {
		v, ok := findBytesField(b, positionField)
		if !ok {
			return ""
		}
		return string(v)
	}
	i := bytes.LastIndex(b, positionKey)
	if i < 0 {
		return ""
	}
	b = bytes.TrimLeft(b[i+len(positionKey):], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return ""
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '"' {
		return ""
	}
	j := bytes.IndexByte(b[1:], '"')
	if j < 0 {
		return ""
	}
	return string(b[1 : 1+j])
}
