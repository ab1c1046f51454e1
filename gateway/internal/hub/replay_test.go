package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// replayEnv is a router on an in-memory bus with an in-memory history, the native filter for
// users.
type replayEnv struct {
	hub  *Hub
	r    *Router
	hist *history.Memory
	bus  *history.Bus
}

func newReplayEnv(t *testing.T) *replayEnv {
	t.Helper()
	mb := bus.NewMemory(bus.MemoryConfig{})
	h := New(Config{Metrics: metrics.New()})
	hist := history.NewMemory(mb, history.Config{})
	r := NewRouter(h, mb, RouterConfig{})
	r.SetFilter(directory.KindUser, &filter.Native{})
	require.NoError(t, r.Start(t.Context()))
	t.Cleanup(func() {
		_ = r.Stop(context.Background())
		_ = mb.Close(context.Background())
	})
	return &replayEnv{hub: h, r: r, hist: hist, bus: &history.Bus{Bus: mb, Store: hist, Record: Recorded}}
}

// publishStop publishes a StopSessionEvent (every user may see it) and returns its position.
func (e *replayEnv) publishStop(t *testing.T, session string) history.Token {
	t.Helper()
	a, err := opentera.NewAny(&opentera.StopSessionEvent{SessionUuid: session})
	require.NoError(t, err)
	p, err := proto.Marshal(&opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Topic: topic.UserManagerEvents}, Events: []*anypb.Any{a}})
	require.NoError(t, err)
	require.NoError(t, e.bus.Publish(t.Context(), topic.UserManagerEvents, p))
	head, err := e.hist.Head(t.Context())
	require.NoError(t, err)
	return head
}

// readSessions reads n JSON frames and returns their sessions and positions.
func readSessions(t *testing.T, r *bufio.Reader, n int) (sessions, positions []string) {
	t.Helper()
	for range n {
		op, payload, err := readFrame(r)
		require.NoError(t, err)
		require.Equal(t, byte(opText), op)
		var top struct {
			Position string          `json:"position"`
			Message  json.RawMessage `json:"message"`
		}
		require.NoError(t, json.Unmarshal(payload, &top), "%s", payload)
		s, err := sessionOf(payload)
		require.NoError(t, err, "%s", payload)
		sessions = append(sessions, s)
		positions = append(positions, top.Position)
	}
	return sessions, positions
}

// readPayloads reads n frames and returns their payloads, concatenated.
func readPayloads(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	var got string
	for range n {
		_, p, err := readFrame(r)
		require.NoError(t, err)
		got += string(p)
	}
	return got
}

// pendingLen is how many live frames a replaying connection holds back.
func pendingLen(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// TestReplayStitch: a connection registered in replay mode holds the live events back; the
// replay sends the recorded events after its position, including those also held back live;
// FinishReplay drops those duplicates and lets the later ones through, in order.
func TestReplayStitch(t *testing.T) {
	e := newReplayEnv(t)
	// A plain socket that receives e1..e3: once it has them the router is done with them, so the
	// replaying socket registered next holds back only what is published after it.
	ss, sc := net.Pipe()
	defer sc.Close()
	acc0, _ := directory.Demo().Principal(directory.KindUser, directory.DemoBobUUID)
	e.hub.RegisterWith(ss, directory.KindUser, directory.DemoBobUUID, acc0, ConnOptions{Format: FormatJSON})
	var pos []history.Token
	for _, s := range []string{"e1", "e2", "e3"} {
		pos = append(pos, e.publishStop(t, s))
	}
	seen, _ := readSessions(t, bufio.NewReader(sc), 3)
	require.Equal(t, []string{"e1", "e2", "e3"}, seen)
	srv, cli := net.Pipe()
	defer cli.Close()
	acc, _ := directory.Demo().Principal(directory.KindUser, directory.DemoAliceUUID)
	c := e.hub.RegisterWith(srv, directory.KindUser, directory.DemoAliceUUID, acc, ConnOptions{Format: FormatJSON, Positions: true, Replay: true})
	// Published after the registration: routed live (held back) and recorded.
	for _, s := range []string{"e4", "e5"} {
		pos = append(pos, e.publishStop(t, s))
	}
	require.Eventually(t, func() bool { return pendingLen(c) == 2 }, 5*time.Second, time.Millisecond)

	r := bufio.NewReader(cli)
	done := make(chan struct{})
	var sessions, positions []string
	go func() {
		defer close(done)
		sessions, positions = readSessions(t, r, 5)
	}()
	res, err := e.r.Replay(t.Context(), c, e.hist, pos[0]) // the client processed e1
	require.NoError(t, err)
	require.Equal(t, 4, res.Events)
	require.Equal(t, 4, res.Sent)
	require.Equal(t, pos[4], res.Last)
	require.True(t, c.Replaying())
	require.Equal(t, 2, c.FinishReplay(res.Last.Pos), "e4 and e5 were replayed: their live copies are dropped")
	require.False(t, c.Replaying())
	pos = append(pos, e.publishStop(t, "e6"))
	<-done
	require.Equal(t, []string{"e2", "e3", "e4", "e5", "e6"}, sessions)
	want := []string{pos[1].String(), pos[2].String(), pos[3].String(), pos[4].String(), pos[5].String()}
	require.Equal(t, want, positions)
}

// TestFinishReplayKeepsLater: live events after the replay's last position are queued, in order,
// and those not recorded (no position) are never taken for duplicates.
func TestFinishReplayKeepsLater(t *testing.T) {
	h := newTestHub(t, Config{})
	srv, cli := net.Pipe()
	defer cli.Close()
	c := h.RegisterWith(srv, directory.KindUser, "u", directory.Access{}, ConnOptions{Positions: true, Replay: true})
	for i, p := range []struct {
		lo  uint64
		has bool
	}{{3, true}, {4, true}, {0, false}, {5, true}, {6, true}} {
		require.True(t, c.sendEvent(TextFrame([]byte{byte('a' + i)}), history.Pos{Lo: p.lo}, p.has))
	}
	require.Equal(t, 2, c.FinishReplay(history.Pos{Lo: 4}))
	got := readPayloads(t, bufio.NewReader(cli), 3)
	require.Equal(t, "cde", got)
}

// TestLateLiveDuplicateDropped: a live event the replay already sent that reaches the
// connection only after FinishReplay (the router delivers an event after recording it, and can
// lag behind a replay that read it: seen in bench --storm --storm-resume at 1000 clients) is
// dropped, not sent twice; later ones and unrecorded ones go through.
func TestLateLiveDuplicateDropped(t *testing.T) {
	h := newTestHub(t, Config{})
	srv, cli := net.Pipe()
	defer cli.Close()
	c := h.RegisterWith(srv, directory.KindUser, "u", directory.Access{}, ConnOptions{Positions: true, Replay: true})
	require.Equal(t, 0, c.FinishReplay(history.Pos{Lo: 4}))
	for i, p := range []struct {
		lo  uint64
		has bool
	}{{3, true}, {4, true}, {0, false}, {5, true}} {
		require.True(t, c.sendEvent(TextFrame([]byte{byte('a' + i)}), history.Pos{Lo: p.lo}, p.has))
	}
	require.Equal(t, 2, c.LateDuplicates())
	got := readPayloads(t, bufio.NewReader(cli), 2)
	require.Equal(t, "cd", got)
}

// TestReplayPendingBounded: a replaying connection that holds back more live frames than its
// queue bound is closed as a slow consumer (it resumes again).
func TestReplayPendingBounded(t *testing.T) {
	h := newTestHub(t, Config{MaxQueueFrames: 4})
	srv, cli := net.Pipe()
	defer cli.Close()
	go func() { _, _ = bufio.NewReader(cli).Discard(1 << 20) }()
	c := h.RegisterWith(srv, directory.KindUser, "u", directory.Access{}, ConnOptions{Positions: true, Replay: true})
	for i := range 4 {
		require.True(t, c.sendEvent(TextFrame([]byte("x")), history.Pos{Lo: uint64(i + 1)}, true))
	}
	require.False(t, c.sendEvent(TextFrame([]byte("x")), history.Pos{Lo: 5}, true))
	require.Equal(t, metrics.DisconnectSlowConsumer, c.CloseReason())
}

// TestEncodeMessagePosition: the positioned frame is the plain frame with "position" beside
// "message" (JSON) or field 1000 (binary).
func TestEncodeMessagePosition(t *testing.T) {
	var te opentera.TeraEvent
	payload := participantEvent(t, directory.DemoPatUUID)
	require.NoError(t, proto.Unmarshal(payload, &te))
	for _, f := range []Format{FormatJSON, FormatProto} {
		plain, err := EncodeEvent(te.Header, te.Events[0], payload, f)
		require.NoError(t, err)
		pos, err := EncodeEventAt(te.Header, te.Events[0], payload, f, "abc-12")
		require.NoError(t, err)
		_, pp, err := readFrame(bufio.NewReader(bytes.NewReader(plain)))
		require.NoError(t, err)
		_, pq, err := readFrame(bufio.NewReader(bytes.NewReader(pos)))
		require.NoError(t, err)
		if f == FormatJSON {
			require.Equal(t, string(pp[:len(pp)-1])+`,"position":"abc-12"}`, string(pq))
			continue
		}
		require.Equal(t, append(append([]byte(nil), pp...), 0xc2, 0x3e, 6, 'a', 'b', 'c', '-', '1', '2'), pq)
	}
}

// TestLiveAfterReplayDeduplicated: a live event that reaches the connection after its replay
// ended (its lane was behind) is dropped when the replay sent it (at or before the replay's last
// position); later events and events without a position go through.
func TestLiveAfterReplayDeduplicated(t *testing.T) {
	h := newTestHub(t, Config{})
	srv, cli := net.Pipe()
	defer cli.Close()
	c := h.RegisterWith(srv, directory.KindUser, "u", directory.Access{}, ConnOptions{Positions: true, Replay: true})
	require.Zero(t, c.FinishReplay(history.Pos{Lo: 4}))
	for i, p := range []struct {
		lo  uint64
		has bool
	}{{3, true}, {4, true}, {0, false}, {5, true}} {
		require.True(t, c.sendEvent(TextFrame([]byte{byte('a' + i)}), history.Pos{Lo: p.lo}, p.has))
	}
	got := readPayloads(t, bufio.NewReader(cli), 2)
	require.Equal(t, "cd", got)
}

// countingNarrower is a narrowing filter whose candidates are the entities in uuids; it counts
// the calls of each method and delivers to every recipient it is asked about.
type countingNarrower struct {
	uuids                        atomic.Pointer[[]string]
	decide, candidates, decideCs atomic.Int64
}

func (f *countingNarrower) Decide(_ context.Context, _ *filter.Event, _ directory.Kind, rs []filter.Recipient, out []filter.Decision) error {
	f.decide.Add(1)
	for i := range rs {
		out[i] = filter.Decision{Verdict: filter.Keep}
	}
	return nil
}

func (f *countingNarrower) Candidates(_ context.Context, _ *filter.Event, _ directory.Kind, c *filter.Candidates) error {
	f.candidates.Add(1)
	c.UUIDs = append(c.UUIDs, *f.uuids.Load()...)
	return nil
}

func (f *countingNarrower) DecideCandidates(_ context.Context, _ *filter.Event, _ directory.Kind, _ *filter.Candidates, rs []filter.Recipient, out []filter.Decision) error {
	f.decideCs.Add(1)
	for i := range rs {
		out[i] = filter.Decision{Verdict: filter.Keep}
	}
	return nil
}

// TestReplayNarrows: a replay asks a narrowing filter for its candidates and decides only when
// the replaying connection is one of them (with a cached rule, neither costs a guest call).
func TestReplayNarrows(t *testing.T) {
	e := newReplayEnv(t)
	f := &countingNarrower{}
	f.uuids.Store(&[]string{"someone-else"})
	e.r.SetFilter(directory.KindUser, f)
	var pos []history.Token
	for _, s := range []string{"e1", "e2", "e3"} {
		pos = append(pos, e.publishStop(t, s))
	}
	srv, cli := net.Pipe()
	defer cli.Close()
	c := e.hub.RegisterWith(srv, directory.KindUser, "u1", directory.Access{}, ConnOptions{Format: FormatJSON, Positions: true, Replay: true})
	// (The live routing of e1..e3 may still be asking the filter too.)
	before := f.candidates.Load()
	res, err := e.r.Replay(t.Context(), c, e.hist, history.Token{Epoch: pos[0].Epoch, Stream: pos[0].Stream})
	require.NoError(t, err)
	require.Equal(t, 3, res.Events)
	require.Zero(t, res.Sent, "u1 is no candidate")
	require.GreaterOrEqual(t, f.candidates.Load()-before, int64(3))
	require.Zero(t, f.decide.Load()+f.decideCs.Load(), "no decision for a connection that is no candidate")

	f.uuids.Store(&[]string{"u1"})
	go func() { _, _ = bufio.NewReader(cli).Discard(1 << 20) }()
	res, err = e.r.Replay(t.Context(), c, e.hist, history.Token{Epoch: pos[0].Epoch, Stream: pos[0].Stream})
	require.NoError(t, err)
	require.Equal(t, 3, res.Sent)
	require.GreaterOrEqual(t, f.decideCs.Load(), int64(3))
	require.Zero(t, f.decide.Load(), "the narrowing decision, never Decide")
}
