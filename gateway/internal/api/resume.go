package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/proto/opentera"
	teragatev1 "github.com/teragate/teragate/proto/teragate/v1"
)

// replayTimeout bounds one connection's replay (reading the history and waiting for the client
// to take the frames).
const replayTimeout = time.Minute

// resumeQuery reads resume=1 and since=<position> into o; a bad value is a message for a 400.
func resumeQuery(r *http.Request, o *hub.ConnOptions) (history.Token, string) {
	q := r.URL.Query()
	switch v := q.Get("resume"); v {
	case "", "0", "false":
	case "1", "true":
		o.Positions = true
	default:
		return history.Token{}, "Bad resume " + v + ": want 1 or 0"
	}
	if !q.Has("since") {
		return history.Token{}, ""
	}
	if !o.Positions {
		return history.Token{}, "since needs resume=1"
	}
	t, err := history.ParseToken(q.Get("since"))
	if err != nil {
		return history.Token{}, "Malformed since position: want the position of the last event received"
	}
	o.Replay = true
	return t, ""
}

// resume sends c, registered in replay mode, the events recorded after since, then lets the
// live events it held back through (without those the replay sent). When the history cannot
// resume from since, the first frame is a ResumeFailed and the live stream follows.
func (a *API) resume(c *hub.Conn, since history.Token) {
	ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
	defer cancel()
	h := a.d.History
	if h == nil || a.d.Router == nil {
		a.resumeFailed(ctx, c, history.ReasonDisabled, nil)
		return
	}
	res, err := a.d.Router.Replay(ctx, c, h, since)
	switch {
	case err == nil:
		dups := c.FinishReplay(res.Last.Pos)
		a.d.Metrics.ResumeOK(res.Events, res.Sent, dups)
		a.log.Debug("resumed", "kind", c.Kind(), "uuid", c.UUID(), "conn", c.ID(), "since", since.String(),
			"events", res.Events, "frames", res.Sent, "duplicates", dups)
	case !res.Started:
		reason := history.Reason(err)
		if reason == history.ReasonError {
			a.log.Warn("reading the event history for a resume", "kind", c.Kind(), "uuid", c.UUID(), "error", err)
		}
		a.resumeFailed(ctx, c, reason, h)
	default:
		a.d.Metrics.ResumeInterrupted(res.Events, res.Sent)
		if !errors.Is(err, hub.ErrReplayClosed) {
			// The client reconnects with the last position it got and learns what it can.
			a.log.Warn("resume interrupted", "kind", c.Kind(), "uuid", c.UUID(), "conn", c.ID(), "error", err)
			c.Close(hub.CloseSlowConsumer, "resume interrupted", metrics.DisconnectSlowConsumer)
		}
		c.FinishReplay(res.Last.Pos)
	}
}

// resumeFailed sends the ResumeFailed frame, then ends the replay mode at the history's newest
// position (the stream continues from there).
func (a *API) resumeFailed(ctx context.Context, c *hub.Conn, reason string, h history.Store) {
	a.d.Metrics.ResumeFailed(reason)
	var head history.Token
	if h != nil {
		var err error
		if head, err = h.Head(ctx); err != nil {
			a.log.Warn("reading the event history head", "error", err)
		}
	}
	msg := &teragatev1.ResumeFailed{Reason: reason}
	if head.Epoch != "" {
		msg.Position = head.String()
	}
	a.log.Debug("resume failed", "kind", c.Kind(), "uuid", c.UUID(), "conn", c.ID(), "reason", reason, "position", msg.Position)
	wrapped, err := opentera.NewAny(msg)
	if err == nil {
		var f []byte
		if f, err = hub.EncodeMessage(wrapped, c.Format(), ""); err == nil {
			c.Send(f)
		}
	}
	if err != nil {
		a.log.Error("encoding ResumeFailed", "error", err)
	}
	c.FinishReplay(head.Pos)
}
