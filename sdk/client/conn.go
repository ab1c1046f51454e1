package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/proto/opentera"
	teragatev1 "github.com/teragate/teragate/proto/teragate/v1"
)

// State is a [Conn]'s connection state, reported to [WithStateHook].
type State int

// The connection states.
const (
	// StateConnected: a websocket is open (first connection or a reconnection).
	StateConnected State = iota + 1
	// StateDisconnected: the websocket broke; the Conn will reconnect.
	StateDisconnected
	// StateClosed: the Conn ended (Close, close code 4000, or a refused login); see [Conn.Err].
	StateClosed
)

// String names the state.
func (s State) String() string {
	switch s {
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// Event is one websocket frame: a TeraEvent and its unpacked events.
type Event struct {
	// TeraEvent is the frame's event wrapper (header and packed events); nil for a ResumeFailed.
	TeraEvent *opentera.TeraEvent
	// Messages are the unpacked events (*opentera.UserEvent, *opentera.JoinSessionEvent, …), in
	// order; events of unknown types are left out. A ResumeFailed frame holds its
	// *teragatev1.ResumeFailed.
	Messages []proto.Message
	// Position is the event's position in the gateway's history, with [WithResume] ("" for the
	// greeting and other per-connection frames). Keep the last one processed to resume from it.
	Position string
	// ResumeFailed is set when the gateway could not resume from the position the Conn
	// reconnected with ([WithResume]): events may have been missed; resynchronise. Its Position
	// is where the stream continues from.
	ResumeFailed *teragatev1.ResumeFailed
}

// Conn is a websocket connection that reconnects by itself. Create it with [Client.Dial].
type Conn struct {
	c      *Client
	events chan *Event
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	ws     *websocket.Conn
	err    error
	closed bool
}

// Position returns the position of the last event the Conn delivered on [Conn.Events] (with
// [WithResume]), the one it resumes from when it reconnects; "" before the first.
func (cn *Conn) Position() string {
	cn.c.mu.Lock()
	defer cn.c.mu.Unlock()
	return cn.c.since
}

// Dial opens the websocket of a logged-in client and returns once it is open. The Conn then
// delivers events on [Conn.Events] and reconnects (logging in again for a new ticket) until ctx is
// done, [Conn.Close] is called, or the server ends it for good (close 4000, refused login).
func (c *Client) Dial(ctx context.Context) (*Conn, error) {
	if c.kind == "" {
		return nil, fmt.Errorf("%w: Dial needs a client created with Login", ErrNoCredentials)
	}
	ws, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	conn := &Conn{c: c, events: make(chan *Event, c.o.eventQueue), ctx: cctx, cancel: cancel, done: make(chan struct{}), ws: ws}
	// ctx done ends the Conn: cancel, and close the websocket a read is blocked on.
	stop := context.AfterFunc(ctx, func() {
		cancel()
		conn.mu.Lock()
		cur := conn.ws
		conn.mu.Unlock()
		_ = cur.Close()
	})
	c.hook(StateConnected, nil)
	go func() {
		defer stop()
		conn.run(ws)
	}()
	return conn, nil
}

func (c *Client) hook(s State, err error) {
	if c.o.stateHook != nil {
		c.o.stateHook(s, err)
	}
}

// open dials the unused websocket_url of the last login, or logs in again for a new one.
func (c *Client) open(ctx context.Context) (*websocket.Conn, error) {
	c.mu.Lock()
	u := c.wsURL
	c.wsURL = "" // tickets are single-use
	c.mu.Unlock()
	if u == "" {
		if err := c.login(ctx); err != nil {
			return nil, err
		}
		c.mu.Lock()
		u, c.wsURL = c.wsURL, ""
		c.mu.Unlock()
		if u == "" {
			return nil, ErrNoWebsocket
		}
	}
	if c.o.format == FormatProto {
		u += "&format=proto"
	}
	if c.o.resume {
		u += "&resume=1"
		c.mu.Lock()
		if c.since != "" {
			u += "&since=" + url.QueryEscape(c.since)
		}
		c.mu.Unlock()
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: c.o.tls, Proxy: http.ProxyFromEnvironment}
	ws, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: websocket: %w", &HTTPError{StatusCode: resp.StatusCode, Message: err.Error()})
		}
		return nil, fmt.Errorf("client: websocket: %w", err)
	}
	ws.SetReadLimit(16 << 20)
	return ws, nil
}

// Events returns the channel of received events. It is closed when the Conn ends.
func (cn *Conn) Events() <-chan *Event { return cn.events }

// Done is closed when the Conn has ended.
func (cn *Conn) Done() <-chan struct{} { return cn.done }

// Err returns why the Conn ended: nil while it runs or after [Conn.Close], an error matching
// [ErrDisconnected] after close code 4000, an [*HTTPError] for a refused login, or ctx's error.
func (cn *Conn) Err() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// Close closes the websocket and stops reconnecting. It waits for the Conn's goroutine to end.
func (cn *Conn) Close() error {
	cn.mu.Lock()
	cn.closed = true
	ws := cn.ws
	cn.mu.Unlock()
	cn.cancel()
	if ws != nil {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = ws.Close()
	}
	<-cn.done
	return nil
}

// run reads frames and reconnects until the Conn ends.
func (cn *Conn) run(ws *websocket.Conn) {
	defer close(cn.done)
	defer close(cn.events)
	log := cn.c.o.logger
	delay := cn.c.o.backoffMin
	for {
		err := cn.read(ws)
		_ = ws.Close()
		if stop, term := cn.terminal(err); stop {
			cn.finish(term)
			return
		}
		log.Info("websocket lost, reconnecting", "error", err)
		cn.c.hook(StateDisconnected, err)
		for {
			wait := delay/2 + rand.N(delay/2+1) // jitter: between half and all of the delay
			delay = min(2*delay, cn.c.o.backoffMax)
			select {
			case <-cn.ctx.Done():
				cn.finish(cn.ctx.Err())
				return
			case <-time.After(wait):
			}
			ws, err = cn.c.open(cn.ctx)
			if err == nil {
				break
			}
			var he *HTTPError
			if errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusBadRequest) {
				cn.finish(err) // the login or the URL is refused: retrying will not help
				return
			}
			log.Info("reconnection failed", "error", err, "next_in", delay)
		}
		delay = cn.c.o.backoffMin
		cn.mu.Lock()
		if cn.closed || cn.ctx.Err() != nil {
			cn.mu.Unlock()
			_ = ws.Close()
			cn.finish(cn.ctx.Err())
			return
		}
		cn.ws = ws
		cn.mu.Unlock()
		log.Info("websocket reconnected")
		cn.c.hook(StateConnected, nil)
	}
}

// terminal reports whether a read error ends the Conn, and with which error.
func (cn *Conn) terminal(err error) (bool, error) {
	cn.mu.Lock()
	closed := cn.closed
	cn.mu.Unlock()
	switch {
	case closed:
		return true, nil
	case cn.ctx.Err() != nil:
		return true, cn.ctx.Err()
	}
	var ce *CloseError
	if errors.As(err, &ce) && ce.Code == 4000 {
		return true, err
	}
	return false, nil
}

// finish records why the Conn ended (nothing after Close) and reports StateClosed.
func (cn *Conn) finish(err error) {
	cn.mu.Lock()
	if cn.closed {
		err = nil
	}
	cn.err = err
	cn.mu.Unlock()
	cn.c.hook(StateClosed, err)
}

// read delivers frames until the websocket fails.
func (cn *Conn) read(ws *websocket.Conn) error {
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return &CloseError{Code: ce.Code, Text: ce.Text}
			}
			return err
		}
		ev, err := DecodeFrame(mt == websocket.BinaryMessage, data)
		if err != nil {
			cn.c.o.logger.Warn("undecodable frame", "error", err)
			continue
		}
		select {
		case cn.events <- ev:
		case <-cn.ctx.Done():
			return cn.ctx.Err()
		}
		// Delivered: the caller will process it, so a reconnection resumes after it.
		pos := ev.Position
		if ev.ResumeFailed != nil {
			pos = ev.ResumeFailed.GetPosition()
		}
		if pos != "" {
			cn.c.mu.Lock()
			cn.c.since = pos
			cn.c.mu.Unlock()
		}
	}
}

var jsonIn = protojson.UnmarshalOptions{DiscardUnknown: true}

// DecodeFrame decodes one server frame: OpenTera's JSON TeraMessage (binary false) or a binary
// protobuf TeraMessage (?format=proto), with teragate's event position when it has one, or a
// teragate ResumeFailed.
func DecodeFrame(binary bool, data []byte) (*Event, error) {
	// PositionedMessage is TeraMessage plus the position (field 1000, or "position" in JSON).
	var tm teragatev1.PositionedMessage
	var err error
	if binary {
		err = proto.Unmarshal(data, &tm)
	} else {
		err = jsonIn.Unmarshal(data, &tm)
	}
	if err != nil {
		return nil, fmt.Errorf("client: decode TeraMessage: %w", err)
	}
	te := &opentera.TeraEvent{}
	if tm.GetMessage() == nil {
		return nil, errors.New("client: frame without a message")
	}
	if rf := (&teragatev1.ResumeFailed{}); tm.GetMessage().MessageIs(rf) {
		if err := tm.GetMessage().UnmarshalTo(rf); err != nil {
			return nil, fmt.Errorf("client: decode ResumeFailed: %w", err)
		}
		return &Event{Messages: []proto.Message{rf}, ResumeFailed: rf}, nil
	}
	if err := tm.GetMessage().UnmarshalTo(te); err != nil {
		return nil, fmt.Errorf("client: decode TeraEvent: %w", err)
	}
	ev := &Event{TeraEvent: te, Messages: make([]proto.Message, 0, len(te.GetEvents())), Position: tm.GetPosition()}
	for _, a := range te.GetEvents() {
		if m, err := a.UnmarshalNew(); err == nil {
			ev.Messages = append(ev.Messages, m)
		}
	}
	return ev, nil
}
