package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// goodEcho is an echo guest answering a visibility rule about Pat.
func goodEcho(tb testing.TB) ([]byte, []byte) {
	return wasmFile(tb, "echo"), echoConfig(tb, &pluginv1.InitResult{Name: "echo", Version: "1"},
		visibleRule("participant", directory.DemoPatUUID), nil, nil)
}

func decide(t *testing.T, f filter.Filter, ev *filter.Event, rs []filter.Recipient) ([]filter.Decision, error) {
	t.Helper()
	out := make([]filter.Decision, len(rs))
	err := f.Decide(context.Background(), ev, directory.KindUser, rs, out)
	return out, err
}

func verdicts(ds []filter.Decision) []filter.Verdict {
	out := make([]filter.Verdict, len(ds))
	for i, d := range ds {
		out[i] = d.Verdict
	}
	return out
}

func TestRulePathMatchesNative(t *testing.T) {
	wasm, cfg := goodEcho(t)
	e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg}})
	require.NoError(t, e.r.Load("filter.user", wasm))
	native := &filter.Native{Sessions: e.pres}
	f := e.r.Filter(directory.KindUser, native, e.pres)
	rs := e.recipients(9)
	got, err := decide(t, f, participantEvent(directory.DemoPatUUID), rs)
	require.NoError(t, err)
	want, err := decide(t, native, participantEvent(directory.DemoPatUUID), rs)
	require.NoError(t, err)
	require.Equal(t, verdicts(want), verdicts(got)) // alice and admin see Pat, bob does not
	require.Equal(t, filter.Keep, got[0].Verdict)
	require.Equal(t, filter.Drop, got[1].Verdict)
	require.Equal(t, "filter.user", e.r.Serving(directory.KindUser))
	in, ok := e.r.Info("filter.user")
	require.True(t, ok)
	require.Equal(t, StateActive, in.State)
	require.Equal(t, uint64(1), in.Calls)
}

func TestRuleClausesAndRewrite(t *testing.T) {
	rule := &pluginv1.Rule{
		AnyOf: []*pluginv1.Clause{
			{AdminsOnly: true},
			{Uuids: []string{directory.DemoBobUUID, directory.DemoAliceUUID}, ExceptUuids: []string{directory.DemoAliceUUID}},
			{InSession: "s1"},
		},
		RewriteType: "opentera.protobuf.ParticipantEvent",
		Rewrite:     []byte{0x0a, 0x01, 'x'},
		Cacheable:   true,
	}
	e := newEnv(t, map[string]Settings{"filter.user": {Config: echoConfig(t, &pluginv1.InitResult{}, ruleResult(rule), nil, nil)}})
	require.NoError(t, e.r.Load("filter.user", wasmFile(t, "echo")))
	f := e.r.Filter(directory.KindUser, nil, e.pres)
	rs := e.recipients(3) // alice, bob, admin
	got, err := decide(t, f, participantEvent(directory.DemoPatUUID), rs)
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{filter.Drop, filter.Rewritten, filter.Rewritten}, verdicts(got))
	require.Same(t, got[1].Rewrite, got[2].Rewrite, "one rewrite shared by all recipients")

	// Cacheable: the next event about Pat does not call the plugin; alice joins s1 → in_session.
	e.pres.sessions["s1"] = []string{directory.DemoAliceUUID}
	got, err = decide(t, f, participantEvent(directory.DemoPatUUID), rs)
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{filter.Rewritten, filter.Rewritten, filter.Rewritten}, verdicts(got))
	in, _ := e.r.Info("filter.user")
	require.Equal(t, uint64(1), in.Calls, "cached rule reused")
	// A directory reload drops the cache.
	e.dir.Swap(directory.Demo())
	rs = e.recipients(3)
	_, err = decide(t, f, participantEvent(directory.DemoPatUUID), rs)
	require.NoError(t, err)
	in, _ = e.r.Info("filter.user")
	require.Equal(t, uint64(2), in.Calls)
}

func TestVerdictsPath(t *testing.T) {
	// 10 recipients: deliver 0, 2, 9; rewrite 2.
	vd := &pluginv1.Verdicts{Deliver: []byte{0b101, 0b10}, RewriteMask: []byte{0b100, 0}, RewriteType: "opentera.protobuf.ParticipantEvent"}
	e := newEnv(t, map[string]Settings{"filter.user": {Config: echoConfig(t, &pluginv1.InitResult{}, needRecipients,
		&pluginv1.FilterResult{Result: &pluginv1.FilterResult_Verdicts{Verdicts: vd}}, nil)}})
	require.NoError(t, e.r.Load("filter.user", wasmFile(t, "echo")))
	f := e.r.Filter(directory.KindUser, nil, nil)
	got, err := decide(t, f, participantEvent(directory.DemoPatUUID), e.recipients(10))
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{1, 0, 2, 0, 0, 0, 0, 0, 0, 1}, verdicts(got))
	// Wrong count: garbage fails closed.
	_, err = decide(t, f, participantEvent(directory.DemoPatUUID), e.recipients(17))
	require.ErrorIs(t, err, ErrProtocol)
}

func TestNoPluginUsesFallback(t *testing.T) {
	e := newEnv(t, nil)
	native := &filter.Native{}
	got, err := decide(t, e.r.Filter(directory.KindUser, native, nil), participantEvent(directory.DemoPatUUID), e.recipients(3))
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))
	_, err = decide(t, e.r.Filter(directory.KindUser, nil, nil), participantEvent(directory.DemoPatUUID), e.recipients(3))
	require.ErrorIs(t, err, ErrNotLoaded)
}

// TestHostileCalls: each hostile guest fails its call (fail closed), is counted, and neither
// the other plugin nor its own next call (on a fresh instance) is harmed.
func TestHostileCalls(t *testing.T) {
	cases := []struct {
		name    string
		want    error
		timeout time.Duration
		pages   uint32
	}{
		{"loop", ErrTimeout, 20 * time.Millisecond, 0},
		{"membomb", ErrTrap, time.Second, 64}, // memory.grow costs milliseconds (more under -race)
		{"badptr", ErrProtocol, 0, 0},
		{"oversized", ErrProtocol, time.Second, 512},
		{"guesterr", ErrGuest, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wasm, cfg := goodEcho(t)
			e := newEnv(t, map[string]Settings{
				"filter.user":        {Config: cfg},
				"filter.participant": {Timeout: c.timeout, MemoryPages: c.pages, PoolSize: 2, MaxFailures: 100},
			})
			require.NoError(t, e.r.Load("filter.user", wasm))
			require.NoError(t, e.r.Load("filter.participant", wasmFile(t, c.name)))
			good := e.r.Filter(directory.KindUser, nil, nil)
			bad := e.r.Filter(directory.KindParticipant, nil, nil)
			ev := participantEvent(directory.DemoPatUUID)
			rs := e.recipients(3)
			for i := 0; i < 3; i++ {
				start := time.Now()
				err := bad.Decide(context.Background(), ev, directory.KindParticipant, rs, make([]filter.Decision, 3))
				require.ErrorIs(t, err, c.want, "call %d", i)
				require.Less(t, time.Since(start), 5*time.Second)
				got, err := decide(t, good, ev, rs)
				require.NoError(t, err)
				require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))
			}
			in, _ := e.r.Info("filter.participant")
			require.Equal(t, uint64(3), in.Failures)
			require.Equal(t, StateActive, in.State)
			require.NotEmpty(t, in.LastError)
		})
	}
}

// TestMemoryLimit: the memory bomb never gets past its limit.
func TestMemoryLimit(t *testing.T) {
	e := newEnv(t, map[string]Settings{"filter.user": {MemoryPages: 40, PoolSize: 1}})
	require.NoError(t, e.r.Load("filter.user", wasmFile(t, "membomb")))
	v := e.r.plugins["filter.user"].acquire()
	defer v.release()
	in, err := v.get(context.Background())
	require.NoError(t, err)
	_, err = in.call(context.Background(), in.filter, []byte{1})
	require.ErrorIs(t, err, ErrTrap)
	require.LessOrEqual(t, in.mem.Size(), uint32(40<<16))
	v.discard(in)
}

// TestRejectedLoads: an invalid file never replaces the serving version.
func TestRejectedLoads(t *testing.T) {
	for _, name := range []string{"inittrap", "initloop", "badversion", "noexports", "not-wasm"} {
		t.Run(name, func(t *testing.T) {
			wasm, cfg := goodEcho(t)
			e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg}})
			e.r.initTimeout = 200 * time.Millisecond
			require.NoError(t, e.r.Load("filter.user", wasm))
			before, _ := e.r.Info("filter.user")
			bad := []byte("\x00asm garbage")
			if name != "not-wasm" {
				bad = wasmFile(t, name)
			}
			err := e.r.Load("filter.user", bad)
			require.ErrorIs(t, err, ErrInvalid)
			after, _ := e.r.Info("filter.user")
			require.Equal(t, before.Hash, after.Hash)
			require.Equal(t, StateActive, after.State)
			require.NotEmpty(t, after.LastRejection)
			got, err := decide(t, e.r.Filter(directory.KindUser, nil, nil), participantEvent(directory.DemoPatUUID), e.recipients(3))
			require.NoError(t, err)
			require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))
			// With no previous version the plugin is shown as rejected.
			require.ErrorIs(t, e.r.Load("filter.device", bad), ErrInvalid)
			in, ok := e.r.Info("filter.device")
			require.True(t, ok)
			require.Equal(t, StateRejected, in.State)
		})
	}
}

func TestQuarantineAndRecovery(t *testing.T) {
	wasm, cfg := goodEcho(t)
	e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg, MaxFailures: 3, PoolSize: 1}})
	require.NoError(t, e.r.Load("filter.user", wasmFile(t, "guesterr")))
	f := e.r.Filter(directory.KindUser, &filter.Native{}, nil)
	ev, rs := participantEvent(directory.DemoPatUUID), e.recipients(3)
	for i := 0; i < 3; i++ {
		_, err := decide(t, f, ev, rs)
		require.ErrorIs(t, err, ErrGuest)
	}
	_, err := decide(t, f, ev, rs)
	require.ErrorIs(t, err, ErrQuarantined, "fails fast (closed), not the native fallback")
	in, _ := e.r.Info("filter.user")
	require.Equal(t, StateQuarantined, in.State)
	// Touching the same file retries it; a good file recovers.
	require.NoError(t, e.r.Load("filter.user", wasmFile(t, "guesterr")))
	_, err = decide(t, f, ev, rs)
	require.ErrorIs(t, err, ErrGuest)
	require.NoError(t, e.r.Load("filter.user", wasm))
	got, err := decide(t, f, ev, rs)
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))
	in, _ = e.r.Info("filter.user")
	require.Equal(t, StateActive, in.State)
}

func TestUnloadFallsBack(t *testing.T) {
	wasm, cfg := goodEcho(t)
	e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg}})
	require.NoError(t, e.r.Load("filter.user", wasm))
	e.r.Unload("filter.user")
	require.Equal(t, "", e.r.Serving(directory.KindUser))
	got, err := decide(t, e.r.Filter(directory.KindUser, &filter.Native{}, nil), participantEvent(directory.DemoPaulaUUID), e.recipients(3))
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{0, 1, 1}, verdicts(got))
	require.Empty(t, e.r.Infos())
}

// TestHammerSwap: P goroutines × N calls while the version is swapped continuously. Every call
// succeeds, every replaced version is closed once its calls return.
func TestHammerSwap(t *testing.T) {
	wasm, cfg := goodEcho(t)
	e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg, PoolSize: 3, Timeout: 5 * time.Second}})
	require.NoError(t, e.r.Load("filter.user", wasm))
	f := e.r.Filter(directory.KindUser, nil, nil)
	ev := participantEvent(directory.DemoPatUUID)
	const P, N = 8, 300
	var wg sync.WaitGroup
	var calls, fails atomic.Int64
	stop := make(chan struct{})
	var versions []*version
	var vmu sync.Mutex
	go func() {
		i := 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			// A distinct file each time (one trailing custom section byte differs).
			b := append(append([]byte(nil), wasm...), 0, 3, 1, 'x', 0)
			b[len(b)-1] = byte('a' + i%26)
			i++
			if err := e.r.Load("filter.user", b); err != nil {
				t.Error(err)
				return
			}
			vmu.Lock()
			versions = append(versions, e.r.plugins["filter.user"].cur.Load())
			vmu.Unlock()
		}
	}()
	for g := 0; g < P; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := e.recipients(10)
			out := make([]filter.Decision, len(rs))
			for i := 0; i < N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := f.Decide(ctx, ev, directory.KindUser, rs, out)
				cancel()
				calls.Add(1)
				if err != nil {
					fails.Add(1)
					t.Error(err)
					return
				}
				if out[0].Verdict != filter.Keep || out[1].Verdict != filter.Drop {
					t.Errorf("wrong verdicts %v", verdicts(out))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	require.Equal(t, int64(0), fails.Load())
	require.Equal(t, int64(P*N), calls.Load())
	cur := e.r.plugins["filter.user"].cur.Load()
	vmu.Lock()
	defer vmu.Unlock()
	t.Logf("%d calls across %d versions", calls.Load(), len(versions))
	require.Eventually(t, func() bool {
		for _, v := range versions {
			if v != cur && v.refs.Load() != 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "replaced versions released")
	for _, v := range versions {
		if v != cur {
			v.mu.Lock()
			require.True(t, v.closed)
			v.mu.Unlock()
		}
	}
}

// TestPoolBounded: more concurrent callers than instances wait, never create more.
func TestPoolBounded(t *testing.T) {
	wasm, cfg := goodEcho(t)
	// A generous deadline: this test is about the pool bound, and 16 callers on 2 cores under the
	// race detector can keep a call off the CPU for longer than the 50 ms default.
	e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg, PoolSize: 2, Timeout: 10 * time.Second}})
	require.NoError(t, e.r.Load("filter.user", wasm))
	f := e.r.Filter(directory.KindUser, nil, nil)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs := e.recipients(5)
			for i := 0; i < 200; i++ {
				require.NoError(t, f.Decide(context.Background(), participantEvent(directory.DemoPatUUID), directory.KindUser, rs, make([]filter.Decision, 5)))
			}
		}()
	}
	wg.Wait()
	v := e.r.plugins["filter.user"].cur.Load()
	v.mu.Lock()
	defer v.mu.Unlock()
	require.Equal(t, 2, v.live)
}

func TestHostImports(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.r.Load("rpc.hostcalls", wasmFile(t, "hostcalls")))
	q, err := proto.Marshal(&pluginv1.DirectoryQuery{Query: "can_see", Subject: &pluginv1.Subject{Kind: "participant", Uuid: directory.DemoPatUUID},
		Viewer: &pluginv1.Subject{Kind: "user", Uuid: directory.DemoAliceUUID}})
	require.NoError(t, err)
	req, err := proto.Marshal(&pluginv1.RPCCall{ArgsJson: q})
	require.NoError(t, err)
	out, err := e.r.callRaw(context.Background(), "rpc.hostcalls", exportRPC, req)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(out), 12)
	n := int32(uint32(out[4]) | uint32(out[5])<<8 | uint32(out[6])<<16 | uint32(out[7])<<24)
	pub := int32(uint32(out[8]) | uint32(out[9])<<8 | uint32(out[10])<<16 | uint32(out[11])<<24)
	require.Positive(t, n)
	require.Equal(t, int32(-1), pub, "publish with a bad pointer fails that call")
	var res pluginv1.QueryResult
	require.NoError(t, proto.Unmarshal(out[12:], &res))
	require.True(t, res.Found)
	require.True(t, res.Flag, "alice sees pat")

	// Garbage query: HostErrBadRequest, never a panic.
	req, _ = proto.Marshal(&pluginv1.RPCCall{ArgsJson: []byte{0xff, 0xff, 0xff}})
	out, err = e.r.callRaw(context.Background(), "rpc.hostcalls", exportRPC, req)
	require.NoError(t, err)
	require.Equal(t, byte(0xff), out[4]) // -1
}

func TestTopicAllowed(t *testing.T) {
	for topic, ok := range map[string]bool{
		"websocket.user.x.events":                    true,
		"module.TeraServer.UserManagerModule.events": true,
		"module.TeraServer.TwistedModule.events.x":   false,
		"websocket.*":      false,
		"service.a.events": true,
		"module.TeraServer.UserManagerModule.events.x": false,
		"": false,
	} {
		require.Equal(t, ok, TopicAllowed(DefaultPublishTopics, topic), topic)
	}
}

func TestRPCPlugin(t *testing.T) {
	e := newEnv(t, map[string]Settings{"rpc.echo": {Config: echoConfig(t, &pluginv1.InitResult{RpcModule: "echo", RpcMethods: []string{"ping"}},
		nil, nil, &pluginv1.RPCResult{ReturnJson: []byte(`"pong"`)})}})
	var changes []string
	e.r.cfg.OnChange = func(id string, in *Info) {
		changes = append(changes, fmt.Sprintf("%s %v", id, in != nil && in.RPCModule == "echo"))
	}
	require.NoError(t, e.r.Load("rpc.echo", wasmFile(t, "echo")))
	out, err := e.r.CallRPC(context.Background(), "rpc.echo", "ping", &pluginv1.RPCCall{})
	require.NoError(t, err)
	require.Equal(t, `"pong"`, string(out))
	e.r.Unload("rpc.echo")
	_, err = e.r.CallRPC(context.Background(), "rpc.echo", "ping", &pluginv1.RPCCall{})
	require.True(t, errors.Is(err, ErrNotLoaded))
	require.Equal(t, []string{"rpc.echo true", "rpc.echo false"}, changes)
}
