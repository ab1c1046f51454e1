package pdk

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrJSON is wrapped by the errors of [ParseJSON] and [AppendJSON].
var ErrJSON = errors.New("pdk: invalid json")

// JSONAppender is implemented by values that encode themselves for [AppendJSON].
type JSONAppender interface {
	// AppendJSON appends the value's JSON text to b.
	AppendJSON(b []byte) []byte
}

// AppendJSON appends the JSON text of v to b. It is a small encoder without reflection (the
// standard encoding/json would add reflection-heavy code to every guest) and supports nil, bool,
// string, []byte (as a string), the integer and float types, []string, []any,
// map[string]any, map[string]string (keys sorted) and [JSONAppender]. Other types are an error
// wrapping [ErrJSON]; so are NaN and infinities.
func AppendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendJSONString(b, x), nil
	case []byte:
		return appendJSONString(b, string(x)), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float32:
		return appendJSONFloat(b, float64(x))
	case float64:
		return appendJSONFloat(b, x)
	case []string:
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		return append(b, ']'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = AppendJSON(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]string:
		keys := sortedKeys(x)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, x[k])
		}
		return append(b, '}'), nil
	case map[string]any:
		keys := sortedKeys(x)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = AppendJSON(b, x[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case JSONAppender:
		return x.AppendJSON(b), nil
	}
	return b, errJSON("unsupported value type")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func errJSON(msg string) error { return &jsonError{msg} }

type jsonError struct{ msg string }

func (e *jsonError) Error() string { return "pdk: invalid json: " + e.msg }
func (e *jsonError) Is(target error) bool {
	return target == ErrJSON
}

func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, errJSON("NaN or infinity")
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(b, int64(f), 10), nil
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64), nil
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// ParseJSON parses one JSON value: objects become map[string]any, arrays []any, numbers
// float64, and strings, booleans and null string, bool and nil. Errors wrap [ErrJSON].
func ParseJSON(data []byte) (any, error) {
	p := jsonParser{data: data}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.data) {
		return nil, errJSON("trailing data")
	}
	return v, nil
}

type jsonParser struct {
	data []byte
	i    int
}

const maxJSONDepth = 64

func (p *jsonParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errJSON("nested too deep")
	}
	p.space()
	if p.i >= len(p.data) {
		return nil, errJSON("unexpected end")
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == 't':
		return p.lit("true", true)
	case c == 'f':
		return p.lit("false", false)
	case c == 'n':
		return p.lit("null", nil)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, errJSON("unexpected character")
}

// object parses {...} at p.i.
func (p *jsonParser) object(depth int) (any, error) {
	p.i++
	m := map[string]any{}
	if p.empty('}') {
		return m, nil
	}
	for {
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, errJSON("expected a key")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, errJSON("expected ':'")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		switch done, err := p.next('}'); {
		case err != nil:
			return nil, err
		case done:
			return m, nil
		}
	}
}

// array parses [...] at p.i.
func (p *jsonParser) array(depth int) (any, error) {
	p.i++
	a := []any{}
	if p.empty(']') {
		return a, nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		switch done, err := p.next(']'); {
		case err != nil:
			return nil, err
		case done:
			return a, nil
		}
	}
}

// empty consumes the closing character of an empty object or array.
func (p *jsonParser) empty(closing byte) bool {
	p.space()
	if p.i < len(p.data) && p.data[p.i] == closing {
		p.i++
		return true
	}
	return false
}

// next consumes the separator after a member or an element: a comma (more follow) or the
// closing character (done).
func (p *jsonParser) next(closing byte) (done bool, err error) {
	p.space()
	if p.i < len(p.data) {
		switch p.data[p.i] {
		case ',':
			p.i++
			return false, nil
		case closing:
			p.i++
			return true, nil
		}
	}
	return false, errJSON("expected ',' or '" + string(closing) + "'")
}

// number parses a JSON number at p.i as a float64.
func (p *jsonParser) number() (any, error) {
	start := p.i
	for p.i < len(p.data) {
		c := p.data[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	f, err := strconv.ParseFloat(string(p.data[start:p.i]), 64)
	if err != nil {
		return nil, errJSON("bad number")
	}
	return f, nil
}

func (p *jsonParser) lit(word string, v any) (any, error) {
	if len(p.data)-p.i < len(word) || string(p.data[p.i:p.i+len(word)]) != word {
		return nil, errJSON("bad literal")
	}
	p.i += len(word)
	return v, nil
}

func (p *jsonParser) str() (string, error) {
	p.i++ // opening quote
	var out []byte
	start := p.i
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			if out == nil {
				s := string(p.data[start:p.i])
				p.i++
				return s, nil
			}
			out = append(out, p.data[start:p.i]...)
			p.i++
			return string(out), nil
		case c == '\\':
			out = append(out, p.data[start:p.i]...)
			p.i++
			if p.i >= len(p.data) {
				return "", errJSON("unexpected end")
			}
			e := p.data[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", errJSON("bad \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.i+1 < len(p.data) && p.data[p.i] == '\\' && p.data[p.i+1] == 'u' {
						p.i += 2
						r2, ok = p.hex4()
						if !ok {
							return "", errJSON("bad \\u escape")
						}
					}
					r = utf16.DecodeRune(r, r2)
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", errJSON("bad escape")
			}
			start = p.i
		case c < 0x20:
			return "", errJSON("control character in string")
		default:
			p.i++
		}
	}
	return "", errJSON("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
