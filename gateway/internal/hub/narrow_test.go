package hub

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/pluginhost"
	"github.com/teragate/teragate/gateway/internal/pluginhost/wasmbuild"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// sessionSet is a fixed session membership (session → uuids), as the presence registry answers.
type sessionSet map[string][]string

func (s sessionSet) InSession(_ directory.Kind, uuid, session string) bool {
	return contains(s[session], uuid)
}

// narrowWorld is a hub full of sockets over one or two directory snapshots.
type narrowWorld struct {
	name     string
	hub      *Hub
	router   *Router
	events   []*filter.Event
	sessions sessionSet
	store    *directory.Store // the "current" snapshot, for the plugin host's rule cache
}

// snapMode says which snapshot the sockets' access handles come from.
type snapMode int

const (
	snapOne      snapMode = iota // every socket from A
	snapMixed                    // sockets from A and from B (logins that raced a reload)
	snapReloaded                 // registered with A, then UpdateDirectory(B)
)

func (m snapMode) String() string { return [...]string{"one", "mixed", "reloaded"}[m] }

// newNarrowWorld registers 0–2 sockets per entity of doc (and sockets of unknown uuids, whose
// access is the zero Access) and builds the event corpus.
func newNarrowWorld(t *testing.T, name string, doc *dirDoc, docB *dirDoc, mode snapMode, seed uint64) *narrowWorld {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	a := doc.parse(t)
	b := a
	if docB != nil {
		b = docB.parse(t)
	}
	h := New(Config{Metrics: metrics.New(), MaxQueueFrames: 1 << 16, MaxQueueBytes: 1 << 28})
	wd := &narrowWorld{name: fmt.Sprintf("%s/%s", name, mode), hub: h, store: directory.NewStore(b)}
	wd.router = NewRouter(h, bus.NewMemory(bus.MemoryConfig{}), RouterConfig{})
	ents := doc.entities()
	for _, e := range ents {
		for range rng.IntN(3) {
			snap := a
			if mode == snapMixed && rng.IntN(2) == 0 {
				snap = b
			}
			acc, _ := snap.Principal(e.kind, e.uuid)
			h.Register(&discardConn{}, e.kind, e.uuid, Format(rng.IntN(2)), acc)
		}
	}
	for _, k := range socketKinds {
		h.Register(&discardConn{}, k, "unknown-"+k.String(), FormatJSON, directory.Access{})
	}
	if mode == snapReloaded {
		h.UpdateDirectory(b)
	}

	pick := func() filterEntity {
		if len(ents) == 0 {
			return filterEntity{directory.KindUser, "nobody"}
		}
		return ents[rng.IntN(len(ents))]
	}
	uuidsOf := func(k directory.Kind) []string {
		var out []string
		for range rng.IntN(5) {
			e := pick()
			if e.kind == k || rng.IntN(3) == 0 {
				out = append(out, e.uuid)
			}
		}
		if len(out) > 0 && rng.IntN(2) == 0 {
			out = append(out, out[0], "unknown-"+k.String()) // duplicates and unknown uuids
		}
		return out
	}
	wd.sessions = sessionSet{}
	for s := range 3 {
		id := fmt.Sprintf("session-%d", s)
		for range 1 + rng.IntN(6) {
			wd.sessions[id] = append(wd.sessions[id], pick().uuid)
		}
	}
	var msgs []proto.Message
	for _, e := range ents {
		if rng.IntN(max(1, len(ents)/40)) != 0 {
			continue // a sample of the subjects
		}
		switch e.kind {
		case directory.KindUser:
			msgs = append(msgs, &opentera.UserEvent{UserUuid: e.uuid, Type: opentera.UserEvent_USER_CONNECTED})
		case directory.KindParticipant:
			msgs = append(msgs, &opentera.ParticipantEvent{ParticipantUuid: e.uuid})
		case directory.KindDevice:
			msgs = append(msgs, &opentera.DeviceEvent{DeviceUuid: e.uuid})
		}
	}
	someone := pick()
	msgs = append(msgs,
		&opentera.UserEvent{UserUuid: "nobody"},
		&opentera.ParticipantEvent{ParticipantUuid: someone.uuid}, // possibly of the wrong kind
		&opentera.DeviceEvent{DeviceUuid: "unknown-device"},
		&opentera.JoinSessionEvent{SessionUuid: "session-0", SessionUsers: uuidsOf(directory.KindUser), SessionParticipants: uuidsOf(directory.KindParticipant), SessionDevices: uuidsOf(directory.KindDevice)},
		&opentera.JoinSessionEvent{SessionUuid: "session-9"},
		&opentera.LeaveSessionEvent{SessionUuid: "session-1"},
		&opentera.LeaveSessionEvent{},
		&opentera.JoinSessionReplyEvent{SessionUuid: "session-2", UserUuid: pick().uuid, ParticipantUuid: pick().uuid, DeviceUuid: pick().uuid},
		&opentera.StopSessionEvent{SessionUuid: "session-0"},
		&opentera.ArchiveEvent{OwnerUuid: pick().uuid},
		&opentera.ArchiveEvent{OwnerUuid: "unknown-participant"},
		&opentera.DatabaseEvent{ObjectType: "user"},
		&opentera.LogEvent{Message: "x"},
	)
	for _, m := range msgs {
		an, err := opentera.NewAny(m)
		require.NoError(t, err)
		wd.events = append(wd.events, filter.DecodeEvent(topic.UserManagerEvents, an))
	}
	wd.events = append(wd.events,
		filter.DecodeEvent(topic.UserManagerEvents, &anypb.Any{TypeUrl: "type.googleapis.com/opentera.protobuf.NoSuchEvent", Value: []byte{1}}),
		filter.DecodeEvent(topic.UserManagerEvents, &anypb.Any{TypeUrl: opentera.TypeURL(&opentera.UserEvent{}), Value: []byte{0xff}}))
	return wd
}

// worlds is the corpus of directory shapes × snapshot modes.
func narrowWorlds(t *testing.T) []*narrowWorld {
	demo := &dirDoc{}
	require.NoError(t, yaml.Unmarshal(directory.DemoYAML, demo))
	shapes := []struct {
		name string
		a, b dirShape
	}{
		{"few projects, admins, multi-project users", dirShape{random: true, seed: 1, users: 40, participants: 30, devices: 30, projects: 8, superadmins: 3},
			dirShape{random: true, seed: 2, users: 36, participants: 30, devices: 28, projects: 8, superadmins: 1}},
		{"over 64 projects", dirShape{random: true, seed: 3, users: 60, participants: 50, devices: 40, projects: 120, superadmins: 2},
			dirShape{random: true, seed: 4, users: 60, participants: 50, devices: 40, projects: 120}},
		{"bench shape", dirShape{users: 60, participants: 60, devices: 60, projects: 10},
			dirShape{users: 60, participants: 60, devices: 60, projects: 7}},
		{"no participants", dirShape{random: true, seed: 5, users: 10, devices: 10, projects: 3},
			dirShape{random: true, seed: 6, users: 10, devices: 10, projects: 3, superadmins: 10}},
	}
	var out []*narrowWorld
	for _, mode := range []snapMode{snapOne, snapMixed, snapReloaded} {
		out = append(out, newNarrowWorld(t, "demo", demo, genDoc(dirShape{random: true, seed: 9, users: 3, participants: 2, devices: 2, projects: 2}), mode, 1))
		for i, sh := range shapes {
			out = append(out, newNarrowWorld(t, sh.name, genDoc(sh.a), genDoc(sh.b), mode, uint64(i)))
		}
	}
	out = append(out, newNarrowWorld(t, "no sockets", &dirDoc{}, nil, snapOne, 0))
	return out
}

// decided is what routing decided for one socket.
type decided struct {
	verdict filter.Verdict
	rewrite string
}

// route runs the router's filtering of ev for kind k with f and returns the non-drop decisions
// by socket id, the number of candidates and the filter's error.
func (wd *narrowWorld) route(f filter.Filter, ev *filter.Event, k directory.Kind) (map[uint64]decided, int, error) {
	wd.router.SetFilter(k, f)
	w := &worker{}
	res, ok := wd.router.filterKind(w, ev, k, "")
	if !ok {
		return nil, len(w.conns), nil
	}
	if res.err != nil {
		return nil, len(w.conns), res.err
	}
	out := map[uint64]decided{}
	for i, c := range w.conns {
		d := w.ds[i]
		if d.Verdict == filter.Drop {
			continue
		}
		if _, dup := out[c.id]; dup {
			panic("socket gathered twice")
		}
		var rw string
		if d.Rewrite != nil {
			rw = d.Rewrite.GetTypeUrl() + string(d.Rewrite.GetValue())
		}
		out[c.id] = decided{d.Verdict, rw}
	}
	return out, len(w.conns), nil
}

// checkNarrowing routes every event of every world for every kind twice — with the filter that
// mk returns (a filter.Narrower), and with the same filter hidden behind a filter.Func so that
// every socket of the kind is a candidate — and requires the same decisions. It returns how many
// candidates the narrowed and the full routing visited.
func checkNarrowing(t *testing.T, worlds []*narrowWorld, mk func(wd *narrowWorld, k directory.Kind) filter.Filter) (narrowed, all int) {
	t.Helper()
	for _, wd := range worlds {
		for _, k := range socketKinds {
			f := mk(wd, k)
			_, ok := f.(filter.Narrower)
			require.True(t, ok, "%T is not a filter.Narrower", f)
			plain := filter.Func(f.Decide)
			for round := range 2 { // the plugin host's second round comes from its rule cache
				for _, ev := range wd.events {
					want, nAll, wantErr := wd.route(plain, ev, k)
					got, nNarrow, gotErr := wd.route(f, ev, k)
					if (wantErr == nil) != (gotErr == nil) {
						t.Fatalf("%s %s %s round %d: error %v, want %v", wd.name, k, ev.Name(), round, gotErr, wantErr)
					}
					if len(want) == 0 {
						want = nil
					}
					if len(got) == 0 {
						got = nil
					}
					require.Equal(t, want, got, "%s: kind %s, %s %v, round %d", wd.name, k, ev.Name(), ev.Msg, round)
					narrowed += nNarrow
					all += nAll
				}
			}
		}
	}
	return narrowed, all
}

// TestNarrowedDeliveryMatchesAll checks that the native filter, narrowed through the hub's index,
// decides exactly what it decides when every socket of the kind is a candidate: for many
// directory shapes (superadmins, users in several projects, over 64 projects, participants and
// devices with several links, unknown sockets), sockets whose access comes from one snapshot, from
// two (logins that raced a reload) or from a reload, and events of every type.
func TestNarrowedDeliveryMatchesAll(t *testing.T) {
	worlds := narrowWorlds(t)
	for _, withSessions := range []bool{true, false} {
		t.Run(fmt.Sprintf("sessions=%v", withSessions), func(t *testing.T) {
			n, all := checkNarrowing(t, worlds, func(wd *narrowWorld, _ directory.Kind) filter.Filter {
				if withSessions {
					return &filter.Native{Sessions: wd.sessions}
				}
				return &filter.Native{}
			})
			require.Less(t, n, all/2, "narrowing visits fewer sockets")
			t.Logf("candidates visited: %d narrowed, %d without narrowing", n, all)
		})
	}
}

func newPluginHost(t *testing.T, wd *narrowWorld, settings map[string]pluginhost.Settings) *pluginhost.Registry {
	t.Helper()
	r, err := pluginhost.New(pluginhost.Config{
		Settings: settings,
		CacheDir: filepath.Join(os.TempDir(), "teragate-pluginhost-test-cache"),
		Deps:     pluginhost.Deps{Directory: wd.store, Presence: presenceOf(wd.sessions)},
		Logger:   hclog.NewNullLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// presenceOf answers the plugin host's presence facts from a session set.
type presenceOf sessionSet

func (p presenceOf) Online(directory.Kind, string) bool { return true }
func (p presenceOf) Busy(_ directory.Kind, uuid string) (string, bool) {
	for s, us := range p {
		if contains(us, uuid) {
			return s, true
		}
	}
	return "", false
}
func (p presenceOf) InSession(k directory.Kind, uuid, session string) bool {
	return sessionSet(p).InSession(k, uuid, session)
}

// TestNarrowedPluginRulesMatchAll loads the echo guest (pluginhost/testdata) scripted with rules
// of every clause shape and checks, as above, that the plugin filter narrowed through the index
// decides exactly as it does over every socket, from the guest's answer and from the host's rule
// cache; with a need_recipients guest every socket stays a candidate.
func TestNarrowedPluginRulesMatchAll(t *testing.T) {
	wasm, err := os.ReadFile(filepath.Join("..", "pluginhost", "testdata", "echo.wasm"))
	require.NoError(t, err)
	worlds := narrowWorlds(t)
	clause := func(c *pluginv1.Clause) *pluginv1.Clause { return c }
	rule := func(cacheable bool, cs ...*pluginv1.Clause) *pluginv1.FilterResult {
		return &pluginv1.FilterResult{Result: &pluginv1.FilterResult_Rule{Rule: &pluginv1.Rule{AnyOf: cs, Cacheable: cacheable}}}
	}
	vis := func(kind, uuid string) *pluginv1.Subject { return &pluginv1.Subject{Kind: kind, Uuid: uuid} }
	tests := []struct {
		name          string
		first, second *pluginv1.FilterResult
	}{
		{"visible participant", rule(true, clause(&pluginv1.Clause{Visible: vis("participant", "p-000003")})), nil},
		{"visible user, uncached", rule(false, clause(&pluginv1.Clause{Visible: vis("user", "u-000005")})), nil},
		{"visible device or uuids", rule(true, clause(&pluginv1.Clause{Visible: vis("device", "d-000001")}), clause(&pluginv1.Clause{Uuids: []string{"u-000001", "p-000002", "d-000003", "u-000001"}})), nil},
		{"visible, admins only", rule(true, clause(&pluginv1.Clause{Visible: vis("participant", "p-000001"), AdminsOnly: true})), nil},
		{"admins only", rule(true, clause(&pluginv1.Clause{AdminsOnly: true})), nil},
		{"uuids except", rule(true, clause(&pluginv1.Clause{Uuids: []string{"u-000001", "u-000002", "p-000001"}, ExceptUuids: []string{"u-000002"}})), nil},
		{"many uuids", rule(true, clause(&pluginv1.Clause{Uuids: manyUUIDs()})), nil},
		{"in session", rule(true, clause(&pluginv1.Clause{InSession: "session-1"})), nil},
		{"in session, visible", rule(true, clause(&pluginv1.Clause{InSession: "session-0", Visible: vis("user", "u-000002")})), nil},
		{"everyone", rule(true, clause(&pluginv1.Clause{})), nil},
		{"nobody", rule(true), nil},
		{"unknown subject", rule(true, clause(&pluginv1.Clause{Visible: vis("device", "nobody")})), nil},
		{"rewrite", &pluginv1.FilterResult{Result: &pluginv1.FilterResult_Rule{Rule: &pluginv1.Rule{
			AnyOf: []*pluginv1.Clause{{Visible: vis("participant", "p-000002")}}, RewriteType: "opentera.protobuf.LogEvent", Rewrite: []byte{0x0a, 0x01, 'x'}, Cacheable: true}}}, nil},
		{"need recipients", &pluginv1.FilterResult{Result: &pluginv1.FilterResult_NeedRecipients{NeedRecipients: true}},
			rule(false, clause(&pluginv1.Clause{Visible: vis("participant", "p-000004")}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := echoScript(t, &pluginv1.InitResult{Name: "echo", Version: "1", FilterKinds: []string{"user", "participant", "device"}}, tt.first, tt.second)
			hosts := map[*narrowWorld]*pluginhost.Registry{}
			var mu sync.Mutex
			n, all := checkNarrowing(t, worlds, func(wd *narrowWorld, k directory.Kind) filter.Filter {
				mu.Lock()
				defer mu.Unlock()
				r := hosts[wd]
				if r == nil {
					r = newPluginHost(t, wd, map[string]pluginhost.Settings{"filter.echo": {Config: cfg, Timeout: 5 * time.Second}})
					require.NoError(t, r.Load("filter.echo", wasm))
					hosts[wd] = r
				}
				return r.Filter(k, nil, wd.sessions)
			})
			t.Logf("candidates visited: %d narrowed, %d without narrowing", n, all)
		})
	}
}

func manyUUIDs() []string {
	var out []string
	for i := range 20 {
		out = append(out, fmt.Sprintf("u-%06d", i), fmt.Sprintf("d-%06d", i))
	}
	return out
}

// echoScript is the echo guest's config: what tg_init and the first and second tg_filter calls
// return (pluginhost/testdata/echo.wat).
func echoScript(tb testing.TB, init *pluginv1.InitResult, first, second *pluginv1.FilterResult) []byte {
	tb.Helper()
	enc := func(m proto.Message) []byte {
		if m == nil {
			return nil
		}
		b, err := proto.Marshal(m)
		require.NoError(tb, err)
		return b
	}
	i, f, s := enc(init), enc(first), enc(second)
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(i)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(f)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(s)))
	out = append(out, i...)
	out = append(out, f...)
	return append(out, s...)
}

// TestNarrowedFirstPartyPluginsMatchAll does the same with the first-party Go filter plugins
// (OpenTera's table as Wasm guests, built with the Go toolchain; skipped with -short).
func TestNarrowedFirstPartyPluginsMatchAll(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Wasm plugins; skipped with -short")
	}
	paths := map[directory.Kind]string{}
	for _, k := range socketKinds {
		paths[k] = wasmbuild.Build(t, "./plugins/filter/"+k.String())
	}
	worlds := narrowWorlds(t)
	hosts := map[*narrowWorld]*pluginhost.Registry{}
	n, all := checkNarrowing(t, worlds, func(wd *narrowWorld, k directory.Kind) filter.Filter {
		r := hosts[wd]
		if r == nil {
			r = newPluginHost(t, wd, nil)
			for _, k := range socketKinds {
				require.NoError(t, r.LoadFile("filter."+k.String(), paths[k]))
			}
			hosts[wd] = r
		}
		return r.Filter(k, nil, wd.sessions)
	})
	require.Less(t, n, all/2)
	t.Logf("candidates visited: %d narrowed, %d without narrowing", n, all)
}
