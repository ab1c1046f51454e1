package rpc_test

import (
	"encoding/json"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/proto/opentera"
)

// FuzzDecodeRequest feeds arbitrary bus payloads to the RPCMessage decoder and encodes a reply for
// every decoded request: nothing may panic, and every reply must be valid JSON.
func FuzzDecodeRequest(f *testing.F) {
	seed, _ := proto.Marshal(&opentera.RPCMessage{Method: "online_users", ReplyTo: "RedisRPCClient.x", Id: 1, Timestamp: 1.5,
		Args: []*opentera.Value{{ArgValue: &opentera.Value_StringValue{StringValue: "abc"}}, {ArgValue: &opentera.Value_DoubleValue{DoubleValue: 2.5}}}})
	f.Add(seed)
	nan, _ := proto.Marshal(&opentera.RPCMessage{Method: "m", Args: []*opentera.Value{
		{ArgValue: &opentera.Value_DoubleValue{DoubleValue: math.NaN()}}, {ArgValue: &opentera.Value_FloatValue{FloatValue: float32(math.Inf(-1))}}}})
	f.Add(nan) // once printed as NaN, which is not JSON
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := rpc.DecodeRequest(payload)
		if err != nil {
			return
		}
		args := rpc.Args(m.GetArgs())
		reply, _ := rpc.AppendReply(nil, m.GetMethod(), m.GetId(), "module.M.rpc", args.Decode(), nil)
		if !json.Valid(reply) {
			t.Fatalf("invalid reply JSON %q", reply)
		}
	})
}

// FuzzDecodeHTTPRequest feeds arbitrary bodies to the HTTP request decoder.
func FuzzDecodeHTTPRequest(f *testing.F) {
	f.Add([]byte(`{"method": "online_users", "args": [true, 1, 1.5, "x"], "id": 3}`))
	f.Add([]byte(`{"method": "m", "args": [null, [], {}]}`))
	f.Add([]byte(`{"method": "m", "args": [1e999, -0, 99999999999999999999]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		method, id, args, err := rpc.DecodeHTTPRequest(body)
		reply, _ := rpc.AppendReply(nil, method, id, "module.M.rpc", args.Decode(), err)
		if !json.Valid(reply) {
			t.Fatalf("invalid reply JSON %q", reply)
		}
	})
}

// FuzzPythonJSON checks that the re-encoder accepts exactly valid JSON and always emits valid JSON.
func FuzzPythonJSON(f *testing.F) {
	f.Add([]byte(`{"battery": 10.40, "a": [1, "é", null, true]}`))
	f.Add([]byte(`"\ud83d\ude00"`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := rpc.PythonJSON(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("PythonJSON(%q) = %q: invalid JSON", in, out)
		}
	})
}
