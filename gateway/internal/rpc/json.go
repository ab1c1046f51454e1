package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// JSONAppender is implemented by results that encode themselves (fast paths such as the
// presence registry's status lists). AppendJSON must append exactly one JSON value in the style
// of [AppendJSON].
type JSONAppender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// Field is one key and value of an [Object].
type Field struct {
	Key   string
	Value any
}

// Object is a JSON object that keeps its keys in order (as a Python dict does).
type Object []Field

// AppendJSON implements [JSONAppender].
func (o Object) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '{')
	var err error
	for i, f := range o {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = AppendString(dst, f.Key)
		dst = append(dst, ": "...)
		if dst, err = AppendJSON(dst, f.Value); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// RawJSON is JSON text inserted as is: the caller guarantees it is valid and in the reply style.
// Use [PythonJSON] to convert other JSON text.
type RawJSON []byte

// AppendJSON implements [JSONAppender].
func (r RawJSON) AppendJSON(dst []byte) ([]byte, error) {
	if len(r) == 0 {
		return append(dst, "null"...), nil
	}
	return append(dst, r...), nil
}

// ErrUnsupportedType is returned by [AppendJSON] for values it cannot encode.
var ErrUnsupportedType = errors.New("rpc: value not encodable as JSON")

// AppendJSON appends v as Python's json.dumps (default arguments) would write it: separators
// ", " and ": ", non-ASCII escaped as \uXXXX, floats as Python's repr (1.0, 1e-05, 1e+16; NaN and infinities as null),
// objects in insertion order for [Object] and sorted by key for Go maps.
//
// It handles nil, bool, the integer and float types, string, []byte (as a string), [Number],
// [Object], []string, []any, map[string]any, map[string]string, json.RawMessage (re-encoded) and
// any [JSONAppender]; other types go through encoding/json and are re-encoded.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case JSONAppender:
		return x.AppendJSON(dst)
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return AppendString(dst, x), nil
	case []byte:
		return AppendString(dst, string(x)), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case float32:
		return AppendFloat(dst, float64(x)), nil
	case float64:
		return AppendFloat(dst, x), nil
	case []string:
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = AppendString(dst, s)
		}
		return append(dst, ']'), nil
	case []any:
		dst = append(dst, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if dst, err = AppendJSON(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		return sortedObject(x).AppendJSON(dst)
	case map[string]string:
		return sortedObject(x).AppendJSON(dst)
	case json.RawMessage:
		return appendPython(dst, x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("%w: %T: %w", ErrUnsupportedType, v, err)
	}
	return appendPython(dst, b)
}

// Marshal returns v encoded with [AppendJSON].
func Marshal(v any) ([]byte, error) { return AppendJSON(nil, v) }

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string the way Python's json.dumps does with ensure_ascii:
// `"` and `\` escaped, \n \r \t \b \f, every other byte outside 0x20–0x7e as \u00XX, non-ASCII
// characters as \uXXXX (surrogate pairs above U+FFFF). Invalid UTF-8 becomes \ufffd.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = appendU(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r > 0xFFFF {
			r1, r2 := utf16.EncodeRune(r)
			dst = appendU(appendU(dst, r1), r2)
		} else {
			dst = appendU(dst, r) // includes utf8.RuneError for invalid bytes
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plain marks the bytes AppendString copies as is: printable ASCII except " and \.
var plain = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}

// AppendFloat appends f as Python's repr(float) (and so json.dumps) writes it: the shortest
// digits that round-trip, fixed notation for exponents -4 to 15 with at least one decimal
// ("1.0", "0.0001", "1732145425.5"), scientific otherwise ("1e-05", "1.5e+16").
//
// NaN and the infinities are written as null. Python writes NaN and Infinity, which are not
// JSON: browsers, Go and most other clients refuse the whole reply. null is what JavaScript's
// JSON.stringify writes for them, and Python's json.loads reads it too.
func AppendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // -d.ddde±dd
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	mant, exps, _ := bytes.Cut(e, []byte{'e'})
	exp, _ := strconv.Atoi(string(exps))
	var digits [24]byte
	d := append(digits[:0], mant[0])
	if len(mant) > 2 {
		d = append(d, mant[2:]...)
	}
	if exp >= -4 && exp < 16 {
		if exp >= 0 {
			if len(d) <= exp+1 {
				dst = append(dst, d...)
				for range exp + 1 - len(d) {
					dst = append(dst, '0')
				}
				return append(dst, '.', '0')
			}
			dst = append(dst, d[:exp+1]...)
			dst = append(dst, '.')
			return append(dst, d[exp+1:]...)
		}
		dst = append(dst, '0', '.')
		for range -exp - 1 {
			dst = append(dst, '0')
		}
		return append(dst, d...)
	}
	dst = append(dst, d[0])
	if len(d) > 1 {
		dst = append(dst, '.')
		dst = append(dst, d[1:]...)
	}
	dst = append(dst, 'e')
	if exp < 0 {
		dst = append(dst, '-')
		exp = -exp
	} else {
		dst = append(dst, '+')
	}
	if exp < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(exp), 10)
}

// PythonJSON re-encodes JSON text as Python's json.dumps(json.loads(text)) would: same key
// order, Python separators and escapes, integers kept as written (-0 becomes 0), other numbers
// as Python floats (10.40 becomes 10.4, 1e2 becomes 100.0). It fails on invalid JSON or trailing
// data.
func PythonJSON(text []byte) ([]byte, error) { return appendPython(nil, text) }

func appendPython(dst []byte, text []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	type frame struct {
		obj   bool
		count int
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return dst, fmt.Errorf("%w: unexpected end of JSON", ErrUnsupportedType)
		}
		if err != nil {
			return dst, fmt.Errorf("%w: %w", ErrUnsupportedType, err)
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			dst = append(dst, byte(d))
			if len(stack) == 0 {
				return dst, checkEOF(dec)
			}
			continue
		}
		// Separator before this token.
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			switch {
			case top.obj && top.count%2 == 1:
				dst = append(dst, ": "...)
			case top.count > 0:
				dst = append(dst, ", "...)
			}
			top.count++
		}
		switch t := tok.(type) {
		case json.Delim:
			dst = append(dst, byte(t))
			stack = append(stack, frame{obj: t == '{'})
			continue
		case string:
			dst = AppendString(dst, t)
		case json.Number:
			if dst, err = appendNumber(dst, string(t)); err != nil {
				return dst, err
			}
		case bool:
			dst, _ = AppendJSON(dst, t)
		case nil:
			dst = append(dst, "null"...)
		}
		if len(stack) == 0 {
			return dst, checkEOF(dec)
		}
	}
}

func checkEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after JSON value", ErrUnsupportedType)
	}
	return nil
}

// appendNumber writes a JSON number literal as Python would after json.loads: integers as
// written, others through float.
func appendNumber(dst []byte, lit string) ([]byte, error) {
	if isIntLiteral(lit) {
		if lit == "-0" {
			return append(dst, '0'), nil
		}
		return append(dst, lit...), nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return dst, fmt.Errorf("%w: number %q: %w", ErrUnsupportedType, lit, err)
	}
	return AppendFloat(dst, f), nil
}

func isIntLiteral(lit string) bool {
	for i := 0; i < len(lit); i++ {
		switch lit[i] {
		case '.', 'e', 'E':
			return false
		}
	}
	return true
}

// sortedObject turns a map into an Object with its keys in sorted order (Python's json.dumps keeps
// insertion order; a Go map has none, so the order is made deterministic).
func sortedObject[V any](m map[string]V) Object {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	o := make(Object, len(keys))
	for i, k := range keys {
		o[i] = Field{k, m[k]}
	}
	return o
}
