package rpc_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/rpc"
)

// The want strings are Python 3's json.dumps output for the same values.
func TestAppendJSONMatchesPython(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"null", nil, `null`},
		{"bools", []any{true, false}, `[true, false]`},
		{"ints", []any{0, -1, int64(math.MaxInt64), uint64(math.MaxUint64)}, `[0, -1, 9223372036854775807, 18446744073709551615]`},
		{"float integral", 1.0, `1.0`},
		{"float timestamp", 1732145425.5, `1732145425.5`},
		{"float small", 0.0001, `0.0001`},
		{"float smaller", 0.00001, `1e-05`},
		{"float big", 1e16, `1e+16`},
		{"float big frac", 1.5e16, `1.5e+16`},
		{"float below 1e16", 1234567890123456.0, `1234567890123456.0`},
		{"float neg zero", math.Copysign(0, -1), `-0.0`},
		{"float repr", pointOne + pointTwo, `0.30000000000000004`},
		{"float32", float32(0.1), `0.10000000149011612`},
		{"nan inf", []any{math.NaN(), math.Inf(1), math.Inf(-1)}, `[null, null, null]`},
		{"string escapes", "a\"b\\c\n\r\t\b\f\x01\x7f", `"a\"b\\c\n\r\t\b\f\u0001\u007f"`},
		{"string non-ascii", "é€😀", `"\u00e9\u20ac\ud83d\ude00"`},
		{"string invalid utf8", "a\xffb", `"a\ufffdb"`},
		{"empty containers", []any{[]string{}, rpc.Object{}, map[string]any{}}, `[[], {}, {}]`},
		{"object order", rpc.Object{{"b", 1}, {"a", []string{"x", "y"}}}, `{"b": 1, "a": ["x", "y"]}`},
		{"map sorted", map[string]any{"b": 1, "a": nil}, `{"a": null, "b": 1}`},
		{"number int", rpc.Int(10), `10`},
		{"number float", rpc.Float(10), `10.0`},
		{"raw message reencoded", json.RawMessage(`{"z":1,"a":[1.50,-0,"\u00e9"]}`), `{"z": 1, "a": [1.5, 0, "\u00e9"]}`},
		{"struct via encoding/json", struct {
			A int    `json:"a"`
			B string `json:"b"`
		}{1, "x"}, `{"a": 1, "b": "x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rpc.Marshal(tt.v)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestAppendJSONUnsupported(t *testing.T) {
	_, err := rpc.Marshal(make(chan int))
	require.True(t, errors.Is(err, rpc.ErrUnsupportedType))
}

func TestPythonJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"object keeps order", `{"battery": 10.40, "charging":true, "a": null}`, `{"battery": 10.4, "charging": true, "a": null}`, false},
		{"nested", ` {"a":{"b":[1,2,{"c":"d"}]},"e":[]} `, `{"a": {"b": [1, 2, {"c": "d"}]}, "e": []}`, false},
		{"exponent", `[1e2, 1E-7, 12345678901234567890]`, `[100.0, 1e-07, 12345678901234567890]`, false},
		{"scalar string", `"hi"`, `"hi"`, false},
		{"scalar number", `42`, `42`, false},
		{"invalid", `{"a":}`, ``, true},
		{"trailing", `{} {}`, ``, true},
		{"trailing scalar", `1 2`, ``, true},
		{"unterminated", `[1, 2`, ``, true},
		{"empty", ``, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rpc.PythonJSON([]byte(tt.in))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
}

func TestAppendReply(t *testing.T) {
	got, err := rpc.AppendReply(nil, "online_users", 7, "module.TeraServer.UserManagerModule.rpc", []string{"u1"}, nil)
	require.NoError(t, err)
	require.Equal(t, `{"method": "online_users", "id": 7, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": ["u1"]}`, string(got))

	got, err = rpc.AppendReply(nil, "nope", 0, "module.M.rpc", nil, rpc.ErrUnknownMethod)
	require.ErrorIs(t, err, rpc.ErrUnknownMethod)
	require.Equal(t, `{"method": "nope", "id": 0, "pattern": "module.M.rpc", "status": "Error", "return_value": null, "reason": "rpc: unknown method"}`, string(got))

	// A value that cannot be encoded turns into an Error reply.
	got, err = rpc.AppendReply(nil, "m", 1, "p", make(chan int), nil)
	require.ErrorIs(t, err, rpc.ErrUnsupportedType)
	var m map[string]any
	require.NoError(t, json.Unmarshal(got, &m))
	require.Equal(t, "Error", m["status"])
	require.Nil(t, m["return_value"])
}

var pointOne, pointTwo = 0.1, 0.2
