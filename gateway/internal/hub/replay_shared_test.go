package hub

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/proto/opentera"
)

// sessionFilter is a narrowing filter that reads the target of a StopSessionEvent from its
// session: "all-…" goes to every user, "to-<uuid>-…" to that user only, and every event goes to
// the observer "obs" too. It counts its Candidates calls.
type sessionFilter struct{ candidates atomic.Int64 }

func sessionTarget(ev *filter.Event) (target string, all bool) {
	s := ev.Msg.(*opentera.StopSessionEvent).GetSessionUuid()
	if strings.HasPrefix(s, "all-") {
		return "", true
	}
	rest := strings.TrimPrefix(s, "to-")
	return rest[:strings.LastIndexByte(rest, '-')], false
}

func (f *sessionFilter) Decide(_ context.Context, ev *filter.Event, _ directory.Kind, rs []filter.Recipient, out []filter.Decision) error {
	target, all := sessionTarget(ev)
	for i, r := range rs {
		if all || r.UUID == target || r.UUID == "obs" {
			out[i] = filter.Decision{Verdict: filter.Keep}
		}
	}
	return nil
}

func (f *sessionFilter) Candidates(_ context.Context, ev *filter.Event, _ directory.Kind, c *filter.Candidates) error {
	f.candidates.Add(1)
	target, all := sessionTarget(ev)
	if all {
		c.All = true
		return nil
	}
	c.UUIDs = append(c.UUIDs, target, "obs")
	return nil
}

func (f *sessionFilter) DecideCandidates(ctx context.Context, ev *filter.Event, k directory.Kind, _ *filter.Candidates, rs []filter.Recipient, out []filter.Decision) error {
	return f.Decide(ctx, ev, k, rs, out)
}

// drain reads JSON event frames from r until it closes, sending each frame's session.
func drain(r *bufio.Reader, out chan<- string) {
	defer close(out)
	for {
		op, payload, err := readFrame(r)
		if err != nil {
			return
		}
		if op != opText {
			continue // a ping
		}
		s, err := sessionOf(payload)
		if err != nil {
			s = "undecodable: " + err.Error()
		}
		out <- s
	}
}

// sessionOf returns the session of the StopSessionEvent a JSON event frame carries.
func sessionOf(payload []byte) (string, error) {
	var tm opentera.TeraMessage
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, &tm); err != nil {
		return "", err
	}
	var te opentera.TeraEvent
	if err := tm.GetMessage().UnmarshalTo(&te); err != nil {
		return "", err
	}
	var ev opentera.StopSessionEvent
	if err := te.GetEvents()[0].UnmarshalTo(&ev); err != nil {
		return "", err
	}
	return ev.GetSessionUuid(), nil
}

// TestReplayShared: connections far enough behind (more than a page) replay together, in one
// shared run that routes each recorded event once: each still gets exactly the events after its
// own position that its filter lets through, in order; a connection whose client does not read
// leaves the others after a bounded wait and finishes alone once its client reads.
func TestReplayShared(t *testing.T) {
	e := newReplayEnv(t)
	f := &sessionFilter{}
	e.r.SetFilter(directory.KindUser, f)
	e.hub.cfg.MaxQueueFrames = 64 // the slow client's queue fills after 32 frames

	// An observer that receives everything tells when live routing is done.
	ss, sc := net.Pipe()
	defer sc.Close()
	e.hub.RegisterWith(ss, directory.KindUser, "obs", directory.Access{}, ConnOptions{Format: FormatJSON})
	obs := make(chan string, 4096)
	go drain(bufio.NewReader(sc), obs)

	const members, events = 12, 3*ReplayPage + 40
	sessions := make([]string, events)
	var pos []history.Token
	seen := 0
	for i := range events {
		s := fmt.Sprintf("all-%d", i)
		if i%3 != 0 {
			s = fmt.Sprintf("to-u%d-%d", i%members, i)
		}
		sessions[i] = s
		pos = append(pos, e.publishStop(t, s))
		if i%16 == 15 || i == events-1 { // within the observer's queue
			for len(pos) > seen {
				select {
				case _, ok := <-obs:
					require.True(t, ok, "the observer was closed: %s", ss)
					seen++
				case <-time.After(10 * time.Second):
					t.Fatal("live routing did not finish")
				}
			}
		}
	}

	// Members resume from different positions, all more than a page behind; u0's client is slow.
	from := func(i int) int { return i * 17 } // index of the last event processed
	gate := make(chan struct{})
	e.r.replays.gate = gate
	type outcome struct {
		res ReplayResult
		err error
	}
	var wg sync.WaitGroup
	results := make([]outcome, members)
	done := make([]chan struct{}, members)
	got := make([]chan string, members)
	clients := make([]net.Conn, members)
	conns := make([]*Conn, members)
	for i := range members {
		srv, cli := net.Pipe()
		clients[i] = cli
		defer cli.Close()
		conns[i] = e.hub.RegisterWith(srv, directory.KindUser, fmt.Sprintf("u%d", i), directory.Access{}, ConnOptions{Format: FormatJSON, Positions: true, Replay: true})
		got[i] = make(chan string, events)
		if i != 0 {
			go drain(bufio.NewReader(cli), got[i])
		}
		wg.Add(1)
		done[i] = make(chan struct{})
		go func() {
			defer wg.Done()
			defer close(done[i])
			res, err := e.r.Replay(t.Context(), conns[i], e.hist, pos[from(i)])
			results[i] = outcome{res, err}
		}()
	}
	require.Eventually(t, func() bool {
		e.r.replays.mu.Lock()
		defer e.r.replays.mu.Unlock()
		return len(e.r.replays.waiting) == members
	}, 10*time.Second, time.Millisecond, "every member waits for the shared run")
	before := f.candidates.Load()
	close(gate)
	tstart := time.Now()

	// The others finish while u0's client reads nothing.
	require.Eventually(t, func() bool {
		for i := 1; i < members; i++ {
			select {
			case <-done[i]:
			default:
				return false
			}
		}
		return true
	}, 20*time.Second, 5*time.Millisecond)
	t.Logf("the others were done after %v", time.Since(tstart))
	go drain(bufio.NewReader(clients[0]), got[0])
	wg.Wait()
	shared := f.candidates.Load() - before
	t.Logf("candidates calls: %d for %d events and %d connections", shared, events, members)

	for i := range members {
		uuid := fmt.Sprintf("u%d", i)
		var want []string
		for j := from(i) + 1; j < events; j++ {
			if s := sessions[j]; strings.HasPrefix(s, "all-") || strings.HasPrefix(s, "to-"+uuid+"-") {
				want = append(want, s)
			}
		}
		o := results[i]
		require.NoError(t, o.err, "%s: %s", uuid, conns[i].CloseReason())
		require.True(t, o.res.Started, uuid)
		require.Equal(t, pos[events-1], o.res.Last, uuid)
		require.Equal(t, events-1-from(i), o.res.Events, uuid)
		require.Equal(t, len(want), o.res.Sent, uuid)
		var have []string
		for range want {
			select {
			case s := <-got[i]:
				have = append(have, s)
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: %d of %d frames", uuid, len(have), len(want))
			}
		}
		require.Equal(t, want, have, uuid)
		require.Zero(t, conns[i].FinishReplay(o.res.Last.Pos), uuid)
	}
	require.True(t, results[0].res.Alone, "u0's client read nothing: it went on alone")
	for i := 1; i < members; i++ {
		require.False(t, results[i].res.Alone, "u%d kept up", i)
	}
	// One shared run narrowed each event once (u0 alone re-narrowed what it had left); one
	// replay per connection would have narrowed each event once per connection.
	require.Less(t, shared, int64(2*events), "candidates calls")
}
