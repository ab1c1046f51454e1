package hub

import (
	"context"
	"errors"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// ErrReplayClosed is returned by [Router.Replay] when the connection closed during the replay.
var ErrReplayClosed = errors.New("hub: connection closed during the replay")

// ReplayPage is how many recorded events [Router.Replay] reads at a time.
const ReplayPage = 256

// ReplayResult is the outcome of [Router.Replay].
type ReplayResult struct {
	// Last is the position of the last event replayed (after, when there was none): the live
	// events at or before it are duplicates ([Conn.FinishReplay]).
	Last history.Token
	// Events is how many recorded events were read; Sent how many frames c was sent.
	Events, Sent int
	// Started reports whether the history accepted the position (its first read succeeded): a
	// failure before that is the client's to resynchronise, one after it interrupts the replay.
	Started bool
}

// Replay sends c, a connection in replay mode, the events recorded in h after the position
// after that it may receive — the same filter decision as live events, for this one connection,
// with its access now — in order, pacing itself on the connection's queue. It does not end the
// replay mode: the caller calls [Conn.FinishReplay] with the result's Last.
func (r *Router) Replay(ctx context.Context, c *Conn, h history.Store, after history.Token) (ReplayResult, error) {
	res := ReplayResult{Last: after}
	w := &worker{only: c}
	for {
		ents, err := h.Read(ctx, res.Last, ReplayPage)
		if err != nil {
			return res, err
		}
		res.Started = true
		for _, e := range ents {
			if !c.waitRoom(ctx) {
				if err := ctx.Err(); err != nil {
					return res, err
				}
				return res, ErrReplayClosed
			}
			w.sent = 0
			r.replayOne(w, e)
			res.Sent += w.sent
			res.Events++
			res.Last = history.Token{Epoch: after.Epoch, Pos: e.Pos, Stream: after.Stream}
		}
		if len(ents) < ReplayPage {
			return res, nil
		}
	}
}

// replayOne routes one recorded event to w.only as the router routes its family.
func (r *Router) replayOne(w *worker, e history.Entry) {
	m := bus.Message{Channel: e.Channel, Payload: e.Payload, Position: e.Token}
	if k, uuid, ok := topic.ParseDirect(e.Channel); ok {
		if k == w.only.kind && uuid == w.only.uuid {
			r.routeEvents(w, m, k, uuid)
		}
		return
	}
	if Recorded(e.Channel) {
		r.routeEvents(w, m, 0, "")
	}
}

// Recorded reports whether channel is one the event history keeps: the families whose events
// the router delivers to sockets (user manager, service and direct events; not commands).
func Recorded(channel string) bool {
	if channel == topic.UserManagerEvents {
		return true
	}
	if _, _, ok := topic.ParseDirect(channel); ok {
		return true
	}
	return bus.Match(topic.PatternServiceEvents, channel)
}
