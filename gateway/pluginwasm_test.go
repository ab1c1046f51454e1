package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/pluginhost"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// The first-party plugins, built to Wasm and run under the real plugin host (pluginhost). Building
// takes a few seconds per plugin, so these tests are skipped under -short.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// builtPlugins builds every first-party plugin once per test binary (Go guests with the Go
// toolchain, the WAT guest with wat2wasm when installed) and returns the directory of <id>.wasm.
func builtPlugins(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds Wasm plugins; skipped with -short")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "teragate-plugins-")
		if buildErr != nil {
			return
		}
		root := filepath.Join("..")
		for id, pkg := range map[string]string{
			"filter.user": "./plugins/filter/user", "filter.participant": "./plugins/filter/participant",
			"filter.device": "./plugins/filter/device", "rpc.sessions": "./plugins/rpc/sessions",
		} {
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(buildDir, id+".wasm"), pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = &buildError{id, string(out)}
				return
			}
		}
		if _, err := exec.LookPath("wat2wasm"); err == nil {
			cmd := exec.Command("wat2wasm", "plugins/wat/sessionstop/filter.sessionstop.wat", "-o", filepath.Join(buildDir, "filter.sessionstop.wasm"))
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = &buildError{"filter.sessionstop", string(out)}
			}
		}
	})
	require.NoError(tb, buildErr)
	return buildDir
}

type buildError struct{ id, out string }

func (e *buildError) Error() string { return "building " + e.id + ": " + e.out }

// hostSessions is the presence fake behind the host's imports and in_session clauses.
type hostSessions struct {
	fakeSessions
	busy map[string]string // uuid → session
}

func (h hostSessions) Online(directory.Kind, string) bool { return true }
func (h hostSessions) Busy(_ directory.Kind, uuid string) (string, bool) {
	s, ok := h.busy[uuid]
	return s, ok
}

type recordBus struct {
	mu  sync.Mutex
	got []recorded
}

type recorded struct {
	channel string
	ev      *opentera.TeraEvent
}

func (b *recordBus) Publish(_ context.Context, ch string, payload []byte) error {
	var ev opentera.TeraEvent
	if err := proto.Unmarshal(payload, &ev); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, recorded{ch, &ev})
	return nil
}

func newHost(tb testing.TB, pres hostSessions, bus *recordBus) *pluginhost.Registry {
	tb.Helper()
	r, err := pluginhost.New(pluginhost.Config{
		CacheDir: filepath.Join(os.TempDir(), "teragate-pluginwasm-test-cache"),
		Deps:     pluginhost.Deps{Directory: directory.NewStore(directory.Demo()), Presence: pres, Publisher: bus},
		Logger:   hclog.NewNullLogger(),
		Settings: map[string]pluginhost.Settings{},
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// TestPluginWasmMatchesNative loads the three built filter plugins into the real host (rewritten
// for cheap deadlines by wasmguard) and checks that, for the whole event corpus, the host's
// plugin filters deliver to exactly the recipients the native filter does.
func TestPluginWasmMatchesNative(t *testing.T) {
	dir := builtPlugins(t)
	sessions := demoSessions()
	r := newHost(t, hostSessions{fakeSessions: sessions}, &recordBus{})
	for _, id := range []string{"filter.user", "filter.participant", "filter.device"} {
		require.NoError(t, r.LoadFile(id, filepath.Join(dir, id+".wasm")))
		in, _ := r.Info(id)
		require.Equal(t, pluginhost.DeadlineInstrumented, in.Deadline, "%s runs rewritten by wasmguard", id)
	}
	snap := directory.Demo()
	native := &filter.Native{Sessions: sessions}
	ctx := context.Background()
	for _, kind := range []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice} {
		require.Equal(t, "filter."+kind.String(), r.Serving(kind))
		f := r.Filter(kind, nil, sessions)
		var rs []filter.Recipient
		for _, uuid := range demoRecipients[kind] {
			a, _ := snap.Principal(kind, uuid)
			rs = append(rs, filter.Recipient{Kind: kind, UUID: uuid, Access: a})
		}
		for range 2 { // the second round is served from the host's rule cache
			for _, m := range demoEvents() {
				a, err := opentera.NewAny(m)
				require.NoError(t, err)
				ev := filter.DecodeEvent(demoTopic, a)
				want := make([]filter.Decision, len(rs))
				got := make([]filter.Decision, len(rs))
				require.NoError(t, native.Decide(ctx, ev, kind, rs, want))
				require.NoError(t, f.Decide(ctx, ev, kind, rs, got))
				for i := range rs {
					require.Equal(t, want[i].Verdict, got[i].Verdict, "%s %s %v → %s", kind, ev.Name(), m, rs[i].UUID)
				}
			}
		}
	}
}

// TestWATGuestUnderHost loads the WebAssembly-text guest (not Go) into the real host.
func TestWATGuestUnderHost(t *testing.T) {
	dir := builtPlugins(t)
	path := filepath.Join(dir, "filter.sessionstop.wasm")
	if _, err := os.Stat(path); err != nil {
		t.Skip("wat2wasm not installed (apt-get install wabt)")
	}
	r := newHost(t, hostSessions{fakeSessions: fakeSessions{}}, &recordBus{})
	require.NoError(t, r.LoadFile("filter.sessionstop", path))
	info, ok := r.Info("filter.sessionstop")
	require.True(t, ok)
	require.Equal(t, []string{"device"}, info.FilterKinds)
	require.Equal(t, "filter.sessionstop", r.Serving(directory.KindDevice))
	snap := directory.Demo()
	var rs []filter.Recipient
	for _, uuid := range []string{directory.DemoRobot1UUID, directory.DemoRobot2UUID} {
		a, _ := snap.Principal(directory.KindDevice, uuid)
		rs = append(rs, filter.Recipient{Kind: directory.KindDevice, UUID: uuid, Access: a})
	}
	f := r.Filter(directory.KindDevice, nil, nil)
	for _, tc := range []struct {
		ev   proto.Message
		want filter.Verdict
	}{
		{&opentera.StopSessionEvent{SessionUuid: "s"}, filter.Keep},
		{&opentera.DeviceEvent{DeviceUuid: directory.DemoRobot1UUID}, filter.Drop},
		{&opentera.JoinSessionEvent{SessionDevices: []string{directory.DemoRobot1UUID}}, filter.Drop},
	} {
		a, err := opentera.NewAny(tc.ev)
		require.NoError(t, err)
		out := make([]filter.Decision, len(rs))
		require.NoError(t, f.Decide(context.Background(), filter.DecodeEvent(demoTopic, a), directory.KindDevice, rs, out))
		for _, d := range out {
			require.Equal(t, tc.want, d.Verdict, "%T", tc.ev)
		}
	}
}

// TestSessionsPluginUnderHost: the built rpc.sessions plugin, called through the real host,
// answers REPLY_BUSY for a busy invitee and forwards the invitation to a free one.
func TestSessionsPluginUnderHost(t *testing.T) {
	dir := builtPlugins(t)
	bus := &recordBus{}
	pres := hostSessions{fakeSessions: fakeSessions{}, busy: map[string]string{directory.DemoPatUUID: "s-old"}}
	r := newHost(t, pres, bus)
	require.NoError(t, r.LoadFile("rpc.sessions", filepath.Join(dir, "rpc.sessions.wasm")))
	args := `["{\"sessionUuid\": \"s-new\", \"sessionUsers\": [\"` + directory.DemoAliceUUID + `\"], \"sessionParticipants\": [\"` + directory.DemoPatUUID + `\"]}"]`
	ret, err := r.CallRPC(context.Background(), "rpc.sessions", "invite", &pluginv1.RPCCall{ArgsJson: []byte(args)})
	require.NoError(t, err)
	require.JSONEq(t, `{"forwarded": ["`+directory.DemoAliceUUID+`"], "busy": {"`+directory.DemoPatUUID+`": "s-old"}}`, string(ret))

	bus.mu.Lock()
	defer bus.mu.Unlock()
	require.Len(t, bus.got, 2)
	require.Equal(t, "module.TeraServer.UserManagerModule.events", bus.got[0].channel)
	reply := &opentera.JoinSessionReplyEvent{}
	require.NoError(t, bus.got[0].ev.GetEvents()[0].UnmarshalTo(reply))
	require.Equal(t, opentera.JoinSessionReplyEvent_REPLY_BUSY, reply.GetJoinReply())
	require.Equal(t, directory.DemoPatUUID, reply.GetParticipantUuid())
	require.Equal(t, "websocket.user."+directory.DemoAliceUUID+".events", bus.got[1].channel)
	join := &opentera.JoinSessionEvent{}
	require.NoError(t, bus.got[1].ev.GetEvents()[0].UnmarshalTo(join))
	require.Equal(t, []string{directory.DemoAliceUUID}, join.GetSessionUsers())
	require.Empty(t, join.GetSessionParticipants())
}

// BenchmarkPluginFilterHost measures the host's Decide with the built filter.user plugin for a
// ParticipantEvent and 100 recipients: "cached" is the steady state (the cacheable rule is reused,
// the guest is not entered); "uncached" changes the event's subject every time (65,536 subjects,
// twice what the rule cache holds), so each Decide makes one tg_filter call.
func BenchmarkPluginFilterHost(b *testing.B) {
	dir := builtPlugins(b)
	r := newHost(b, hostSessions{fakeSessions: fakeSessions{}}, &recordBus{})
	require.NoError(b, r.LoadFile("filter.user", filepath.Join(dir, "filter.user.wasm")))
	snap := directory.Demo()
	users := []string{directory.DemoAdminUUID, directory.DemoAliceUUID, directory.DemoBobUUID}
	rs := make([]filter.Recipient, 100)
	for i := range rs {
		a, _ := snap.Principal(directory.KindUser, users[i%3])
		rs[i] = filter.Recipient{Kind: directory.KindUser, UUID: users[i%3], Access: a}
	}
	out := make([]filter.Decision, len(rs))
	f := r.Filter(directory.KindUser, nil, nil)
	native := &filter.Native{}
	mk := func(uuid string) *filter.Event {
		a, _ := opentera.NewAny(&opentera.ParticipantEvent{ParticipantUuid: uuid, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED,
			ParticipantName: "Pat Demo", ParticipantProjectName: "Rehab", ParticipantSiteName: "Montreal"})
		return filter.DecodeEvent(demoTopic, a)
	}
	ev := mk(directory.DemoPatUUID)
	// Twice the host's rule cache (32,768 rules, cleared when full): every call misses.
	many := make([]*filter.Event, 1<<16)
	for i := range many {
		many[i] = mk("p-" + strconv.Itoa(i))
	}
	ctx := context.Background()
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = native.Decide(ctx, ev, directory.KindUser, rs, out)
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			require.NoError(b, f.Decide(ctx, ev, directory.KindUser, rs, out))
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			require.NoError(b, f.Decide(ctx, many[i%len(many)], directory.KindUser, rs, out))
		}
	})
	_ = runtime.GOMAXPROCS(0)
}

// BenchmarkPluginFilterStop: a StopSessionEvent with a new session uuid each time (no cache hit),
// 1,000 recipients: the bench's broadcast event.
func BenchmarkPluginFilterStop(b *testing.B) {
	dir := builtPlugins(b)
	r := newHost(b, hostSessions{fakeSessions: fakeSessions{}}, &recordBus{})
	require.NoError(b, r.LoadFile("filter.user", filepath.Join(dir, "filter.user.wasm")))
	snap := directory.Demo()
	rs := make([]filter.Recipient, 1000)
	for i := range rs {
		a, _ := snap.Principal(directory.KindUser, directory.DemoAliceUUID)
		rs[i] = filter.Recipient{Kind: directory.KindUser, UUID: directory.DemoAliceUUID, Access: a}
	}
	out := make([]filter.Decision, len(rs))
	f := r.Filter(directory.KindUser, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		a, _ := opentera.NewAny(&opentera.StopSessionEvent{SessionUuid: "s-" + strconv.Itoa(i)})
		require.NoError(b, f.Decide(ctx, filter.DecodeEvent(demoTopic, a), directory.KindUser, rs, out))
	}
}
