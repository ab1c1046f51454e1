package hub

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// laneEnv is a router whose user lane the test drives by hand, with n admin sockets that count
// their write calls.
type laneEnv struct {
	r     *Router
	l     *lane
	conns []*discardConn
	hc    []*Conn
	frame int // bytes of one StopSessionEvent frame
}

func newLaneEnv(t *testing.T, n int) *laneEnv {
	t.Helper()
	h := newTestHub(t, Config{Metrics: metrics.New()})
	r := NewRouter(h, bus.NewMemory(bus.MemoryConfig{}), RouterConfig{})
	r.SetFilter(directory.KindUser, &filter.Native{})
	e := &laneEnv{r: r, l: &lane{k: directory.KindUser, jobs: make(chan func(*worker), 64)}}
	a, _ := directory.Demo().Principal(directory.KindUser, directory.DemoAdminUUID)
	for range n {
		dc := &discardConn{}
		e.conns = append(e.conns, dc)
		e.hc = append(e.hc, h.Register(dc, directory.KindUser, directory.DemoAdminUUID, FormatJSON, a))
	}
	// The exact frame size: route one event alone and read what the first socket got.
	e.r.routeEvents(&e.l.w, e.event(t), directory.KindUser, "")
	require.Eventually(t, func() bool { return e.conns[0].bytes.Load() > 0 }, 5*time.Second, time.Millisecond)
	e.frame = int(e.conns[0].bytes.Load())
	for _, c := range e.conns {
		require.Eventually(t, func() bool { return c.bytes.Load() == int64(e.frame) }, 5*time.Second, time.Millisecond)
		c.writes.Store(0)
		c.bytes.Store(0)
	}
	return e
}

func (e *laneEnv) event(t *testing.T) bus.Message {
	return bus.Message{Channel: topic.UserManagerEvents, Payload: stopEvent(t)}
}

func (e *laneEnv) eventJob(t *testing.T) func(*worker) {
	m := e.event(t)
	return func(w *worker) { e.r.routeEvents(w, m, directory.KindUser, "") }
}

// TestLaneBatchOneWritePerSocket: events waiting in a lane are routed as a batch and each
// socket's frames of the batch go out in one write, in order; the delivered count is kept.
func TestLaneBatchOneWritePerSocket(t *testing.T) {
	for _, events := range []int{2, 5, laneBatch} {
		e := newLaneEnv(t, 50)
		for range events - 1 {
			e.l.jobs <- e.eventJob(t)
		}
		before := e.r.metrics.NodeTotals().Deliveries
		// A batch also ends after laneBatchTime (slow under -race): the lane goroutine would
		// take the rest as the next batch, as here.
		batches := 1
		e.r.batch(e.l, e.eventJob(t))
		for len(e.l.jobs) > 0 {
			batches++
			e.r.batch(e.l, <-e.l.jobs)
		}
		require.Empty(t, e.l.w.staged)
		require.Empty(t, e.l.w.arena)
		for i, c := range e.conns {
			require.Eventually(t, func() bool { return c.bytes.Load() == int64(events*e.frame) }, 5*time.Second, time.Millisecond,
				"socket %d got every frame: %d bytes for %d frames of %d, %d writes", i, c.bytes.Load(), events, e.frame, c.writes.Load())
			require.LessOrEqual(t, c.writes.Load(), int64(batches), "socket %d: one write per batch for %d frames", i, events)
			require.Zero(t, e.hc[i].stageFirst)
		}
		require.Equal(t, uint64(events*len(e.conns)), e.r.metrics.NodeTotals().Deliveries-before)
	}
}

// TestLaneBatchCommandAfterEvents: a disconnect command behind events in the same batch closes
// the sockets after their frames went out (the events before a command are never lost to it).
func TestLaneBatchCommandAfterEvents(t *testing.T) {
	e := newLaneEnv(t, 5)
	e.l.jobs <- e.eventJob(t)
	e.l.jobs <- e.r.disconnectJob(directory.KindUser, directory.DemoAdminUUID)
	e.l.jobs <- e.eventJob(t) // after the close: dropped
	e.r.batch(e.l, e.eventJob(t))
	closeLen := int64(len(closeFrame(CloseDisconnect, "CMD_CLIENT_DISCONNECT")))
	for i, c := range e.conns {
		require.Eventually(t, func() bool { return c.bytes.Load() == int64(2*e.frame)+closeLen }, 5*time.Second, time.Millisecond,
			"socket %d: two frames, then the close", i)
		require.Equal(t, metrics.DisconnectCommand, e.hc[i].CloseReason())
	}
}

// deadlineConn counts write deadline updates.
type deadlineConn struct {
	discardConn
	deadlines atomic.Int64
}

func (d *deadlineConn) SetWriteDeadline(time.Time) error { d.deadlines.Add(1); return nil }

// TestWriteDeadlineNotResetPerWakeUp: a socket written to many times in a row (one writer wake-up
// each) has its write deadline set once, not once per wake-up.
func TestWriteDeadlineNotResetPerWakeUp(t *testing.T) {
	h := newTestHub(t, Config{Metrics: metrics.New(), WriteTimeout: time.Hour})
	dc := &deadlineConn{}
	c := h.Register(dc, directory.KindUser, "u", FormatJSON, directory.Access{})
	for i := range 50 {
		require.True(t, c.Send(TextFrame([]byte("x"))))
		require.Eventually(t, func() bool { return dc.bytes.Load() == int64(3*(i+1)) }, 5*time.Second, 100*time.Microsecond)
	}
	require.Equal(t, int64(50), dc.writes.Load(), "one write per wake-up")
	require.Equal(t, int64(1), dc.deadlines.Load())
}
