package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// HTTPConfig configures [HTTPHandler].
type HTTPConfig struct {
	// Router serves the calls. Required.
	Router *Router
	// Authenticate resolves the caller of a request, or fails (the reply is 401). Required.
	Authenticate func(r *http.Request) (Caller, error)
	// Logger is the handler's logger. Nil means no logging.
	Logger hclog.Logger
	// MaxBodyBytes bounds request bodies. Zero value means 1 MiB.
	MaxBodyBytes int64
	// Timeout bounds one call. Zero value means 10s.
	Timeout time.Duration
}

// HTTPRequest is the body of POST /api/rpc/{module}.
type HTTPRequest struct {
	// Method is the method name. Required.
	Method string `json:"method"`
	// Args are the positional arguments: JSON booleans, integers, floats and strings.
	Args []json.RawMessage `json:"args"`
	// ID is echoed in the reply's "id". Optional (0).
	ID uint64 `json:"id"`
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// HTTPHandler returns the handler of POST /api/rpc/{module}. The reply is the JSON object the bus
// transport publishes, with status 200 for an OK reply and, for an Error reply, 400 (bad request
// body or arguments), 403 (forbidden), 404 (unknown module or method) or 500 (the method failed).
// A missing or invalid token gets 401 and an OpenTera-style JSON string.
func HTTPHandler(cfg HTTPConfig) http.HandlerFunc {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := cfg.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `OpenTera realm="rpc"`)
			writeString(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		module := r.PathValue("module")
		pattern := topic.RPC(module)
		bp := bufPool.Get().(*[]byte)
		defer func() {
			if cap(*bp) <= 64<<10 {
				*bp = (*bp)[:0]
				bufPool.Put(bp)
			}
		}()
		body := bytes.NewBuffer((*bp)[:0])
		if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes)); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeReply(w, http.StatusRequestEntityTooLarge, AppendReplyErr(nil, "", 0, pattern, fmt.Errorf("%w: body larger than %d bytes", ErrMalformed, cfg.MaxBodyBytes)))
				return
			}
			writeReply(w, http.StatusBadRequest, AppendReplyErr(nil, "", 0, pattern, fmt.Errorf("%w: %w", ErrMalformed, err)))
			return
		}
		*bp = body.Bytes()
		method, id, args, err := DecodeHTTPRequest(body.Bytes())
		if err != nil {
			writeReply(w, http.StatusBadRequest, AppendReplyErr((*bp)[len(*bp):], method, id, pattern, err))
			return
		}
		ctx, cancel := context.WithTimeout(WithCaller(r.Context(), caller), cfg.Timeout)
		v, callErr := cfg.Router.Call(ctx, module, method, args)
		cancel()
		out, err := AppendReply((*bp)[:0], method, id, pattern, v, callErr)
		*bp = out
		writeReply(w, HTTPStatus(err), out)
	}
}

// AppendReplyErr appends an Error reply for err.
func AppendReplyErr(dst []byte, method string, id uint64, pattern string, err error) []byte {
	dst, _ = AppendReply(dst, method, id, pattern, nil, err)
	return dst
}

// HTTPStatus maps a call error to the HTTP status of its reply.
func HTTPStatus(err error) int {
	switch StatusOf(err) {
	case StatusOK:
		return http.StatusOK
	case StatusUnknownModule, StatusUnknownMethod:
		return http.StatusNotFound
	case StatusBadArgs:
		return http.StatusBadRequest
	case StatusForbidden:
		return http.StatusForbidden
	case StatusTimeout:
		return http.StatusGatewayTimeout
	}
	if errors.Is(err, ErrMalformed) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// DecodeHTTPRequest decodes the body of POST /api/rpc/{module}: a JSON object with "method" (a
// non-empty string), optional "args" (an array of booleans, integers, floats and strings) and
// optional "id". Errors match [ErrMalformed] (not a request) or [ErrBadArgs] (an argument of
// another JSON type); method and id are returned when they could be read.
func DecodeHTTPRequest(body []byte) (method string, id uint64, args Args, err error) {
	var req HTTPRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return "", 0, nil, fmt.Errorf("%w: the body must be a JSON object {\"method\": \"...\", \"args\": [...]}: %w", ErrMalformed, err)
	}
	if req.Method == "" {
		return "", req.ID, nil, fmt.Errorf("%w: \"method\" is required", ErrMalformed)
	}
	args = make(Args, len(req.Args))
	for i, raw := range req.Args {
		v, err := JSONArg(raw)
		if err != nil {
			return req.Method, req.ID, nil, fmt.Errorf("%w: argument %d: %w", ErrBadArgs, i+1, err)
		}
		args[i] = v
	}
	return req.Method, req.ID, args, nil
}

// JSONArg maps one JSON argument to a Value: true/false to bool_value, an integer literal to
// int_value (uint_value above MaxInt64), another number to double_value, a string to
// string_value.
func JSONArg(raw json.RawMessage) (*opentera.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty")
	}
	switch c := raw[0]; {
	case c == 't' || c == 'f':
		return &opentera.Value{ArgValue: &opentera.Value_BoolValue{BoolValue: c == 't'}}, nil
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return &opentera.Value{ArgValue: &opentera.Value_StringValue{StringValue: s}}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		lit := string(raw)
		if isIntLiteral(lit) {
			if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
				return &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: i}}, nil
			}
			if u, err := strconv.ParseUint(lit, 10, 64); err == nil {
				return &opentera.Value{ArgValue: &opentera.Value_UintValue{UintValue: u}}, nil
			}
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", lit)
		}
		return &opentera.Value{ArgValue: &opentera.Value_DoubleValue{DoubleValue: f}}, nil
	case c == 'n':
		return nil, errors.New("null is not a valid argument (use a boolean, number or string)")
	}
	return nil, errors.New("arrays and objects are not valid arguments (use a boolean, number or string)")
}

func writeReply(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body) + 1)}
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// writeString answers an OpenTera-style error: a JSON string body.
func writeString(w http.ResponseWriter, code int, msg string) {
	writeReply(w, code, AppendString(nil, msg))
}
