package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Kind is a websocket client type.
type Kind int

// The client types, in the order Mix lists them.
const (
	KindUser Kind = iota
	KindParticipant
	KindDevice
)

// String returns the type's name as the login paths spell it.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindParticipant:
		return "participant"
	case KindDevice:
		return "device"
	}
	return "kind" + strconv.Itoa(int(k))
}

// ErrMix reports a bad client mix specification.
var ErrMix = errors.New("loadtest: bad client mix")

// Mix is how many clients of each type to open.
type Mix struct {
	Users, Participants, Devices int
}

// Total returns the number of clients.
func (m Mix) Total() int { return m.Users + m.Participants + m.Devices }

// ParseMix splits n clients over the types listed in spec, a comma-separated
// list of "user", "participant", "device", each optionally weighted with
// ":W" or "=W" (default weight 1). Rounding leftovers go to the first types
// listed. Example: ParseMix("user:2,device", 30) gives 20 users and 10
// devices.
func ParseMix(spec string, n int) (Mix, error) {
	if n < 0 {
		return Mix{}, fmt.Errorf("%w: %d clients", ErrMix, n)
	}
	type part struct {
		k Kind
		w int
	}
	var parts []part
	total := 0
	seen := map[Kind]bool{}
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, ws, hasW := strings.Cut(f, ":")
		if !hasW {
			name, ws, hasW = strings.Cut(f, "=")
		}
		w := 1
		if hasW {
			v, err := strconv.Atoi(ws)
			if err != nil || v < 0 {
				return Mix{}, fmt.Errorf("%w: weight %q", ErrMix, ws)
			}
			w = v
		}
		var k Kind
		switch strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), "s") {
		case "user":
			k = KindUser
		case "participant":
			k = KindParticipant
		case "device":
			k = KindDevice
		default:
			return Mix{}, fmt.Errorf("%w: unknown type %q", ErrMix, name)
		}
		if seen[k] {
			return Mix{}, fmt.Errorf("%w: type %q listed twice", ErrMix, name)
		}
		seen[k] = true
		parts = append(parts, part{k, w})
		total += w
	}
	if total == 0 {
		return Mix{}, fmt.Errorf("%w: no type with a positive weight in %q", ErrMix, spec)
	}
	counts := map[Kind]int{}
	given := 0
	for _, p := range parts {
		c := n * p.w / total
		counts[p.k] = c
		given += c
	}
	for i := 0; given < n; i = (i + 1) % len(parts) {
		if parts[i].w > 0 {
			counts[parts[i].k]++
			given++
		}
	}
	return Mix{Users: counts[KindUser], Participants: counts[KindParticipant], Devices: counts[KindDevice]}, nil
}

// counterShard holds the delivery counters of the clients mapped to it.
type counterShard struct {
	received atomic.Int64 // bench frames of events published in the window
	bytes    atomic.Int64 // their payload bytes
	outside  atomic.Int64 // bench frames of events published outside the window
	other    atomic.Int64 // frames that are not bench events (presence...)
	bad      atomic.Int64 // bench frames without a readable time
	_        [24]byte
}

// client is one websocket client of the harness.
type client struct {
	idx    int
	kind   Kind
	entity int // index in the directory's list of that kind
	ws     *websocket.Conn
	query  string // appended to the websocket_url's query (resume=1&since=…)
}

// loginResponse holds the login reply fields the bench uses.
type loginResponse struct {
	WebsocketURL string `json:"websocket_url"`
	UserToken    string `json:"user_token"`
}

// StatusError is a login or websocket handshake the server answered with a
// status other than 200 (login) or 101 (websocket).
type StatusError struct {
	// Op is the request ("GET /api/device/login", "websocket ws://…").
	Op string
	// Code is the HTTP status.
	Code int
	// Body is the start of the answer's body.
	Body string
	// Login is true for a login request, false for a websocket handshake.
	Login bool
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("loadtest: %s: HTTP %d: %s", e.Op, e.Code, e.Body)
}

// dialer opens websocket connections for the clients.
type dialer struct {
	base   *url.URL
	target Target
	format Format
	dir    *Directory
	http   *http.Client
	ws     *websocket.Dialer
	// userTokens, when not nil, holds each user's token (by entity index):
	// users log in with it instead of their password.
	userTokens []string
}

func newDialer(base *url.URL, target Target, format Format, dir *Directory, concurrency int, tlsConf *tls.Config) *dialer {
	tr := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     tlsConf,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	return &dialer{
		base: base, target: target, format: format, dir: dir,
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		ws: &websocket.Dialer{
			Proxy:            nil,
			TLSClientConfig:  tlsConf,
			HandshakeTimeout: 30 * time.Second,
			ReadBufferSize:   4096,
			WriteBufferPool:  &sync.Pool{},
		},
	}
}

// open logs client c in (gateway) and opens its websocket.
func (d *dialer) open(ctx context.Context, c *client) error {
	var wsURL string
	if d.target == TargetBare {
		u := *d.base
		u.Scheme = wsScheme(u.Scheme)
		u.Path = "/ws"
		u.RawQuery = "format=" + string(d.format)
		wsURL = u.String()
	} else {
		lr, err := d.login(ctx, c)
		if err != nil {
			return err
		}
		wsURL = lr.WebsocketURL
		if d.format == FormatProto {
			wsURL = addQuery(wsURL, "format=proto")
		}
		if c.query != "" {
			wsURL = addQuery(wsURL, c.query)
		}
	}
	ws, resp, err := d.ws.DialContext(ctx, wsURL, nil)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
			_ = resp.Body.Close()
			return &StatusError{Op: "websocket " + redactTicket(wsURL), Code: resp.StatusCode, Body: truncate(b, 200)}
		}
		return fmt.Errorf("loadtest: websocket %s: %w", redactTicket(wsURL), err)
	}
	c.ws = ws
	return nil
}

// login calls the login endpoint of c's type and returns its reply.
func (d *dialer) login(ctx context.Context, c *client) (*loginResponse, error) {
	u := *d.base
	var req *http.Request
	var err error
	switch c.kind {
	case KindUser:
		u.Path = "/api/user/login"
		u.RawQuery = "with_websocket=true"
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err == nil {
			if d.userTokens != nil {
				req.Header.Set("Authorization", "OpenTera "+d.userTokens[c.entity])
			} else {
				usr := d.dir.Users[c.entity]
				req.SetBasicAuth(usr.Username, d.dir.Password)
			}
		}
	case KindParticipant:
		u.Path = "/api/participant/login"
		u.RawQuery = "with_websocket=true"
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err == nil {
			req.Header.Set("Authorization", "OpenTera "+d.dir.Participants[c.entity].Token)
		}
	default:
		u.Path = "/api/device/login"
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err == nil {
			req.Header.Set("Authorization", "OpenTera "+d.dir.Devices[c.entity].Token)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("loadtest: login request: %w", err)
	}
	return d.do(req, c.kind)
}

// userToken logs user i in by password (no websocket) and returns its user_token.
func (d *dialer) userToken(ctx context.Context, i int) (string, error) {
	u := *d.base
	u.Path = "/api/user/login"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("loadtest: login request: %w", err)
	}
	req.SetBasicAuth(d.dir.Users[i].Username, d.dir.Password)
	lr, err := d.do(req, KindUser)
	if err != nil {
		return "", err
	}
	if lr.UserToken == "" {
		return "", fmt.Errorf("loadtest: GET %s: no user_token in the reply", u.Path)
	}
	return lr.UserToken, nil
}

// do sends a login request and decodes its reply.
func (d *dialer) do(req *http.Request, kind Kind) (*loginResponse, error) {
	u := req.URL
	withWS := req.URL.Query().Has("with_websocket") || kind != KindUser
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %s login: %w", kind, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("loadtest: %s login: %w", kind, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Op: "GET " + u.Path, Code: resp.StatusCode, Body: truncate(body, 200), Login: true}
	}
	lr := &loginResponse{}
	if err := json.Unmarshal(body, lr); err != nil {
		return nil, fmt.Errorf("loadtest: GET %s: decode reply: %w", u.Path, err)
	}
	if withWS && lr.WebsocketURL == "" {
		return nil, fmt.Errorf("loadtest: GET %s: no websocket_url in reply %s", u.Path, truncate(body, 200))
	}
	return lr, nil
}

func wsScheme(httpScheme string) string {
	if httpScheme == "https" {
		return "wss"
	}
	return "ws"
}

// redactTicket hides the single-use ticket of a websocket URL in messages.
func redactTicket(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<bad url>"
	}
	q := u.Query()
	if q.Has("id") {
		q.Set("id", "…")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// readFrame reads the whole next data frame of ws into buf (reused) and
// returns it with its type.
func readFrame(ws *websocket.Conn, buf []byte) (int, []byte, error) {
	typ, r, err := ws.NextReader()
	if err != nil {
		return 0, buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return typ, buf, nil
		}
		if err != nil {
			return typ, buf, err
		}
	}
}

// addQuery appends q to the query of u.
func addQuery(u, q string) string {
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}
