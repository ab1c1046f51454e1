package rooms

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Loop errno values (loop-server errno.json) used by the rooms API.
const (
	ErrnoInvalidToken          = 105 // unknown room token
	ErrnoBadJSON               = 106 // body not JSON
	ErrnoInvalidParameters     = 107 // bad values
	ErrnoMissingParameters     = 108 // missing fields
	ErrnoInvalidAuthToken      = 110 // authentication failures
	ErrnoExpired               = 111 // participation expired
	ErrnoRequestTooLarge       = 113 // body above the limit
	ErrnoClientReachedCapacity = 121 // joiner's clientMaxSize too small
	ErrnoTooManyRequests       = 123 // 429: rate limit of the source or identity (teragate)
	ErrnoBackend               = 201 // storage failure
	ErrnoRoomFull              = 202 // room full
	ErrnoNotRoomParticipant    = 203 // action by a non-participant
	ErrnoTooManyRooms          = 205 // 403: the owner holds MaxRoomsPerOwner rooms (teragate)
	ErrnoTooManySessions       = 206 // 503: MaxHawkSessions live Hawk sessions (teragate)
	ErrnoUndefined             = 999 // ownership checks, unknown routes, internal errors
)

// Store errors.
var (
	// ErrNotFound is returned by a [Store] for an unknown or expired room or participant.
	ErrNotFound = errors.New("rooms: not found")
	// ErrExists is returned by [Store.CreateRoom] when the token is taken.
	ErrExists = errors.New("rooms: already exists")
	// ErrLimit is returned by [Store.CreateRoom] when the owner holds its maximum of rooms and by
	// [Store.PutHawkSession] when the maximum of sessions is live. Nothing is evicted.
	ErrLimit = errors.New("rooms: limit reached")
)

// Error is an error answer of the rooms API: the HTTP status, Loop's errno and message.
type Error struct {
	// Code is the HTTP status.
	Code int
	// Errno is Loop's errno.
	Errno int
	// Message is the error text (the body's "error" field).
	Message string
	// Authenticate, if set, is sent as the WWW-Authenticate header.
	Authenticate string
	// RetryAfter, if positive, is sent as Retry-After (whole seconds, rounded up) instead of the
	// configured default of 429 and 503 answers.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string { return "rooms: " + strconv.Itoa(e.Code) + " " + e.Message }

// Is matches another *Error with the same code and errno.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Errno == e.Errno
}

func errf(code, errno int, msg string) *Error { return &Error{Code: code, Errno: errno, Message: msg} }

func badParam(msg string) *Error { return errf(http.StatusBadRequest, ErrnoInvalidParameters, msg) }
func missing(msg string) *Error  { return errf(http.StatusBadRequest, ErrnoMissingParameters, msg) }
func backend() *Error {
	return errf(http.StatusServiceUnavailable, ErrnoBackend, "Service Unavailable")
}
func tooManyRequests(wait time.Duration) *Error {
	e := errf(http.StatusTooManyRequests, ErrnoTooManyRequests, "Too many requests.")
	e.RetryAfter = wait
	return e
}
func tooManyRooms(n int) *Error {
	return errf(http.StatusForbidden, ErrnoTooManyRooms, "Too many rooms: an owner may have at most "+itoa(n)+".")
}
func tooManySessions() *Error {
	return errf(http.StatusServiceUnavailable, ErrnoTooManySessions, "Too many sessions; retry later.")
}
func tokenNotFound() *Error { return errf(http.StatusNotFound, ErrnoInvalidToken, "Token not found.") }
func notOwner() *Error {
	return errf(http.StatusForbidden, ErrnoUndefined, "Authenticated user is not the owner of this room.")
}
func unauthorized(hdr, msg string) *Error {
	e := errf(http.StatusUnauthorized, ErrnoInvalidAuthToken, msg)
	e.Authenticate = hdr
	return e
}

// errorBody is Loop's error format.
type errorBody struct {
	Code  int    `json:"code"`
	Errno int    `json:"errno"`
	Error string `json:"error"`
}

// headers sets Loop's Timestamp (200, 401) and Retry-After (429, 503) headers.
func (s *Service) headers(w http.ResponseWriter, code int) {
	switch code {
	case http.StatusOK, http.StatusUnauthorized:
		w.Header().Set("Timestamp", strconv.FormatInt(s.now().Unix(), 10))
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
		}
	}
}

func (s *Service) writeJSON(w http.ResponseWriter, code int, v any) {
	s.headers(w, code)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func (s *Service) writeEmpty(w http.ResponseWriter, code int) {
	s.headers(w, code)
	w.WriteHeader(code)
}

// writeErr answers err: an *Error as Loop's body, anything else as 503 (storage) after logging.
func (s *Service) writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		s.log.Error("rooms backend error", "error", err)
		e = backend()
	}
	if e.Authenticate != "" {
		w.Header().Set("WWW-Authenticate", e.Authenticate)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	s.writeJSON(w, e.Code, errorBody{Code: e.Code, Errno: e.Errno, Error: e.Message})
}
