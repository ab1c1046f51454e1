package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/proto/opentera"
	teragatev1 "github.com/teragate/teragate/proto/teragate/v1"
)

// rframe is one frame of a resume=1 socket, decoded: the TeraMessage, its position ("" for
// per-socket frames) and the events of its TeraEvent as JSON maps.
type rframe struct {
	pos    string
	typ    string // the TeraMessage's type URL
	events []map[string]any
	failed *teragatev1.ResumeFailed
	raw    []byte
}

// readFrame reads and decodes the next frame of a socket in JSON or binary format.
func readFrame(t *testing.T, ws *websocket.Conn) rframe {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	mt, data, err := ws.ReadMessage()
	require.NoError(t, err)
	return decodeFrame(t, mt, data)
}

func decodeFrame(t *testing.T, mt int, data []byte) rframe {
	t.Helper()
	f := rframe{raw: data}
	var pm teragatev1.PositionedMessage
	if mt == websocket.TextMessage {
		var top map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(data, &top))
		if p, ok := top["position"]; ok {
			require.NoError(t, json.Unmarshal(p, &f.pos))
		}
		require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, &pm))
	} else {
		require.NoError(t, proto.Unmarshal(data, &pm))
		f.pos = pm.GetPosition()
	}
	f.typ = pm.GetMessage().GetTypeUrl()
	switch f.typ {
	case opentera.TypeURL(&teragatev1.ResumeFailed{}):
		f.failed = &teragatev1.ResumeFailed{}
		require.NoError(t, pm.GetMessage().UnmarshalTo(f.failed))
	case opentera.TypeURL(&opentera.TeraEvent{}):
		var te opentera.TeraEvent
		require.NoError(t, pm.GetMessage().UnmarshalTo(&te))
		for _, a := range te.GetEvents() {
			b, err := protojson.Marshal(a)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			f.events = append(f.events, m)
		}
	default:
		t.Fatalf("unexpected frame type %q", f.typ)
	}
	return f
}

// resumeDial logs in (Basic) and opens the websocket with resume=1 (and since when not "").
func (e *env) resumeDial(kind directory.Kind, cred, since, extra string) *websocket.Conn {
	e.t.Helper()
	u := e.wsURL(kind, cred) + "&resume=1" + extra
	if since != "" {
		u += "&since=" + since
	}
	return e.dial(u).ws
}

// resumeConnect is resumeDial without since that waits for the entity's own CONNECTED event:
// from then on the socket is registered and gets every event.
func (e *env) resumeConnect(kind directory.Kind, cred, self, extra string) *websocket.Conn {
	e.t.Helper()
	ws := e.resumeDial(kind, cred, "", extra)
	waitConnected(e.t, ws, self)
	return ws
}

// waitConnected reads frames until the CONNECTED event of self.
func waitConnected(t *testing.T, ws *websocket.Conn, self string) {
	t.Helper()
	for {
		for _, ev := range readFrame(t, ws).events {
			if ev["userUuid"] == self && ev["type"] == "USER_CONNECTED" {
				return
			}
		}
	}
}

// untilMarker reads frames until the one holding marker and returns the frames before it and
// the marker's frame.
func untilMarker(t *testing.T, ws *websocket.Conn, marker string) ([]rframe, rframe) {
	t.Helper()
	var out []rframe
	for {
		f := readFrame(t, ws)
		for _, ev := range f.events {
			if ev["sessionUuid"] == marker {
				return out, f
			}
		}
		out = append(out, f)
	}
}

// requireIncreasing checks that the positioned frames' positions increase.
func requireIncreasing(t *testing.T, frames ...rframe) {
	t.Helper()
	var last history.Pos
	for i, f := range frames {
		if f.pos == "" {
			continue
		}
		tok, err := history.ParseToken(f.pos)
		require.NoError(t, err, "position %q", f.pos)
		if i > 0 {
			require.True(t, last.Less(tok.Pos), "positions must increase: %v then %q", last, f.pos)
		}
		last = tok.Pos
	}
}

// eventNames describes each event of frames as "<type> <subject>", skipping the events about
// the entity self (its own presence).
func eventNames(frames []rframe, self string) []string {
	var out []string
	for _, f := range frames {
		for _, ev := range f.events {
			at, _ := ev["@type"].(string)
			at = at[strings.LastIndex(at, ".")+1:]
			switch {
			case ev["userUuid"] == self:
			case ev["participantUuid"] != nil:
				out = append(out, at+" "+ev["participantUuid"].(string))
			case ev["sessionUuid"] != nil:
				out = append(out, at+" "+ev["sessionUuid"].(string))
			default:
				out = append(out, at)
			}
		}
	}
	return out
}

// TestResumeReplaysMissedEvents: alice (project p1) opts in, processes an event, drops; events
// published meanwhile — one about paula (project p3, never hers), one about pat (p1), a session
// invitation for her — arrive after she resumes, in order, once, with increasing positions,
// without paula's; then the live stream continues. In JSON and in binary frames.
func TestResumeReplaysMissedEvents(t *testing.T) {
	for _, format := range []string{"json", "proto"} {
		t.Run(format, func(t *testing.T) {
			e := startGateway(t, nil)
			extra := ""
			if format == "proto" {
				extra = "&format=proto"
			}
			ws := e.resumeConnect(directory.KindUser, "alice:alice-demo", alice, extra)
			m0 := e.marker("before")
			_, f0 := untilMarker(t, ws, m0)
			require.NotEmpty(t, f0.pos, "a resume=1 socket's event frames carry their position")
			_ = ws.Close()

			e.publish(umEvents, &opentera.ParticipantEvent{ParticipantUuid: paula, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED})
			e.publish(umEvents, &opentera.ParticipantEvent{ParticipantUuid: pat, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED})
			e.publish(umEvents, &opentera.JoinSessionEvent{SessionUuid: "invite-1", SessionUsers: []string{alice}, SessionUrl: "https://x"})
			m1 := e.marker("missed")

			ws2 := e.resumeDial(directory.KindUser, "alice:alice-demo", f0.pos, extra)
			replayed, f1 := untilMarker(t, ws2, m1)
			require.Equal(t, []string{"ParticipantEvent " + pat, "JoinSessionEvent invite-1"}, eventNames(replayed, alice),
				"the missed events, in order, without paula's")
			all := append(append([]rframe{f0}, replayed...), f1)
			requireIncreasing(t, all...)
			for _, f := range replayed {
				require.NotEqual(t, f0.pos, f.pos, "the event processed before the drop is not replayed")
			}

			// Live: the next event arrives once, after the replay, with a later position.
			m2 := e.marker("live")
			between, f2 := untilMarker(t, ws2, m2)
			for _, f := range between {
				for _, ev := range f.events {
					require.Equal(t, alice, ev["userUuid"], "only alice's own presence between the replay and the live event: %v", ev)
				}
			}
			requireIncreasing(t, f1, f2)
		})
	}
}

// TestResumeNoGapNoDuplicate: while a service publishes a numbered stream of events, the client
// drops twice and resumes each time from the last position it processed: over its three
// connections it gets every event exactly once, in order.
func TestResumeNoGapNoDuplicate(t *testing.T) {
	e := startGateway(t, nil)
	resumeStream(t, e, e)
}

// resumeStream publishes a numbered stream on pub while a client drops and resumes twice, its k-th
// connection on subs[k % len(subs)], and checks that it got every event once, in order.
func resumeStream(t *testing.T, pub *env, subs ...*env) {
	t.Helper()
	const n = 150
	id := func(i int) string { return fmt.Sprintf("seq-%03d", i) }
	ws := subs[0].resumeConnect(directory.KindUser, "alice:alice-demo", alice, "")
	conns := 1
	first := pub.marker("start")
	_, f := untilMarker(t, ws, first)
	last := f.pos

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			pub.publishQuiet(umEvents, &opentera.StopSessionEvent{SessionUuid: id(i)})
		}
	}()
	var got []string
	drops := map[int]bool{n / 3: true, 2 * n / 3: true}
	for len(got) < n {
		if drops[len(got)] {
			delete(drops, len(got))
			_ = ws.Close()
			ws = subs[conns%len(subs)].resumeDial(directory.KindUser, "alice:alice-demo", last, "")
			conns++
		}
		f := readFrame(t, ws)
		if f.pos != "" {
			requireIncreasing(t, rframe{pos: last}, f)
			last = f.pos
		}
		for _, ev := range f.events {
			if s, _ := ev["sessionUuid"].(string); strings.HasPrefix(s, "seq-") {
				got = append(got, s)
			}
		}
	}
	wg.Wait()
	want := make([]string, n)
	for i := range want {
		want[i] = id(i)
	}
	require.Equal(t, want, got, "every event once, in order, across the drops")
}

// TestResumeManyAtOnce: sockets that come back together from far behind (more than a connection
// replays alone, published while they were away) are replayed in one shared run: each still gets, once
// and in order, every event it may see after its own position, and none about paula.
func TestResumeManyAtOnce(t *testing.T) {
	e := startGateway(t, nil)
	const sockets, n = 6, 2 * hub.ReplayAloneMax
	id := func(i int) string { return fmt.Sprintf("many-%03d", i) }
	since := make([]string, sockets)
	for i := range sockets {
		ws := e.resumeConnect(directory.KindUser, "alice:alice-demo", alice, "")
		_, f := untilMarker(t, ws, e.marker(fmt.Sprintf("before-%d", i)))
		since[i] = f.pos
		_ = ws.Close()
	}
	// Socket i missed everything after its own marker: the sockets' positions differ.
	for i := range n {
		if i%8 == 0 {
			e.publish(umEvents, &opentera.ParticipantEvent{ParticipantUuid: paula, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED})
		}
		e.publish(umEvents, &opentera.StopSessionEvent{SessionUuid: id(i)})
	}
	end := e.marker("end")

	var wg sync.WaitGroup
	got := make([][]string, sockets)
	errs := make(chan error, sockets)
	for i := range sockets {
		ws := e.resumeDial(directory.KindUser, "alice:alice-demo", since[i], "")
		defer ws.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("socket %d after %d events: %w", i, len(got[i]), err)
					return
				}
				s := string(data)
				switch {
				case strings.Contains(s, paula):
					errs <- fmt.Errorf("socket %d was sent an event about paula: %s", i, s)
					return
				case strings.Contains(s, end):
					return
				}
				if j := strings.Index(s, "many-"); j >= 0 {
					got[i] = append(got[i], s[j:j+8])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = id(i)
	}
	for i := range sockets {
		require.Equal(t, want, got[i], "socket %d: every event once, in order", i)
	}
}

// TestResumeFailed: a position the gateway cannot resume from gives a ResumeFailed first frame
// with the reason and the position the stream continues from, then live events after it.
func TestResumeFailed(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) { c.HistoryMaxEvents = 5 })
	ws := e.resumeConnect(directory.KindUser, "alice:alice-demo", alice, "")
	m0 := e.marker("old")
	_, f0 := untilMarker(t, ws, m0)
	_ = ws.Close()
	for i := range 10 {
		e.publishQuiet(umEvents, &opentera.StopSessionEvent{SessionUuid: fmt.Sprintf("trimmed-%d", i)})
	}
	tok, err := history.ParseToken(f0.pos)
	require.NoError(t, err)
	future := history.Token{Epoch: tok.Epoch, Pos: history.Pos{Lo: tok.Pos.Lo + 1000}}

	for _, tc := range []struct {
		name, since, reason string
	}{
		{"too old", f0.pos, history.ReasonTooOld},
		{"another epoch", "zz0-" + fmt.Sprint(tok.Pos.Lo), history.ReasonUnknown},
		{"a Redis cluster's position", tok.Epoch + "-1733300000000-0", history.ReasonUnknown},
		{"beyond the newest event", future.String(), history.ReasonUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := e.resumeDial(directory.KindUser, "alice:alice-demo", tc.since, "")
			f := readFrame(t, ws)
			require.NotNil(t, f.failed, "the first frame is a ResumeFailed, got %s", f.raw)
			require.Equal(t, tc.reason, f.failed.GetReason())
			require.Equal(t, "type.googleapis.com/teragate.v1.ResumeFailed", f.typ)
			require.Empty(t, f.pos, "ResumeFailed is a per-socket frame")
			m := e.marker("after-" + tc.reason)
			_, fm := untilMarker(t, ws, m)
			requireIncreasing(t, rframe{pos: f.failed.GetPosition()}, fm)
		})
	}
}

// TestResumeBadQuery: a malformed since (or one without resume=1, or a bad resume value) is a
// 400 at the upgrade.
func TestResumeBadQuery(t *testing.T) {
	e := startGateway(t, nil)
	for _, q := range []string{"&resume=1&since=", "&resume=1&since=abc", "&resume=1&since=ab-1-2-3", "&resume=1&since=AB-1",
		"&resume=1&since=ab-x", "&resume=1&since=ab--1", "&since=ab-1", "&resume=yes"} {
		t.Run(q, func(t *testing.T) {
			u := e.wsURL(directory.KindUser, "alice:alice-demo") + q
			ws, resp, err := e.dialer.Dial(u, nil)
			if ws != nil {
				_ = ws.Close()
			}
			require.Error(t, err)
			require.NotNil(t, resp)
			defer resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		})
	}
}

// TestResumeFramesUnchanged: a socket without resume=1 gets byte for byte the frames of a gateway
// keeping no history (the frames before resume existed); a resume=1 socket gets the same frame
// with the position added ("position" beside "message", or field 1000 that a strict OpenTera
// parser keeps as an unknown field).
func TestResumeFramesUnchanged(t *testing.T) {
	for _, format := range []string{"json", "proto"} {
		t.Run(format, func(t *testing.T) {
			extra := ""
			if format == "proto" {
				extra = "&format=proto"
			}
			off := startGateway(t, func(c *gateway.Config) { c.HistoryMaxEvents = -1 })
			on := startGateway(t, nil)
			plainOff := off.dial(off.wsURL(directory.KindUser, "admin:admin-demo") + extra).ws
			waitConnected(t, plainOff, directory.DemoAdminUUID)
			plainOn := on.dial(on.wsURL(directory.KindUser, "admin:admin-demo") + extra).ws
			waitConnected(t, plainOn, directory.DemoAdminUUID)
			posOn := on.resumeConnect(directory.KindUser, "admin:admin-demo", directory.DemoAdminUUID, extra)
			events := []proto.Message{
				&opentera.ParticipantEvent{ParticipantUuid: pat, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED, ParticipantName: "Pat"},
				&opentera.JoinSessionEvent{SessionUuid: "s1", SessionUsers: []string{directory.DemoAdminUUID}, SessionUrl: "https://x"},
			}
			for _, g := range []*env{off, on} {
				for _, m := range events {
					g.publish(umEvents, m)
				}
				g.publish(umEvents, events...) // a TeraEvent of two events: one frame
				g.publish(umEvents, &opentera.StopSessionEvent{SessionUuid: "the-end"})
			}
			frames := func(ws *websocket.Conn) [][]byte {
				var out [][]byte
				for {
					_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
					mt, data, err := ws.ReadMessage()
					require.NoError(t, err)
					f := decodeFrame(t, mt, data)
					if len(f.events) > 0 && f.events[0]["@type"] == opentera.TypeURL(&opentera.UserEvent{}) {
						continue // presence of the sockets themselves: timestamps differ
					}
					out = append(out, data)
					if len(f.events) == 1 && f.events[0]["sessionUuid"] == "the-end" {
						return out
					}
				}
			}
			a, b, c := frames(plainOff), frames(plainOn), frames(posOn)
			require.Len(t, a, 4)
			require.Equal(t, a, b, "frames without resume=1 are unchanged by the history")
			require.Len(t, c, len(a))
			for i := range a {
				mt := websocket.TextMessage
				if format == "proto" {
					mt = websocket.BinaryMessage
				}
				f := decodeFrame(t, mt, c[i])
				require.NotEmpty(t, f.pos)
				if format == "json" {
					require.Equal(t, string(a[i][:len(a[i])-1])+`,"position":"`+f.pos+`"}`, string(c[i]))
					continue
				}
				want := protowire.AppendString(protowire.AppendTag(append([]byte(nil), a[i]...), hub.PositionField, protowire.BytesType), f.pos)
				require.Equal(t, want, c[i])
				var tm opentera.TeraMessage
				require.NoError(t, proto.Unmarshal(c[i], &tm), "OpenTera's TeraMessage parses a positioned frame")
				require.NotEmpty(t, tm.ProtoReflect().GetUnknown(), "and keeps the position as an unknown field")
			}
		})
	}
}

// TestRedisResumeOtherNode: on a two-node Redis cluster, a client of node A drops while node B
// publishes, resumes on node B, drops again and resumes on node A: it gets every event once, in
// order (the history is in Redis, one order for the cluster).
func TestRedisResumeOtherNode(t *testing.T) {
	nodes := startRedisNodes(t, 2)
	resumeStream(t, nodes[1], nodes[0], nodes[1])
}

// TestRedisResumeFailed: in Redis mode too, a position of another cluster (another epoch) or of
// the in-memory history is unknown, and a trimmed one too old.
func TestRedisResumeFailed(t *testing.T) {
	nodes, srv := startRedisNodesOn(t, 1)
	e := nodes[0]
	ws := e.resumeConnect(directory.KindUser, "alice:alice-demo", alice, "")
	m0 := e.marker("old")
	_, f0 := untilMarker(t, ws, m0)
	_ = ws.Close()
	tok, err := history.ParseToken(f0.pos)
	require.NoError(t, err)
	require.True(t, tok.Stream, "a Redis stream position: %q", f0.pos)

	// Trim the stream below the position, as MAXLEN/MINID trimming does.
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	for i := range 3 {
		e.publishQuiet(umEvents, &opentera.StopSessionEvent{SessionUuid: fmt.Sprintf("after-%d", i)})
	}
	require.NoError(t, rc.XTrimMaxLen(t.Context(), "teragate:history", 1).Err())

	for _, tc := range []struct{ name, since, reason string }{
		{"too old", f0.pos, history.ReasonTooOld},
		{"another cluster", "zz0-" + fmt.Sprint(tok.Pos.Hi) + "-" + fmt.Sprint(tok.Pos.Lo), history.ReasonUnknown},
		{"a memory position", tok.Epoch + "-12", history.ReasonUnknown},
		{"beyond the newest event", history.Token{Epoch: tok.Epoch, Pos: history.Pos{Hi: tok.Pos.Hi + 3600_000}, Stream: true}.String(), history.ReasonUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := e.resumeDial(directory.KindUser, "alice:alice-demo", tc.since, "")
			f := readFrame(t, ws)
			require.NotNil(t, f.failed, "the first frame is a ResumeFailed, got %s", f.raw)
			require.Equal(t, tc.reason, f.failed.GetReason())
			m := e.marker("after-" + tc.reason)
			_, fm := untilMarker(t, ws, m)
			requireIncreasing(t, rframe{pos: f.failed.GetPosition()}, fm)
		})
	}

	// A flushed Redis has a new epoch: the positions of before are unknown.
	require.NoError(t, rc.FlushAll(t.Context()).Err())
	ws = e.resumeDial(directory.KindUser, "alice:alice-demo", f0.pos, "")
	f := readFrame(t, ws)
	require.NotNil(t, f.failed, "got %s", f.raw)
	require.Equal(t, history.ReasonUnknown, f.failed.GetReason())
}
