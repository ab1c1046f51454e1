package rpc

import (
	"fmt"
	"math"
	"strconv"

	"github.com/teragate/teragate/proto/opentera"
)

// Args are a call's positional arguments, as carried by RPCMessage.args.
type Args []*opentera.Value

// Len returns the number of arguments.
func (a Args) Len() int { return len(a) }

// String returns argument i, which must be a string_value; otherwise the error matches
// [ErrBadArgs].
func (a Args) String(i int) (string, error) {
	if i >= len(a) {
		return "", fmt.Errorf("%w: argument %d missing (want a string)", ErrBadArgs, i+1)
	}
	v, ok := a[i].GetArgValue().(*opentera.Value_StringValue)
	if !ok {
		return "", fmt.Errorf("%w: argument %d is %s, want a string", ErrBadArgs, i+1, TypeName(a[i]))
	}
	return v.StringValue, nil
}

// Number returns argument i, which must be numeric: int_value and uint_value give an integer
// [Number], double_value and float_value a float one. Otherwise the error matches [ErrBadArgs].
func (a Args) Number(i int) (Number, error) {
	if i >= len(a) {
		return Number{}, fmt.Errorf("%w: argument %d missing (want a number)", ErrBadArgs, i+1)
	}
	switch v := a[i].GetArgValue().(type) {
	case *opentera.Value_IntValue:
		return Int(v.IntValue), nil
	case *opentera.Value_UintValue:
		if v.UintValue > math.MaxInt64 {
			return Float(float64(v.UintValue)), nil
		}
		return Int(int64(v.UintValue)), nil
	case *opentera.Value_DoubleValue:
		return Float(v.DoubleValue), nil
	case *opentera.Value_FloatValue:
		return Float(float64(v.FloatValue)), nil
	}
	return Number{}, fmt.Errorf("%w: argument %d is %s, want a number", ErrBadArgs, i+1, TypeName(a[i]))
}

// Decode returns the arguments as Go values: float64, int64, uint64, bool, []byte, string, or nil
// for a Value with nothing set.
func (a Args) Decode() []any {
	out := make([]any, len(a))
	for i, v := range a {
		switch x := v.GetArgValue().(type) {
		case *opentera.Value_DoubleValue:
			out[i] = x.DoubleValue
		case *opentera.Value_FloatValue:
			out[i] = float64(x.FloatValue)
		case *opentera.Value_IntValue:
			out[i] = x.IntValue
		case *opentera.Value_UintValue:
			out[i] = x.UintValue
		case *opentera.Value_BoolValue:
			out[i] = x.BoolValue
		case *opentera.Value_BytesValue:
			out[i] = x.BytesValue
		case *opentera.Value_StringValue:
			out[i] = x.StringValue
		}
	}
	return out
}

// TypeName names the type of v's value for error messages ("a string", "an integer", …).
func TypeName(v *opentera.Value) string {
	switch v.GetArgValue().(type) {
	case *opentera.Value_DoubleValue, *opentera.Value_FloatValue:
		return "a float"
	case *opentera.Value_IntValue, *opentera.Value_UintValue:
		return "an integer"
	case *opentera.Value_BoolValue:
		return "a boolean"
	case *opentera.Value_BytesValue:
		return "bytes"
	case *opentera.Value_StringValue:
		return "a string"
	}
	return "empty"
}

// ValueOf converts a Go value to an RPC argument as OpenTera's Python RedisRPCClient does: bool
// to bool_value, floats to double_value, integers to int_value (uint64 above MaxInt64 to
// uint_value), string to string_value, []byte to bytes_value. Other types give an error matching
// [ErrBadArgs].
func ValueOf(x any) (*opentera.Value, error) {
	switch v := x.(type) {
	case bool:
		return &opentera.Value{ArgValue: &opentera.Value_BoolValue{BoolValue: v}}, nil
	case float64:
		return &opentera.Value{ArgValue: &opentera.Value_DoubleValue{DoubleValue: v}}, nil
	case float32:
		return &opentera.Value{ArgValue: &opentera.Value_DoubleValue{DoubleValue: float64(v)}}, nil
	case int:
		return &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: int64(v)}}, nil
	case int32:
		return &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: int64(v)}}, nil
	case int64:
		return &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: v}}, nil
	case uint64:
		if v > math.MaxInt64 {
			return &opentera.Value{ArgValue: &opentera.Value_UintValue{UintValue: v}}, nil
		}
		return &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: int64(v)}}, nil
	case uint32:
		return &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: int64(v)}}, nil
	case string:
		return &opentera.Value{ArgValue: &opentera.Value_StringValue{StringValue: v}}, nil
	case []byte:
		return &opentera.Value{ArgValue: &opentera.Value_BytesValue{BytesValue: v}}, nil
	case Number:
		if v.IsFloat {
			return &opentera.Value{ArgValue: &opentera.Value_DoubleValue{DoubleValue: v.F}}, nil
		}
		return &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: v.I}}, nil
	}
	return nil, fmt.Errorf("%w: unsupported argument type %T", ErrBadArgs, x)
}

// ArgsOf converts Go values with [ValueOf].
func ArgsOf(xs ...any) (Args, error) {
	out := make(Args, len(xs))
	for i, x := range xs {
		v, err := ValueOf(x)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// Number is a JSON number that remembers whether it was an integer or a float, so that it is
// echoed back as received (OpenTera stores device status timestamps unchanged).
type Number struct {
	// I is the value of an integer Number.
	I int64
	// F is the value of a float Number.
	F float64
	// IsFloat tells which of I and F holds the value.
	IsFloat bool
}

// Int returns an integer Number.
func Int(i int64) Number { return Number{I: i} }

// Float returns a float Number.
func Float(f float64) Number { return Number{F: f, IsFloat: true} }

// Less reports whether n is numerically smaller than m (an integer and a float compare by value).
func (n Number) Less(m Number) bool {
	if !n.IsFloat && !m.IsFloat {
		return n.I < m.I
	}
	return n.Float64() < m.Float64()
}

// Float64 returns the value as a float64.
func (n Number) Float64() float64 {
	if n.IsFloat {
		return n.F
	}
	return float64(n.I)
}

// AppendJSON implements [JSONAppender]: an integer as digits, a float as Python's repr.
func (n Number) AppendJSON(dst []byte) ([]byte, error) {
	if n.IsFloat {
		return AppendFloat(dst, n.F), nil
	}
	return strconv.AppendInt(dst, n.I, 10), nil
}

// String returns the JSON text of n.
func (n Number) String() string {
	b, _ := n.AppendJSON(nil)
	return string(b)
}
