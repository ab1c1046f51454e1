package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/transport"
)

// Deps are the parts the API works with.
type Deps struct {
	Auth      *auth.Authenticator
	Tickets   auth.Tickets
	Directory *directory.Store
	Presence  *presence.Registry
	Bus       bus.Bus
	Hub       *hub.Hub
	Transport *transport.Transport
	// Router replays the history to resuming connections; History is the event history (nil:
	// none kept, a resume gets ResumeFailed "disabled").
	Router  *hub.Router
	History history.Store
	Metrics *metrics.Metrics
	Logger  hclog.Logger

	// Insecure makes websocket_url ws:// instead of wss://.
	Insecure bool
	// PublicHost overrides the host[:port] of websocket_url.
	PublicHost string
	// SingleSocket restores OpenTera's 403 for a websocket login of an online entity.
	SingleSocket bool
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// LoginRate limits each entity's logins (and so its websocket opens); zero: no limit.
	LoginRate LoginRate
}

// API serves the HTTP endpoints.
type API struct {
	d     Deps
	log   hclog.Logger
	mux   *http.ServeMux
	ready atomic.Bool
	limit *loginLimiter // nil: no login rate limit
}

// New returns the API; mount [API.Handler].
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = hclog.NewNullLogger()
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	a := &API{d: d, log: d.Logger, mux: http.NewServeMux(), limit: newLoginLimiter(d.LoginRate)}
	a.route("GET /api/user/login", "user_login", a.login(directory.KindUser))
	a.route("GET /api/participant/login", "participant_login", a.login(directory.KindParticipant))
	a.route("GET /api/device/login", "device_login", a.login(directory.KindDevice))
	a.route("GET /api/user/logout", "user_logout", a.logout(directory.KindUser))
	a.route("GET /api/participant/logout", "participant_logout", a.logout(directory.KindParticipant))
	a.route("GET /api/device/logout", "device_logout", a.logout(directory.KindDevice))
	a.route("POST /api/events", "events", a.postEvents)
	a.route("GET /wss/{kind}", "websocket", a.websocket)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", d.Metrics.Handler())
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.Metrics.HTTPRequest("not_found", http.StatusNotFound)
		writeError(w, http.StatusNotFound, "Not found: "+r.Method+" "+r.URL.Path)
	})
	return a
}

// Handle mounts another component's handler on pattern (net/http ServeMux syntax), counted in
// metrics under the route name.
func (a *API) Handle(pattern, name string, h http.HandlerFunc) { a.route(pattern, name, h) }

// Authenticate resolves the bearer token of a request ("Authorization: OpenTera <token>",
// "Bearer <token>" or ?token=) to a principal of any kind.
func (a *API) Authenticate(r *http.Request) (auth.Principal, error) {
	tok, ok := BearerToken(r)
	if !ok {
		return auth.Principal{}, auth.ErrBadCredentials
	}
	return a.d.Auth.Any(r.Context(), tok)
}

// Handler returns the API's HTTP handler.
func (a *API) Handler() http.Handler { return a.mux }

// SetReady flips /readyz.
func (a *API) SetReady(ok bool) { a.ready.Store(ok) }

func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	if !a.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "connections": a.d.Hub.Count(0)})
}

// statusRecorder captures the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the websocket upgrader reach the hijacker.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (a *API) route(pattern, name string, h http.HandlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if name == "websocket" { // the upgrader needs the raw writer to hijack it
			h(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		a.d.Metrics.HTTPRequest(name, rec.code)
	})
}

// WriteJSON answers v as JSON with the status code.
func WriteJSON(w http.ResponseWriter, code int, v any) { writeJSON(w, code, v) }

// WriteError answers like OpenTera's Flask API: a JSON string with the message.
func WriteError(w http.ResponseWriter, code int, msg string) { writeError(w, code, msg) }

// AdminOnly wraps h so that only admin principals (superadmin users, admin services) reach it:
// 401 "Unauthorized" without valid credentials, 403 "Forbidden: admin only" for anyone else.
// Every admin endpoint of the gateway goes through it (Loop's rooms admin view answers in Loop's
// error format instead).
func AdminOnly(authenticate func(*http.Request) (auth.Principal, error), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := authenticate(r)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if !p.Admin {
			writeError(w, http.StatusForbidden, "Forbidden: admin only")
			return
		}
		h(w, r)
	}
}

// BearerToken extracts a token from "Authorization: OpenTera <token>" or "Bearer <token>", or
// from the token query parameter.
func BearerToken(r *http.Request) (string, bool) { return bearer(r) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers like OpenTera's Flask API: a JSON string with the message.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, msg)
}

// bearer extracts a token from "Authorization: OpenTera <token>" or "Bearer <token>", or from the
// token query parameter.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); ok {
		switch strings.ToLower(scheme) {
		case "opentera", "bearer":
			tok = strings.TrimSpace(tok)
			return tok, tok != ""
		}
	}
	if t := r.URL.Query().Get("token"); t != "" {
		return t, true
	}
	return "", false
}

// parseBool is flask-restx's inputs.boolean: true/false, 1/0, yes/no, on/off.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on", "y", "t":
		return true, true
	case "false", "0", "no", "off", "n", "f", "":
		return false, true
	}
	return false, false
}

// websocketURL builds wss://host:port/wss/<kind>?id=<ticket> the way OpenTera does.
func (a *API) websocketURL(r *http.Request, kind directory.Kind, ticket string) string {
	scheme := "wss"
	if a.d.Insecure {
		scheme = "ws"
	}
	return scheme + "://" + a.publicHost(r) + "/wss/" + kind.String() + "?id=" + ticket
}

// publicHost is the host[:port] clients are sent to: the configured public host, else the
// address this connection arrived on (the listener's, with the real interface address when the
// gateway listens on every interface). Never a request header: Host and X-Forwarded-* are the
// client's to choose, and a websocket_url pointing elsewhere would hand the ticket to whoever
// the client (or an attacker's link) named.
func (a *API) publicHost(r *http.Request) string {
	if a.d.PublicHost != "" {
		return a.d.PublicHost
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return la.String()
	}
	return r.Host // no listener address (handlers called directly in tests)
}

func (a *API) publish(ctx context.Context, source, channel string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.d.Bus.Publish(ctx, channel, payload); err != nil {
		return err
	}
	a.d.Metrics.Published(source)
	return nil
}

// loginResult maps an authentication error to its HTTP status, message and metrics label.
func loginResult(err error) (int, string, string) {
	switch {
	case errors.Is(err, auth.ErrLocked):
		return http.StatusUnauthorized, "Too many failed login attempts, try again later.", "locked"
	case errors.Is(err, auth.ErrDisabled):
		return http.StatusUnauthorized, "Account disabled.", "disabled"
	case errors.Is(err, auth.ErrExpiredToken):
		return http.StatusUnauthorized, "Token expired.", "expired_token"
	case errors.Is(err, auth.ErrInvalidToken):
		return http.StatusUnauthorized, "Invalid token.", "invalid_token"
	default:
		return http.StatusUnauthorized, "Unauthorized", "bad_credentials"
	}
}

// RPCCaller authenticates the caller of an HTTP RPC (POST /api/rpc/{module},
// POST /api/device/status) from its token and resolves its access in the current directory.
func (a *API) RPCCaller(r *http.Request) (rpc.Caller, error) {
	p, err := a.Authenticate(r)
	if err != nil {
		return rpc.Caller{}, err
	}
	acc, ok := a.d.Directory.Current().Principal(p.Kind, p.UUID)
	if !ok {
		return rpc.Caller{}, errors.New("api: caller not in the directory")
	}
	return rpc.Caller{Kind: p.Kind, UUID: p.UUID, Admin: p.Admin || acc.Admin(), Access: acc}, nil
}
