package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/transport"
)

// websocket serves GET /wss/{kind}?id=<ticket>[&format=proto].
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
	if !ok || !snap.Enabled(kind, uuid) {
		a.d.Metrics.HTTPRequest("websocket", http.StatusForbidden)
		writeError(w, http.StatusForbidden, "Websocket authentication failed (key, uuid).")
		return
	}
	err = a.d.Transport.Serve(w, r, kind, uuid, format, access, transport.Hooks{
		Opened: func(c *hub.Conn) { a.announce(c, true) },
		Closed: func(c *hub.Conn) { a.announce(c, false) },
	})
	if err != nil {
		a.d.Metrics.HTTPRequest("websocket", http.StatusBadRequest)
		a.log.Debug("websocket upgrade failed", "error", err)
		return
	}
	a.d.Metrics.HTTPRequest("websocket", http.StatusSwitchingProtocols)
}

// announce tells the user manager that a socket opened or closed, as OpenTera's websocket
// protocols do: a TeraModuleMessage from websocket.<kind>.<uuid> with the CONNECTED or
// DISCONNECTED event, on module.TeraServer.UserManagerModule.messages.
func (a *API) announce(c *hub.Conn, connected bool) {
	uuid := c.UUID()
	change := presence.Disconnected
	if connected {
		change = presence.Connected
	}
	ev := presence.EntityEvent(a.d.Directory.Current(), c.Kind(), uuid, change)
	if ev == nil {
		return
	}
	source := "websocket." + c.Kind().String() + "." + uuid
	payload, err := presence.EncodeModuleMessage(source, presence.TopicMessages, ev)
	switch {
	case err != nil:
	case a.d.Announce != nil:
		err = a.d.Announce(context.Background(), c.Kind(), uuid, connected, payload)
	default:
		err = a.d.Bus.Publish(context.Background(), presence.TopicMessages, payload)
	}
	if errors.Is(err, bus.ErrClosed) {
		return // shutting down: nobody is left to tell
	}
	if err != nil {
		a.log.Error("announcing socket", "kind", c.Kind(), "uuid", uuid, "connected", connected, "error", err)
		return
	}
	a.d.Metrics.Published("socket")
}
