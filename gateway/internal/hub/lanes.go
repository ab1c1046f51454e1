package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// laneDepth is how many routing jobs a kind's lane holds. A lane that stays full (its filter is
// slower than the traffic) drops the oldest work first: the new job is refused and counted.
const laneDepth = 8192

// lane routes the events of one connection kind, in bus order, on its own goroutine: a filter that
// is slow for one kind (a plugin running to its deadline) delays that kind's deliveries only.
type lane struct {
	k       directory.Kind
	jobs    chan func(w *worker)
	w       worker
	dropped atomic.Int64
	warned  atomic.Int64 // unix seconds of the last overflow warning
}

// lanes are the router's per-kind lanes.
type lanes struct {
	mu     sync.RWMutex // held for reading while enqueuing, for writing while closing
	closed bool
	byKind [directory.KindService + 1]*lane
	wg     sync.WaitGroup
}

func (r *Router) startLanes() {
	for _, k := range socketKinds {
		l := &lane{k: k, jobs: make(chan func(*worker), laneDepth)}
		r.lanes.byKind[k] = l
		r.lanes.wg.Add(1)
		go func() {
			defer r.lanes.wg.Done()
			for job := range l.jobs {
				if len(l.jobs) == 0 {
					job(&l.w)
					continue
				}
				r.batch(l, job)
			}
		}()
	}
}

// A lane that finds events waiting behind the one it takes routes them as a batch, up to
// laneBatch events or laneBatchTime, and queues each connection's frames of the batch together: a
// socket then gets several frames in one write instead of one write (and one writer wake-up) per
// frame, which is what keeps the cost per delivery flat when thousands of sockets receive several
// events in flight. An idle lane routes each event alone, without delay.
const (
	laneBatch     = 32
	laneBatchTime = 5 * time.Millisecond
)

// batch routes job and the jobs waiting behind it (bounded) with staging, then flushes.
func (r *Router) batch(l *lane, job func(*worker)) {
	w := &l.w
	w.staging = true
	start := time.Now()
	job(w)
	for n := 1; n < laneBatch && len(l.jobs) > 0 && time.Since(start) < laneBatchTime; n++ {
		next, ok := <-l.jobs
		if !ok {
			break
		}
		next(w)
	}
	w.staging = false
	r.flush(w)
}

// stopLanes closes the lanes and waits (until ctx is done) for the work queued in them.
func (r *Router) stopLanes(ctx context.Context) error {
	// The bus may still be running a handler (Unsubscribe does not wait for it): no send after
	// the close.
	r.lanes.mu.Lock()
	if !r.lanes.closed {
		r.lanes.closed = true
		for _, l := range r.lanes.byKind {
			if l != nil {
				close(l.jobs)
			}
		}
	}
	r.lanes.mu.Unlock()
	done := make(chan struct{})
	go func() { r.lanes.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue hands job to kind k's lane without waiting; a full lane drops it (counted) and
// reports false.
func (r *Router) enqueue(k directory.Kind, job func(w *worker)) bool {
	r.lanes.mu.RLock()
	defer r.lanes.mu.RUnlock()
	l := r.lanes.byKind[k]
	if l == nil || r.lanes.closed {
		return false
	}
	select {
	case l.jobs <- job:
		return true
	default:
		l.dropped.Add(1)
		r.metrics.Dropped(metrics.DropBusOverflow, 1)
		now := time.Now().Unix()
		if last := l.warned.Load(); now-last >= 10 && l.warned.CompareAndSwap(last, now) {
			r.log.Warn("routing lane full: events for this kind are dropped (its filter is slower than the traffic)",
				"kind", k, "dropped_total", l.dropped.Load())
		}
		return false
	}
}

// dispatch is the bus handler of the router's subscription: it hands each message to the lanes
// of the kinds it concerns. Commands go through the lanes too, so a disconnect never overtakes
// the events published before it.
func (r *Router) dispatch(m bus.Message, family string) {
	switch family {
	case "direct":
		k, uuid, ok := topic.ParseDirect(m.Channel)
		if !ok {
			return // websocket.<type>.<uuid> answer topics and others: not events for sockets
		}
		r.enqueue(k, func(w *worker) { r.routeEvents(w, m, k, uuid) })
	case "command":
		uuid := topic.CommandTarget(m.Channel)
		if !isDisconnect(r, m) {
			return
		}
		for _, k := range socketKinds {
			closeKind := r.disconnectJob(k, uuid)
			if !r.enqueue(k, closeKind) {
				closeKind(nil) // a disconnect is never dropped: on a full lane it runs at once
			}
		}
	default:
		for _, k := range socketKinds {
			r.enqueue(k, func(w *worker) { r.routeEvents(w, m, k, "") })
		}
	}
}

// disconnectJob closes the sockets of kind k of the entity uuid (CMD_CLIENT_DISCONNECT), after
// the frames of the events before it that its lane staged.
func (r *Router) disconnectJob(k directory.Kind, uuid string) func(*worker) {
	return func(w *worker) {
		if w != nil && w.staging {
			r.flush(w)
		}
		n := r.hub.CloseEntity(k, uuid, CloseDisconnect, "CMD_CLIENT_DISCONNECT", metrics.DisconnectCommand)
		if n > 0 {
			r.log.Debug("client disconnect command", "uuid", uuid, "kind", k, "sockets", n)
		}
	}
}

// isDisconnect reports whether a command payload holds CMD_CLIENT_DISCONNECT (a payload that does
// not decode is counted and logged).
func isDisconnect(r *Router, m bus.Message) bool {
	var msg opentera.TeraModuleMessage
	if err := proto.Unmarshal(m.Payload, &msg); err != nil {
		r.metrics.Dropped(metrics.DropBadPayload, 1)
		r.log.Warn("undecodable server command", "topic", m.Channel, "error", err)
		return false
	}
	for _, a := range msg.GetData() {
		var cmd opentera.ServerCommand
		if a.MessageIs(&cmd) && a.UnmarshalTo(&cmd) == nil && cmd.GetType() == opentera.ServerCommand_CMD_CLIENT_DISCONNECT {
			return true
		}
	}
	return false
}
