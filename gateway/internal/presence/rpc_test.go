package presence

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// goldenState builds a fixed registry state: alice then pat then robot1 then bob online (pat with
// two sockets), alice and paula (offline) busy, robot1 with a float status, robot2 busy offline.
func goldenState(t *testing.T) *testReg {
	tr := newTestReg(t)
	go func() {
		for range tr.events {
		}
	}()
	tr.feed(userConn(alice, true), partConn(pat, true), devConn(robot1, true), userConn(bob, true), partConn(pat, true))
	tr.feed(&opentera.JoinSessionEvent{SessionUuid: "sess-1", SessionUsers: []string{alice}, SessionParticipants: []string{paula}, SessionDevices: []string{robot2}})
	_, res := tr.r.UpdateDeviceStatus(context.Background(), robot1, `{"battery": 10.4, "charging": true}`, rpc.Float(1732145425.5))
	require.Equal(t, StatusUpdated, res)
	return tr
}

// rpcOverBus calls method with args over the bus transport and returns the raw reply.
func rpcOverBus(t *testing.T, tr *testReg, router *rpc.Router, id uint64, method string, args ...any) string {
	t.Helper()
	replies := make(chan string, 1)
	replyTo := fmt.Sprintf("RedisRPCClient.golden-%d", id)
	sub, err := tr.b.Subscribe(context.Background(), replyTo, func(m bus.Message) { replies <- string(m.Payload) })
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe(context.Background()) }()
	a, err := rpc.ArgsOf(args...)
	require.NoError(t, err)
	payload, err := proto.Marshal(&opentera.RPCMessage{Method: method, ReplyTo: replyTo, Id: id, Timestamp: 1.5, Args: a})
	require.NoError(t, err)
	require.NoError(t, tr.b.Publish(context.Background(), topic.RPC(Module), payload))
	select {
	case r := <-replies:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("no reply to %s", method)
		return ""
	}
}

func newRouter(t *testing.T, tr *testReg) *rpc.Router {
	t.Helper()
	router := rpc.NewRouter(rpc.RouterConfig{})
	require.NoError(t, router.Register(Module, tr.r.Methods()))
	srv := rpc.NewBusServer(rpc.BusConfig{Bus: tr.b, Router: router})
	require.NoError(t, srv.Start(context.Background()))
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return router
}

// TestGoldenReplies checks every method's reply byte for byte against OpenTera's shape (Python
// json.dumps of the reference's return values) for a fixed state.
func TestGoldenReplies(t *testing.T) {
	tr := goldenState(t)
	router := newRouter(t, tr)
	const head = `"pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": `
	tests := []struct {
		method string
		args   []any
		want   string
	}{
		{"online_users", nil, `["` + alice + `", "` + bob + `"]`},
		{"online_participants", []any{"extra", 1}, `["` + pat + `"]`},
		{"online_devices", nil, `["` + robot1 + `"]`},
		{"busy_users", nil, `{"` + alice + `": "sess-1"}`},
		{"busy_participants", nil, `{"` + paula + `": "sess-1"}`},
		{"busy_devices", nil, `{"` + robot2 + `": "sess-1"}`},
		{"status_users", nil, `{"` + alice + `": {"online": true, "busy": true}, "` + bob + `": {"online": true, "busy": false}}`},
		{"status_participants", nil, `{"` + pat + `": {"online": true, "busy": false}, "` + paula + `": {"online": false, "busy": true}}`},
		{"status_devices", nil, `{"` + robot1 + `": {"online": true, "busy": false, "status": {"status": "{\"battery\": 10.4, \"charging\": true}", "timestamp": 1732145425.5}}, "` +
			robot2 + `": {"online": false, "busy": true, "status": null}}`},
		{"update_device_status", []any{robot1, `{"battery": 9}`, 1732145426}, `{"uuid": "` + robot1 + `", "status": "{\"battery\": 9}", "timestamp": 1732145426}`},
		{"update_device_status", []any{robot2, `{"battery": 9}`, 1.5}, `null`},
	}
	for i, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			got := rpcOverBus(t, tr, router, uint64(i), tt.method, tt.args...)
			want := fmt.Sprintf(`{"method": %q, "id": %d, `, tt.method, i) + head + tt.want + `}`
			require.Equal(t, want, got)
		})
	}
}

func TestGoldenErrorReplies(t *testing.T) {
	tr := goldenState(t)
	router := newRouter(t, tr)
	tests := []struct {
		name, method string
		args         []any
		reason       string
	}{
		{"unknown method", "online_robots", nil, `rpc: unknown method: \"online_robots\"`},
		{"uuid not a string", "update_device_status", []any{1, "{}", 1}, `rpc: bad arguments: argument 1 is an integer, want a string (update_device_status(uuid, status, timestamp))`},
		{"status not a string", "update_device_status", []any{robot1, true, 1}, `rpc: bad arguments: argument 2 is a boolean, want a string (update_device_status(uuid, status, timestamp))`},
		{"timestamp not a number", "update_device_status", []any{robot1, "{}", "now"}, `rpc: bad arguments: argument 3 is a string, want a number (update_device_status(uuid, status, timestamp))`},
		{"missing timestamp", "update_device_status", []any{robot1, "{}"}, `rpc: bad arguments: argument 3 missing (want a number) (update_device_status(uuid, status, timestamp))`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rpcOverBus(t, tr, router, uint64(i), tt.method, tt.args...)
			want := fmt.Sprintf(`{"method": %q, "id": %d, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "Error", "return_value": null, "reason": "%s"}`, tt.method, i, tt.reason)
			require.Equal(t, want, got)
		})
	}
}

// TestAccessFiltering: a non-admin caller only sees the uuids it may access.
func TestAccessFiltering(t *testing.T) {
	tr := newTestReg(t)
	go func() {
		for range tr.events {
		}
	}()
	tr.feed(partConn(pat, true), partConn(paula, true), devConn(robot1, true), devConn(robot2, true), userConn(alice, true), userConn(bob, true))
	tr.feed(&opentera.JoinSessionEvent{SessionUuid: "s", SessionParticipants: []string{pat, paula}})
	router := rpc.NewRouter(rpc.RouterConfig{})
	require.NoError(t, router.Register(Module, tr.r.Methods()))
	snap := directory.Demo()
	as := func(kind directory.Kind, uuid string) context.Context {
		acc, ok := snap.Principal(kind, uuid)
		require.True(t, ok)
		return rpc.WithCaller(context.Background(), rpc.Caller{Kind: kind, UUID: uuid, Admin: acc.Admin(), Access: acc})
	}
	call := func(ctx context.Context, method string, args ...any) string {
		a, err := rpc.ArgsOf(args...)
		require.NoError(t, err)
		v, err := router.Call(ctx, Module, method, a)
		require.NoError(t, err)
		b, err := rpc.Marshal(v)
		require.NoError(t, err)
		return string(b)
	}
	aliceCtx := as(directory.KindUser, alice)
	require.Equal(t, `["`+pat+`"]`, call(aliceCtx, "online_participants"), "alice sees pat, not paula")
	require.Equal(t, `{"`+pat+`": "s"}`, call(aliceCtx, "busy_participants"))
	require.Equal(t, `{"`+pat+`": {"online": true, "busy": true}}`, call(aliceCtx, "status_participants"))
	require.Equal(t, `["`+robot1+`"]`, call(aliceCtx, "online_devices"))
	require.Equal(t, `["`+alice+`"]`, call(aliceCtx, "online_users"), "alice sees herself, not bob")

	adminCtx := as(directory.KindUser, directory.DemoAdminUUID)
	require.Equal(t, `["`+pat+`", "`+paula+`"]`, call(adminCtx, "online_participants"))
	svcCtx := as(directory.KindService, directory.DemoServiceUUID)
	require.Equal(t, `["`+robot1+`", "`+robot2+`"]`, call(svcCtx, "online_devices"))

	// update_device_status: the device itself or an admin.
	_, err := router.Call(aliceCtx, Module, "update_device_status", mustArgs(t, robot1, "{}", 1))
	require.ErrorIs(t, err, rpc.ErrForbidden)
	_, err = router.Call(as(directory.KindDevice, robot2), Module, "update_device_status", mustArgs(t, robot1, "{}", 1))
	require.ErrorIs(t, err, rpc.ErrForbidden)
	require.Contains(t, call(as(directory.KindDevice, robot1), "update_device_status", robot1, "{}", 1), `"timestamp": 1`)
	require.Contains(t, call(svcCtx, "update_device_status", robot1, "{}", 2), `"timestamp": 2`)
}

func mustArgs(t *testing.T, xs ...any) rpc.Args {
	t.Helper()
	a, err := rpc.ArgsOf(xs...)
	require.NoError(t, err)
	return a
}

func TestDeviceStatusHandler(t *testing.T) {
	tr := newTestReg(t)
	go func() {
		for range tr.events {
		}
	}()
	router := rpc.NewRouter(rpc.RouterConfig{})
	require.NoError(t, router.Register(Module, tr.r.Methods()))
	snap := directory.Demo()
	h := DeviceStatusHandler(DeviceStatusConfig{Router: router, Authenticate: func(r *http.Request) (rpc.Caller, error) {
		tok := r.URL.Query().Get("token")
		if v := r.Header.Get("Authorization"); v != "" {
			tok = strings.TrimPrefix(v, "OpenTera ")
		}
		kind, uuid, ok := snap.ByToken(tok)
		if !ok {
			return rpc.Caller{}, fmt.Errorf("bad token")
		}
		acc, _ := snap.Principal(kind, uuid)
		return rpc.Caller{Kind: kind, UUID: uuid, Access: acc, Admin: acc.Admin()}, nil
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tok1 := directory.DemoLogins[5].Token
	require.Equal(t, robot1, directory.DemoLogins[5].UUID)
	post := func(query, auth, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/device/status"+query, strings.NewReader(body))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	code, body := post("", "OpenTera "+tok1, `{"status": {"battery": 10.40}, "timestamp": 1732145425.5}`)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, `"Status update forbidden on offline device."`, body)

	tr.feed(devConn(robot1, true))
	tests := []struct {
		name, query, auth, body string
		wantCode                int
		wantBody                string
	}{
		{"ok float", "", "OpenTera " + tok1, `{"status": {"battery": 10.40, "ok":true}, "timestamp": 1732145425.5}`, 200,
			`{"uuid": "` + robot1 + `", "status": "{\"battery\": 10.4, \"ok\": true}", "timestamp": 1732145425.5}`},
		{"stale is ignored", "?token=" + tok1, "", `{"status": "old", "timestamp": 1732145425}`, 200,
			`{"uuid": "` + robot1 + `", "status": "{\"battery\": 10.4, \"ok\": true}", "timestamp": 1732145425.5}`},
		{"ok int via query token", "?token=" + tok1, "", `{"status": [1, "a"], "timestamp": 1732145426}`, 200,
			`{"uuid": "` + robot1 + `", "status": "[1, \"a\"]", "timestamp": 1732145426}`},
		{"missing timestamp", "", "OpenTera " + tok1, `{"status": {}}`, 400, `"Missing arguments"`},
		{"timestamp not a number", "", "OpenTera " + tok1, `{"status": {}, "timestamp": "now"}`, 400, `"Missing arguments"`},
		{"missing status", "", "OpenTera " + tok1, `{"timestamp": 1}`, 400, `"Missing arguments"`},
		{"not json", "", "OpenTera " + tok1, `status=1`, 400, `"Missing arguments"`},
		{"no token", "", "", `{"status": {}, "timestamp": 1}`, 401, `"Unauthorized"`},
		{"service token is not a device", "", "OpenTera " + directory.DemoLogins[7].Token, `{"status": {}, "timestamp": 1}`, 401, `"Unauthorized"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(tt.query, tt.auth, tt.body)
			require.Equal(t, tt.wantCode, code, body)
			require.Equal(t, tt.wantBody, body)
		})
	}
}

// BenchmarkRegistryUpdate measures one presence event: "state" is the registry update alone
// (connect or disconnect of one of 1,000 uuids), "event" the whole bus path (decode the
// TeraModuleMessage, update, encode and publish the republished event).
func BenchmarkRegistryUpdate(b *testing.B) {
	const n = 1000
	uuids := make([]string, n)
	for i := range uuids {
		uuids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	b.Run("state", func(b *testing.B) {
		r := New(Config{Bus: nopBus{}, Directory: directory.NewStore(directory.Demo())})
		b.ReportAllocs()
		i := 0
		st := &r.kinds[directory.KindUser]
		for b.Loop() {
			u := uuids[i%n]
			r.mu.Lock()
			if nd := st.online.get(u); nd != nil {
				st.online.remove(nd)
			} else {
				st.online.add(u, onlineVal{conns: 1})
			}
			r.mu.Unlock()
			i++
		}
	})
	b.Run("event", func(b *testing.B) {
		r := New(Config{Bus: nopBus{}, Directory: directory.NewStore(directory.Demo())})
		payloads := make([][]byte, 2*n)
		for i := range uuids {
			payloads[2*i], _ = EncodeModuleMessage("websocket.user."+uuids[i], topic.UserManagerMessages, userConn(uuids[i], true))
			payloads[2*i+1], _ = EncodeModuleMessage("websocket.user."+uuids[i], topic.UserManagerMessages, userConn(uuids[i], false))
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// connect uuid k, ..., then disconnect them: i%2n walks connects then disconnects
			k := i % (2 * n)
			p := payloads[2*(k%n)+k/n]
			r.onMessage(bus.Message{Channel: topic.UserManagerMessages, Payload: p})
			i++
		}
	})
	b.Run("device_status", func(b *testing.B) {
		r := New(Config{Bus: nopBus{}, Directory: directory.NewStore(directory.Demo())})
		r.kinds[directory.KindDevice].online.add(robot1, onlineVal{conns: 1})
		ctx := context.Background()
		b.ReportAllocs()
		var ts int64
		for b.Loop() {
			ts++
			r.UpdateDeviceStatus(ctx, robot1, `{"battery": 10.4}`, rpc.Int(ts))
		}
	})
}

// BenchmarkStatusUsers measures status_users over 100k online users (half of them busy): the
// snapshot and the JSON encoding of the return value.
func BenchmarkStatusUsers(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := New(Config{Bus: nopBus{}, Directory: directory.NewStore(directory.Demo())})
			st := &r.kinds[directory.KindUser]
			for i := 0; i < n; i++ {
				u := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
				st.online.add(u, onlineVal{conns: 1, busy: i%2 == 0})
				if i%2 == 0 {
					st.busy.add(u, busyVal{session: "00000000-0000-4000-9000-000000000001", online: true})
				}
			}
			h := r.Methods()[MethodStatusUsers]
			ctx := context.Background()
			buf := make([]byte, 0, 16<<20)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			b.ReportAllocs()
			for b.Loop() {
				v, err := h.ServeRPC(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				buf, err = rpc.AppendReply(buf[:0], MethodStatusUsers, 0, topic.RPC(Module), v, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			// On a shared box wall time depends on the neighbours; this thread's CPU time does not.
			b.ReportMetric(float64(threadCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(len(buf)), "reply_bytes")
		})
	}
}

// threadCPU returns the calling OS thread's CPU time in nanoseconds (Linux RUSAGE_THREAD).
func threadCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// nopBus drops everything: benchmarks measure the registry, not the bus.
type nopBus struct{}

func (nopBus) Publish(context.Context, string, []byte) error { return nil }
func (nopBus) Subscribe(context.Context, string, bus.Handler) (bus.Subscription, error) {
	return nil, nil
}
func (nopBus) SubscribeAll(context.Context, []string, bus.Handler) (bus.Subscription, error) {
	return nil, nil
}
func (nopBus) Close(context.Context) error { return nil }

var _ bus.Bus = nopBus{}
