package pluginhost

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

func wasmFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	require.NoError(tb, err)
	return b
}

// echoConfig scripts the echo guest: what tg_init, the first and second tg_filter calls and
// tg_rpc return.
func echoConfig(tb testing.TB, init *pluginv1.InitResult, first, second *pluginv1.FilterResult, rpc *pluginv1.RPCResult) []byte {
	tb.Helper()
	enc := func(m proto.Message) []byte {
		if m == nil {
			return nil
		}
		b, err := proto.Marshal(m)
		require.NoError(tb, err)
		return b
	}
	i, f, s, r := enc(init), enc(first), enc(second), enc(rpc)
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(i)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(f)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(s)))
	out = append(out, i...)
	out = append(out, f...)
	out = append(out, s...)
	return append(out, r...)
}

func ruleResult(r *pluginv1.Rule) *pluginv1.FilterResult {
	return &pluginv1.FilterResult{Result: &pluginv1.FilterResult_Rule{Rule: r}}
}

func visibleRule(kind, uuid string) *pluginv1.FilterResult {
	return ruleResult(&pluginv1.Rule{AnyOf: []*pluginv1.Clause{{Visible: &pluginv1.Subject{Kind: kind, Uuid: uuid}}}})
}

var needRecipients = &pluginv1.FilterResult{Result: &pluginv1.FilterResult_NeedRecipients{NeedRecipients: true}}

// fakePresence: a fixed session membership.
type fakePresence struct {
	mu       sync.Mutex
	sessions map[string][]string
}

func (f *fakePresence) Online(directory.Kind, string) bool { return true }
func (f *fakePresence) Busy(k directory.Kind, uuid string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s, us := range f.sessions {
		for _, u := range us {
			if u == uuid {
				return s, true
			}
		}
	}
	return "", false
}
func (f *fakePresence) InSession(_ directory.Kind, uuid, session string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.sessions[session] {
		if u == uuid {
			return true
		}
	}
	return false
}

type recordPublisher struct {
	mu     sync.Mutex
	topics []string
}

func (p *recordPublisher) Publish(_ context.Context, ch string, _ []byte) error {
	p.mu.Lock()
	p.topics = append(p.topics, ch)
	p.mu.Unlock()
	return nil
}

type testEnv struct {
	r    *Registry
	dir  *directory.Store
	pres *fakePresence
	pub  *recordPublisher
}

func newEnv(tb testing.TB, settings map[string]Settings) *testEnv {
	tb.Helper()
	e := &testEnv{dir: directory.NewStore(directory.Demo()), pres: &fakePresence{sessions: map[string][]string{}}, pub: &recordPublisher{}}
	lvl := hclog.Off
	if testing.Verbose() {
		lvl = hclog.Debug
	}
	r, err := New(Config{
		CacheDir: filepath.Join(os.TempDir(), "teragate-pluginhost-test-cache"),
		Settings: settings,
		Deps:     Deps{Directory: e.dir, Presence: e.pres, Publisher: e.pub},
		Logger:   hclog.New(&hclog.LoggerOptions{Level: lvl, Output: os.Stderr}),
		Debounce: 20 * time.Millisecond,
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = r.Close(context.Background()) })
	e.r = r
	return e
}

// recipients returns n recipients cycling through the demo users.
func (e *testEnv) recipients(n int) []filter.Recipient {
	snap := e.dir.Current()
	users := []string{directory.DemoAliceUUID, directory.DemoBobUUID, directory.DemoAdminUUID}
	rs := make([]filter.Recipient, n)
	for i := range rs {
		u := users[i%len(users)]
		a, _ := snap.Principal(directory.KindUser, u)
		rs[i] = filter.Recipient{Kind: directory.KindUser, UUID: u, Access: a}
	}
	return rs
}

func participantEvent(uuid string) *filter.Event {
	m := &opentera.ParticipantEvent{ParticipantUuid: uuid, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED}
	a, _ := anypb.New(m)
	return filter.DecodeEvent("module.TeraServer.UserManagerModule.events", a)
}
