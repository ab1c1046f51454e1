package rpc_test

import (
	"context"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/proto/opentera"
)

type busEnv struct {
	b         *bus.Memory
	r         *rpc.Router
	malformed atomic.Int64
	replies   chan string
}

func newBusEnv(t *testing.T) *busEnv {
	t.Helper()
	e := &busEnv{b: bus.NewMemory(bus.MemoryConfig{}), r: rpc.NewRouter(rpc.RouterConfig{}), replies: make(chan string, 16)}
	require.NoError(t, e.r.Register("TeraServer.UserManagerModule", rpc.Methods{
		"online_users": rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { return []string{"u1", "u2"}, nil }),
		"need_string": rpc.HandlerFunc(func(_ context.Context, a rpc.Args) (any, error) {
			s, err := a.String(0)
			return s, err
		}),
	}))
	s := rpc.NewBusServer(rpc.BusConfig{Bus: e.b, Router: e.r, OnMalformed: func() { e.malformed.Add(1) }})
	require.NoError(t, s.Start(context.Background()))
	_, err := e.b.Subscribe(context.Background(), "RedisRPCClient.test", func(m bus.Message) { e.replies <- string(m.Payload) })
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = s.Stop(context.Background())
		_ = e.b.Close(context.Background())
	})
	return e
}

func (e *busEnv) call(t *testing.T, channel string, m *opentera.RPCMessage) string {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, e.b.Publish(context.Background(), channel, b))
	select {
	case r := <-e.replies:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
		return ""
	}
}

func TestBusReplies(t *testing.T) {
	e := newBusEnv(t)
	const ch = "module.TeraServer.UserManagerModule.rpc"
	tests := []struct {
		name string
		req  *opentera.RPCMessage
		want string
	}{
		{"ok, extra args ignored", &opentera.RPCMessage{Method: "online_users", ReplyTo: "RedisRPCClient.test", Id: 3, Args: mustArgs(t, "ignored")},
			`{"method": "online_users", "id": 3, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": ["u1", "u2"]}`},
		{"unknown method", &opentera.RPCMessage{Method: "nope", ReplyTo: "RedisRPCClient.test", Id: 4},
			`{"method": "nope", "id": 4, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "Error", "return_value": null, "reason": "rpc: unknown method: \"nope\""}`},
		{"wrong argument type", &opentera.RPCMessage{Method: "need_string", ReplyTo: "RedisRPCClient.test", Args: mustArgs(t, 12)},
			`{"method": "need_string", "id": 0, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "Error", "return_value": null, "reason": "rpc: bad arguments: argument 1 is an integer, want a string"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, e.call(t, ch, tt.req))
		})
	}
}

// TestBusReferenceBytes replays the reference's verified RPCMessage bytes.
func TestBusReferenceBytes(t *testing.T) {
	e := newBusEnv(t)
	_, err := e.b.Subscribe(context.Background(), "RedisRPCClient.x", func(m bus.Message) { e.replies <- string(m.Payload) })
	require.NoError(t, err)
	raw, err := hex.DecodeString("0a0c6f6e6c696e655f757365727312105265646973525043436c69656e742e7821000000000000f83f2a053a03616263")
	require.NoError(t, err)
	require.NoError(t, e.b.Publish(context.Background(), "module.TeraServer.UserManagerModule.rpc", raw))
	select {
	case r := <-e.replies:
		require.Equal(t, `{"method": "online_users", "id": 0, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": ["u1", "u2"]}`, r)
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
}

func TestBusMalformedIsCountedAndIgnored(t *testing.T) {
	e := newBusEnv(t)
	const ch = "module.TeraServer.UserManagerModule.rpc"
	for _, junk := range [][]byte{{0xff, 0xff, 0xff}, []byte("not protobuf at all \x00\x01"), {0x0a, 0x10, 'x'}} {
		require.NoError(t, e.b.Publish(context.Background(), ch, junk))
	}
	// A reply_to that is a pattern cannot be answered.
	bad, err := proto.Marshal(&opentera.RPCMessage{Method: "online_users", ReplyTo: "RedisRPCClient.*"})
	require.NoError(t, err)
	require.NoError(t, e.b.Publish(context.Background(), ch, bad))
	// The server keeps serving.
	require.Contains(t, e.call(t, ch, &opentera.RPCMessage{Method: "online_users", ReplyTo: "RedisRPCClient.test"}), `"status": "OK"`)
	require.EqualValues(t, 4, e.malformed.Load())
}

func TestBusFollowsRegistrations(t *testing.T) {
	e := newBusEnv(t)
	require.NoError(t, e.r.Register("Plugin.Sessions", rpc.Methods{"ping": rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { return "pong", nil })}))
	require.Equal(t, `{"method": "ping", "id": 1, "pattern": "module.Plugin.Sessions.rpc", "status": "OK", "return_value": "pong"}`,
		e.call(t, "module.Plugin.Sessions.rpc", &opentera.RPCMessage{Method: "ping", ReplyTo: "RedisRPCClient.test", Id: 1}))
	e.r.Unregister("Plugin.Sessions")
	b, _ := proto.Marshal(&opentera.RPCMessage{Method: "ping", ReplyTo: "RedisRPCClient.test"})
	require.NoError(t, e.b.Publish(context.Background(), "module.Plugin.Sessions.rpc", b))
	select {
	case r := <-e.replies:
		t.Fatalf("unregistered module answered: %s", r)
	case <-time.After(100 * time.Millisecond):
	}
}

func mustArgs(t *testing.T, xs ...any) []*opentera.Value {
	t.Helper()
	a, err := rpc.ArgsOf(xs...)
	require.NoError(t, err)
	return a
}
