package transport

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/hub"
)

// NotAllowed is the text OpenTera answers to any data a client sends on its websocket.
const NotAllowed = "Not allowed to send message"

var notAllowedFrame = hub.TextFrame([]byte(NotAllowed))

// Config configures a [Transport].
type Config struct {
	// ReadLimit is the largest frame a client may send, in bytes. Zero value means 4096.
	ReadLimit int64
	// HandshakeTimeout bounds the websocket handshake. Zero value means 10s.
	HandshakeTimeout time.Duration
	// CheckOrigin decides whether a browser Origin is accepted. Nil accepts every origin: the
	// single-use ticket in the URL is what authenticates (OpenTera's web portals connect across
	// origins).
	CheckOrigin func(r *http.Request) bool
	// Logger is the transport's logger. Nil means no logging.
	Logger hclog.Logger
}

// Hooks are called around a connection's life.
type Hooks struct {
	// Opened runs once the connection is registered in the hub (so it already receives events),
	// before its read loop starts. Publish the CONNECTED event here.
	Opened func(c *hub.Conn)
	// Closed runs once after the connection left the hub. Publish the DISCONNECTED event here.
	Closed func(c *hub.Conn)
}

// Transport upgrades requests to websocket connections of the hub.
type Transport struct {
	cfg Config
	hub *hub.Hub
	up  websocket.Upgrader
	log hclog.Logger
}

// New returns a transport registering connections in h.
func New(h *hub.Hub, cfg Config) *Transport {
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 4096
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.CheckOrigin == nil {
		cfg.CheckOrigin = func(*http.Request) bool { return true }
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	t := &Transport{cfg: cfg, hub: h, log: cfg.Logger}
	t.up = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		// gorilla only does the handshake (the hub writes frames, readFrames reads them): its
		// Conn reuses net/http's hijacked reader (ReadBufferSize 0) and pins no write buffer
		// (a pool), and it is dropped once the upgrade is done.
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     cfg.CheckOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	return t
}

// IsUpgrade reports whether r asks for a websocket upgrade.
func IsUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// Serve upgrades the request of an authenticated entity and returns at once; the connection lives
// on in its own read goroutine. On a failed upgrade gorilla has already answered the request.
func (t *Transport) Serve(w http.ResponseWriter, r *http.Request, kind directory.Kind, uuid string, format hub.Format, access directory.Access, hooks Hooks) error {
	return t.ServeWith(w, r, kind, uuid, access, hub.ConnOptions{Format: format}, hooks)
}

// ServeWith is [Transport.Serve] with the connection's options (positioned frames, replay mode).
func (t *Transport) ServeWith(w http.ResponseWriter, r *http.Request, kind directory.Kind, uuid string, access directory.Access, o hub.ConnOptions, hooks Hooks) error {
	ws, err := t.up.Upgrade(w, r, nil)
	if err != nil {
		return err
	}
	// gorilla's Conn is left here: the hub writes to the connection and readFrames reads it
	// (gorilla has read nothing past the handshake).
	nc := ws.NetConn()
	c := t.hub.RegisterWith(nc, kind, uuid, access, o)
	if hooks.Opened != nil {
		hooks.Opened(c)
	}
	go t.readLoop(nc, c, hooks)
	return nil
}

// readLoop is a connection's one goroutine while it is idle: it reads the client's frames until
// the connection ends, then takes it out of the hub.
func (t *Transport) readLoop(nc net.Conn, c *hub.Conn, hooks Hooks) {
	f := &frameReader{nc: nc, buf: make([]byte, readBufSize)}
	err := t.readFrames(f, c)
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, hub.CloseDisconnect, hub.CloseSlowConsumer) {
		t.log.Debug("websocket read ended", "kind", c.Kind(), "uuid", c.UUID(), "conn", c.ID(), "error", err)
	}
	_ = nc.Close()
	if t.hub.Remove(c) && hooks.Closed != nil {
		hooks.Closed(c)
	}
}
