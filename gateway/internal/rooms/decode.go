package rooms

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// body is a decoded JSON request object: presence of a key is Loop's "defined".
type body map[string]json.RawMessage

// DecodeBody decodes a request body as Loop's express body parser plus teragate's limits do: an
// empty body is {}, anything but a JSON object is 400 errno 106, and a body above limit bytes is
// 413 errno 113. It is the entry point for untrusted bytes (fuzzed).
func DecodeBody(data []byte, limit int64) (map[string]json.RawMessage, error) {
	if int64(len(data)) > limit {
		return nil, tooLarge()
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if data[0] != '{' {
		return nil, badJSON()
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, badJSON()
	}
	return m, nil
}

func badJSON() *Error {
	return errf(http.StatusBadRequest, ErrnoBadJSON, "Request body should be a JSON object.")
}

func tooLarge() *Error {
	return errf(http.StatusRequestEntityTooLarge, ErrnoRequestTooLarge, "Request body too large.")
}

// readBody reads and decodes the request body within the configured limit.
func (s *Service) readBody(r *http.Request) (body, []byte, error) {
	if r.Body == nil {
		return body{}, nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, tooLarge()
		}
		return nil, nil, badJSON()
	}
	m, err := DecodeBody(data, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, nil, err
	}
	return m, data, nil
}

// acceptsJSON is Loop's requireParams check: a request whose Accept excludes JSON gets 406.
func acceptsJSON(r *http.Request) error {
	a := r.Header.Get("Accept")
	if a == "" {
		return nil
	}
	for _, part := range strings.Split(a, ",") {
		mt, _, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/json", "*/*", "application/*":
			return nil
		}
	}
	return errf(http.StatusNotAcceptable, ErrnoBadJSON, "Request body should be defined as application/json")
}

// has reports whether key is defined (JSON null counts as defined, as in JavaScript).
func (b body) has(k string) bool { _, ok := b[k]; return ok }

// set reports whether key is defined and not null.
func (b body) set(k string) bool {
	v, ok := b[k]
	return ok && !isNull(v)
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// text returns a field as text: a JSON string's value, or the JSON text of any other value
// (Loop stores whatever it gets; null is "").
func (b body) text(k string) string {
	v := b[k]
	if isNull(v) || len(v) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(v))
}

// missingList renders Loop's "Missing: a, b" for the required params not defined; a group
// (any one of) renders as "a,b".
func (b body) missingList(groups ...[]string) *Error {
	var miss []string
	for _, g := range groups {
		ok := false
		for _, k := range g {
			if b.has(k) {
				ok = true
			}
		}
		if !ok {
			miss = append(miss, strings.Join(g, ","))
		}
	}
	if len(miss) == 0 {
		return nil
	}
	return missing("Missing: " + strings.Join(miss, ", "))
}

// ParseIntJS converts a JSON value as JavaScript's parseInt(value) does for the values Loop
// receives: a number is truncated; a string is read as optional whitespace, sign and the longest
// run of decimal digits ("3abc" is 3, "0x1f" is 31); anything else is NaN (ok false). Values
// beyond ±2^53 are refused (ok false) rather than rounded.
func ParseIntJS(v json.RawMessage) (int64, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0, false
	}
	var s string
	switch c := v[0]; {
	case c == '"':
		if json.Unmarshal(v, &s) != nil {
			return 0, false
		}
	case c == '-' || (c >= '0' && c <= '9'):
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsNaN(f) || math.Abs(f) >= 1<<53 {
			return 0, false
		}
		return int64(f), true
	default:
		return 0, false
	}
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	if len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, s = 16, s[2:]
	}
	n := 0
	for n < len(s) && digit(s[n], base) {
		n++
	}
	if n == 0 || n > 16 {
		return 0, false
	}
	x, err := strconv.ParseInt(s[:n], base, 64)
	if err != nil || x >= 1<<53 {
		return 0, false
	}
	if neg {
		x = -x
	}
	return x, true
}

func digit(c byte, base int) bool {
	if c >= '0' && c <= '9' {
		return true
	}
	if base == 16 {
		c |= 0x20
		return c >= 'a' && c <= 'f'
	}
	return false
}

// jsLen is a string's JavaScript length (UTF-16 code units), which Loop's size limits count.
func jsLen(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}
