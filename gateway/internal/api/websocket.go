package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/gateway/internal/transport"
	"github.com/teragate/teragate/proto/opentera"
)

// websocket serves GET /wss/{kind}?id=<ticket>[&format=proto][&resume=1[&since=<position>]].
func (a *API) websocket(w http.ResponseWriter, r *http.Request) {
	kind, ok := directory.ParseKind(r.PathValue("kind"))
	if !ok || kind == directory.KindService {
		a.d.Metrics.HTTPRequest("websocket", http.StatusNotFound)
		writeError(w, http.StatusNotFound, "Unknown websocket type: "+r.PathValue("kind"))
		return
	}
	if !transport.IsUpgrade(r) {
		a.d.Metrics.HTTPRequest("websocket", http.StatusUpgradeRequired)
		w.Header().Set("Upgrade", "websocket")
		writeError(w, http.StatusUpgradeRequired, "Upgrade Required")
		return
	}
	var format hub.Format
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		format = hub.FormatJSON
	case "proto", "protobuf":
		format = hub.FormatProto
	default:
		a.d.Metrics.HTTPRequest("websocket", http.StatusBadRequest)
		writeError(w, http.StatusBadRequest, "Unknown format "+f+": want json or proto")
		return
	}
	opts := hub.ConnOptions{Format: format}
	since, msg := resumeQuery(r, &opts)
	if msg != "" {
		a.d.Metrics.HTTPRequest("websocket", http.StatusBadRequest)
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	uuid, err := a.d.Tickets.Redeem(r.Context(), r.URL.Query().Get("id"), kind)
	if err != nil {
		a.d.Metrics.HTTPRequest("websocket", http.StatusForbidden)
		reason := "invalid"
		if errors.Is(err, auth.ErrTicketExpired) {
			reason = "expired"
		}
		a.log.Debug("websocket ticket refused", "kind", kind, "reason", reason, "remote", r.RemoteAddr, "error", err)
		writeError(w, http.StatusForbidden, "Websocket authentication failed (key, uuid).")
		return
	}
	snap := a.d.Directory.Current()
	access, ok := snap.Principal(kind, uuid)
	if !ok || !snap.Enabled(kind, uuid) || a.d.Presence.Blocked(kind, uuid) {
		a.d.Metrics.HTTPRequest("websocket", http.StatusForbidden)
		writeError(w, http.StatusForbidden, "Websocket authentication failed (key, uuid).")
		return
	}
	err = a.d.Transport.ServeWith(w, r, kind, uuid, access, opts, transport.Hooks{
		Opened: func(c *hub.Conn) {
			// Announced first, so presence counts the socket at once and a close during the
			// replay follows its open. The replay runs beside the read loop, which must start
			// now: a replay of thousands of events takes longer than the pong timeout.
			a.announce(c, true)
			if opts.Replay {
				go a.resume(c, since)
			}
		},
		Closed: func(c *hub.Conn) { a.announce(c, false) },
	})
	if err != nil {
		a.d.Metrics.HTTPRequest("websocket", http.StatusBadRequest)
		a.log.Debug("websocket upgrade failed", "error", err)
		return
	}
	a.d.Metrics.HTTPRequest("websocket", http.StatusSwitchingProtocols)
}

// announce tells the user manager that a socket opened or closed ([presence.Registry.Announce]).
// A socket opened while its entity is already online is greeted alone with the entity's
// CONNECTED event, as the entity's first socket is by the published one.
func (a *API) announce(c *hub.Conn, connected bool) {
	var greet func(proto.Message)
	if connected {
		greet = func(ev proto.Message) { a.greet(c, ev) }
	}
	if err := a.d.Presence.Announce(context.Background(), c.Kind(), c.UUID(), connected, greet); err != nil {
		a.log.Error("announcing socket", "kind", c.Kind(), "uuid", c.UUID(), "connected", connected, "error", err)
		return
	}
	a.d.Metrics.Published("socket")
}

// greet sends ev, the entity's CONNECTED event, to c alone, framed as the router frames events.
func (a *API) greet(c *hub.Conn, ev proto.Message) {
	evAny, err := opentera.NewAny(ev)
	if err == nil {
		var f []byte
		header := &opentera.TeraEvent_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Topic: topic.UserManagerEvents}
		if f, err = hub.EncodeEvent(header, evAny, nil, c.Format()); err == nil {
			// As a live event: a resuming socket gets it after its replay (or its
			// ResumeFailed), which comes first.
			if c.SendEvent(f) {
				a.d.Metrics.Delivered(c.Kind(), 1)
			}
			return
		}
	}
	a.log.Error("greeting a socket", "kind", c.Kind(), "uuid", c.UUID(), "error", err)
}
