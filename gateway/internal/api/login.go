package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/topic"
)

var kindTitle = map[directory.Kind]string{
	directory.KindUser: "User", directory.KindParticipant: "Participant", directory.KindDevice: "Device",
}

// authenticate resolves the caller of a login/logout endpoint of kind: HTTP Basic (users and
// participants) or a token. basic reports whether a password was used.
func (a *API) authenticate(r *http.Request, kind directory.Kind) (p auth.Principal, basic bool, err error) {
	if user, pass, ok := r.BasicAuth(); ok && kind != directory.KindDevice {
		// Guesses are throttled per username and TCP peer address (no proxy header is trusted).
		p, err = a.d.Auth.Password(r.Context(), kind, user, pass, r.RemoteAddr)
		return p, true, err
	}
	tok, ok := bearer(r)
	if !ok {
		return p, false, auth.ErrBadCredentials
	}
	p, err = a.d.Auth.Token(r.Context(), kind, tok)
	return p, false, err
}

// deny answers a refused login or logout as OpenTera does: for users and participants (HTTP
// auth) a 401 with the text "Unauthorized" and WWW-Authenticate: Basic realm="<kind>"; for
// devices a 401 with the JSON string "Unauthorized", or "Disabled device". A throttled attempt
// (teragate's lockout) says so, with Retry-After.
func (a *API) deny(w http.ResponseWriter, kind directory.Kind, err error) {
	if errors.Is(err, auth.ErrBusy) { // says nothing about the credentials: retry soon
		a.d.Metrics.Login(kind, "busy")
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "Too many login attempts in progress, try again.")
		return
	}
	code, msg, label := loginResult(err)
	a.d.Metrics.Login(kind, label)
	var locked *auth.LockedError
	if errors.As(err, &locked) {
		secs := int(time.Until(locked.Until).Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		if kind != directory.KindDevice {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+kind.String()+`"`)
		}
		writeError(w, code, msg)
		return
	}
	if kind == directory.KindDevice {
		msg = "Unauthorized"
		if errors.Is(err, auth.ErrDisabled) {
			msg = "Disabled device"
		}
		writeError(w, http.StatusUnauthorized, msg)
		return
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+kind.String()+`"`)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("Unauthorized"))
}

// login serves GET /api/<kind>/login.
func (a *API) login(kind directory.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, basic, err := a.authenticate(r, kind)
		if err != nil {
			a.log.Debug("login refused", "kind", kind, "remote", r.RemoteAddr, "error", err)
			a.deny(w, kind, err)
			return
		}
		if ok, wait := a.limit.allow(kind, p.UUID); !ok {
			a.rateLimited(w, kind, p.UUID, r.RemoteAddr, wait)
			return
		}
		withWS := false
		if v, ok := r.URL.Query()["with_websocket"]; ok && len(v) > 0 {
			b, valid := parseBool(v[0])
			if !valid {
				a.d.Metrics.Login(kind, "bad_request")
				writeError(w, http.StatusBadRequest, "Invalid with_websocket value: "+strconv.Quote(v[0]))
				return
			}
			withWS = b
		}
		snap := a.d.Directory.Current()
		online := a.d.Presence.Online(kind, p.UUID)
		// One typed reply per kind (encoding/json encodes a struct without the map's key sort
		// and boxing); fields in key order, as the map gave them.
		var (
			resp   any
			wsURL  *string
			wantWS bool
		)
		switch kind {
		case directory.KindUser:
			u, ok := snap.User(p.UUID)
			if !ok {
				a.deny(w, kind, auth.ErrBadCredentials)
				return
			}
			tok, err := a.d.Auth.IssueToken(p)
			if err != nil {
				a.log.Error("issuing user token", "error", err)
				writeError(w, http.StatusInternalServerError, "Could not issue a token.")
				return
			}
			ur := &userLogin{UserFullname: u.Fullname, UserToken: tok, UserUUID: u.UUID}
			resp, wsURL, wantWS = ur, &ur.WebsocketURL, withWS
		case directory.KindParticipant:
			pp, ok := snap.Participant(p.UUID)
			if !ok {
				a.deny(w, kind, auth.ErrBadCredentials)
				return
			}
			pr := &participantLogin{BaseToken: pp.Token, ParticipantName: pp.Name, ParticipantUUID: pp.UUID, SessionTypesInfo: []any{}}
			resp, wsURL = pr, &pr.WebsocketURL
			if basic {
				tok, err := a.d.Auth.IssueToken(p)
				if err != nil {
					a.log.Error("issuing participant token", "error", err)
					writeError(w, http.StatusInternalServerError, "Could not issue a token.")
					return
				}
				pr.ParticipantToken = tok
			}
			// OpenTera: the url comes whenever the participant is offline, flag or not.
			wantWS = withWS || !online
		case directory.KindDevice:
			d, ok := snap.Device(p.UUID)
			if !ok {
				a.deny(w, kind, auth.ErrBadCredentials)
				return
			}
			dr := &deviceLogin{DeviceInfo: deviceInfoOf(snap, d), ParticipantsInfo: []participantInfo{}, SessionTypesInfo: []any{}}
			for _, pu := range snap.DeviceParticipants(d.UUID) {
				name, _, _ := presence.ParticipantNames(snap, pu)
				dr.ParticipantsInfo = append(dr.ParticipantsInfo, participantInfo{ParticipantName: name, ParticipantUUID: pu})
			}
			resp, wsURL, wantWS = dr, &dr.WebsocketURL, d.Onlineable
		}
		if wantWS && online && a.d.SingleSocket {
			a.d.Metrics.Login(kind, "already_logged_in")
			writeError(w, http.StatusForbidden, kindTitle[kind]+" already logged in.")
			return
		}
		if wantWS {
			ticket, err := a.d.Tickets.Issue(r.Context(), kind, p.UUID)
			if err != nil {
				a.log.Error("issuing websocket ticket", "error", err)
				writeError(w, http.StatusServiceUnavailable, "Could not issue a websocket ticket.")
				return
			}
			*wsURL = a.websocketURL(r, kind, ticket)
		}
		a.d.Metrics.Login(kind, "ok")
		writeJSON(w, http.StatusOK, resp)
	}
}

// The login replies, one per kind, with OpenTera's field names. Fields are in key order (the
// order the replies had when they were maps); optional ones are left out when empty.
type (
	userLogin struct {
		UserFullname string `json:"user_fullname"`
		UserToken    string `json:"user_token"`
		UserUUID     string `json:"user_uuid"`
		WebsocketURL string `json:"websocket_url,omitempty"`
	}
	participantLogin struct {
		BaseToken        string `json:"base_token,omitempty"`
		ParticipantName  string `json:"participant_name"`
		ParticipantToken string `json:"participant_token,omitempty"`
		ParticipantUUID  string `json:"participant_uuid"`
		SessionTypesInfo []any  `json:"session_types_info"`
		WebsocketURL     string `json:"websocket_url,omitempty"`
	}
	deviceLogin struct {
		DeviceInfo       deviceInfo        `json:"device_info"`
		ParticipantsInfo []participantInfo `json:"participants_info"`
		SessionTypesInfo []any             `json:"session_types_info"`
		WebsocketURL     string            `json:"websocket_url,omitempty"`
	}
	// deviceInfo is OpenTera's device record as its to_json(minimal=False) writes it: every
	// column but the certificate, nulls included, in key order.
	deviceInfo struct {
		DeviceConfig     *string `json:"device_config"`
		DeviceEnabled    bool    `json:"device_enabled"`
		DeviceInfos      *string `json:"device_infos"`
		DeviceLastonline *string `json:"device_lastonline"`
		DeviceName       string  `json:"device_name"`
		DeviceNotes      *string `json:"device_notes"`
		DeviceOnlineable bool    `json:"device_onlineable"`
		DeviceToken      string  `json:"device_token"`
		DeviceUUID       string  `json:"device_uuid"`
		IDDevice         int     `json:"id_device"`
		IDDeviceSubtype  *int    `json:"id_device_subtype"`
		IDDeviceType     int     `json:"id_device_type"`
	}
	participantInfo struct {
		ParticipantName string `json:"participant_name"`
		ParticipantUUID string `json:"participant_uuid"`
	}
)

// deviceInfoOf fills device_info from the identity file (id_device defaults to the device's
// position; device_lastonline is null: teragate keeps no login history).
func deviceInfoOf(snap *directory.Snapshot, d *directory.Device) deviceInfo {
	id := d.ID
	if id == 0 {
		id = snap.DeviceIndex(d.UUID) + 1
	}
	return deviceInfo{
		DeviceConfig: d.Config, DeviceEnabled: d.Enabled, DeviceInfos: d.Infos, DeviceName: d.Name, DeviceNotes: d.Notes,
		DeviceOnlineable: d.Onlineable, DeviceToken: d.Token, DeviceUUID: d.UUID,
		IDDevice: id, IDDeviceSubtype: d.Subtype, IDDeviceType: d.Type,
	}
}

// logout serves GET /api/<kind>/logout: the token is revoked and every socket of the entity, on
// every node, is closed with 4000 (CMD_CLIENT_DISCONNECT through the bus, as OpenTera does).
func (a *API) logout(kind directory.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _, err := a.authenticate(r, kind)
		if err != nil {
			a.deny(w, kind, err)
			return
		}
		if p.TokenID != "" {
			if err := a.d.Auth.Revoke(r.Context(), p); err != nil {
				a.log.Error("revoking token", "uuid", p.UUID, "error", err)
			}
		}
		if err := a.Disconnect(r, p.UUID); err != nil {
			a.log.Error("publishing disconnect command", "uuid", p.UUID, "error", err)
			writeError(w, http.StatusServiceUnavailable, "Could not disconnect the websocket.")
			return
		}
		writeJSON(w, http.StatusOK, kindTitle[kind]+" logged out.") // OpenTera's JSON string
	}
}

// Disconnect publishes CMD_CLIENT_DISCONNECT for uuid on the TwistedModule command topic.
func (a *API) Disconnect(r *http.Request, uuid string) error {
	channel, payload, err := presence.EncodeDisconnect(topic.FlaskMessages, uuid)
	if err != nil {
		return err
	}
	return a.publish(r.Context(), "logout", channel, payload)
}

// rateLimited answers a login over its entity's rate ([LoginRate]): 429 with Retry-After, the
// seconds until the entity may log in again.
func (a *API) rateLimited(w http.ResponseWriter, kind directory.Kind, uuid, remote string, wait time.Duration) {
	a.d.Metrics.Login(kind, "rate_limited")
	a.log.Debug("login over the entity's rate", "kind", kind, "uuid", uuid, "remote", remote, "retry_after", wait)
	w.Header().Set("Retry-After", strconv.Itoa(max(int(wait.Seconds()+0.999), 1)))
	writeError(w, http.StatusTooManyRequests, "Too many logins for this "+kind.String()+", try again later.")
}
