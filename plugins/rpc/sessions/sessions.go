package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/teragate/teragate/sdk/pdk"
)

// Module is the RPC module name: module.sessions.rpc on the bus, POST /api/rpc/sessions over
// HTTP.
const Module = "sessions"

// DefaultReplyTopic is where busy replies are published unless the config or the invitation says
// otherwise: the user manager's events topic reaches every connection kind, and the filters
// deliver a JoinSessionReplyEvent to the session's members except the one it is about.
const DefaultReplyTopic = "module.TeraServer.UserManagerModule.events"

// Errors of the methods (they become "status": "Error" replies).
var (
	ErrBadInvitation = errors.New("sessions: invitation must be a JoinSessionEvent JSON object with a sessionUuid")
	ErrBadKind       = errors.New("sessions: kind must be user, participant or device")
)

// checkReach refuses a call naming an entity outside the caller's access, before anything is
// done: a user may invite, and ask about, only the entities it may see (its projects'), a
// participant itself and its linked devices, and so on (the gateway's directory rules). Trusted
// callers (services on the bus, admins) may name anyone. The gateway enforces the same rule on
// every presence question and publish this plugin makes for the caller; checking first gives
// the caller a clear error and makes the call all-or-nothing.
func checkReach(kind pdk.Kind, uuids ...string) error {
	for _, u := range uuids {
		if u == "" {
			continue
		}
		ok, err := pdk.CallerReaches(kind, u)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: sessions: %s %q is outside your access", pdk.ErrForbidden, kind, u)
		}
	}
	return nil
}

// replyTopic is the configured default reply topic (plugin config {"reply_topic": "..."}).
var replyTopic = DefaultReplyTopic

func configure(_ string, config []byte) error {
	replyTopic = DefaultReplyTopic
	if len(config) == 0 {
		return nil
	}
	v, err := pdk.ParseJSON(config)
	if err != nil {
		return err
	}
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["reply_topic"].(string); ok && s != "" {
			replyTopic = s
		}
	}
	return nil
}

// invite serves invite(invitation): invitation is a JoinSessionEvent as JSON (text or object),
// with OpenTera's JSON names (sessionUuid, sessionUrl, sessionCreatorName, sessionUsers,
// sessionParticipants, sessionDevices, joinMsg, sessionParameters, serviceUuid; snake_case is
// accepted too) plus an optional "replyTo" topic for the busy replies.
//
// Each invitee busy in another session gets no invitation; a JoinSessionReplyEvent{REPLY_BUSY} on
// its behalf is published on the reply topic. The free invitees (including those already in this
// session) each receive, on their own websocket topic, the JoinSessionEvent listing the free
// invitees only. It returns {"forwarded": [uuids…], "busy": {uuid: session, …}}.
func invite(args []any) (any, error) {
	if len(args) < 1 {
		return nil, ErrBadInvitation
	}
	inv, topic, err := parseInvitation(args[0])
	if err != nil {
		return nil, err
	}
	if err := errors.Join(checkReach(pdk.KindUser, inv.SessionUsers...),
		checkReach(pdk.KindParticipant, inv.SessionParticipants...),
		checkReach(pdk.KindDevice, inv.SessionDevices...)); err != nil {
		return nil, err
	}
	free := inv
	free.SessionUsers, free.SessionParticipants, free.SessionDevices = nil, nil, nil
	busyOnes := map[string]any{}
	type invitee struct {
		kind pdk.Kind
		uuid string
	}
	var forward []invitee
	check := func(kind pdk.Kind, uuids []string, keep *[]string) error {
		for _, u := range uuids {
			if u == "" {
				continue
			}
			session, isBusy, err := pdk.PresenceBusy(kind, u)
			if err != nil {
				return err
			}
			if isBusy && session != inv.SessionUUID {
				busyOnes[u] = session
				reply := pdk.JoinSessionReplyEvent{SessionUUID: inv.SessionUUID, JoinReply: pdk.ReplyBusy, ReplyMsg: "busy in another session"}
				switch kind {
				case pdk.KindUser:
					reply.UserUUID = u
				case pdk.KindParticipant:
					reply.ParticipantUUID = u
				case pdk.KindDevice:
					reply.DeviceUUID = u
				}
				if err := pdk.Publish(topic, reply); err != nil {
					return err
				}
				continue
			}
			*keep = append(*keep, u)
			forward = append(forward, invitee{kind, u})
		}
		return nil
	}
	if err := check(pdk.KindUser, inv.SessionUsers, &free.SessionUsers); err != nil {
		return nil, err
	}
	if err := check(pdk.KindParticipant, inv.SessionParticipants, &free.SessionParticipants); err != nil {
		return nil, err
	}
	if err := check(pdk.KindDevice, inv.SessionDevices, &free.SessionDevices); err != nil {
		return nil, err
	}
	forwarded := make([]string, 0, len(forward))
	for _, iv := range forward {
		if err := pdk.Publish(DirectTopic(iv.kind, iv.uuid), free); err != nil {
			return nil, err
		}
		forwarded = append(forwarded, iv.uuid)
	}
	pdk.Log(pdk.LogInfo, "invitation", "session", inv.SessionUUID, "forwarded", len(forwarded), "busy", len(busyOnes))
	return map[string]any{"forwarded": forwarded, "busy": busyOnes}, nil
}

// busy serves busy(kind, uuid): the session the entity is busy in, or null.
func busy(args []any) (any, error) {
	if len(args) < 2 {
		return nil, ErrBadKind
	}
	kind, _ := args[0].(string)
	uuid, _ := args[1].(string)
	switch pdk.Kind(kind) {
	case pdk.KindUser, pdk.KindParticipant, pdk.KindDevice:
	default:
		return nil, ErrBadKind
	}
	if err := checkReach(pdk.Kind(kind), uuid); err != nil {
		return nil, err
	}
	session, isBusy, err := pdk.PresenceBusy(pdk.Kind(kind), uuid)
	if err != nil || !isBusy {
		return nil, err
	}
	return session, nil
}

// DirectTopic is the bus topic of one entity's websockets.
func DirectTopic(kind pdk.Kind, uuid string) string {
	return "websocket." + string(kind) + "." + uuid + ".events"
}

// parseInvitation reads the invitation argument and the topic for busy replies.
func parseInvitation(arg any) (pdk.JoinSessionEvent, string, error) {
	var ev pdk.JoinSessionEvent
	if s, ok := arg.(string); ok {
		v, err := pdk.ParseJSON([]byte(s))
		if err != nil {
			return ev, "", errors.Join(ErrBadInvitation, err)
		}
		arg = v
	}
	m, ok := arg.(map[string]any)
	if !ok {
		return ev, "", ErrBadInvitation
	}
	str := func(names ...string) string {
		for _, n := range names {
			if s, ok := m[n].(string); ok {
				return s
			}
		}
		return ""
	}
	list := func(names ...string) []string {
		for _, n := range names {
			switch x := m[n].(type) {
			case []any:
				out := make([]string, 0, len(x))
				for _, e := range x {
					if s, ok := e.(string); ok {
						out = append(out, s)
					}
				}
				return out
			case string: // a comma-separated list, for callers limited to scalar arguments
				if x == "" {
					return nil
				}
				return strings.Split(x, ",")
			}
		}
		return nil
	}
	ev = pdk.JoinSessionEvent{
		SessionURL:          str("sessionUrl", "session_url"),
		SessionCreatorName:  str("sessionCreatorName", "session_creator_name"),
		SessionUUID:         str("sessionUuid", "session_uuid"),
		SessionParticipants: list("sessionParticipants", "session_participants"),
		SessionUsers:        list("sessionUsers", "session_users"),
		SessionDevices:      list("sessionDevices", "session_devices"),
		JoinMsg:             str("joinMsg", "join_msg"),
		SessionParameters:   str("sessionParameters", "session_parameters"),
		ServiceUUID:         str("serviceUuid", "service_uuid"),
	}
	if ev.SessionUUID == "" {
		return ev, "", ErrBadInvitation
	}
	topic := str("replyTo", "reply_to")
	if topic == "" {
		topic = replyTopic
	}
	return ev, topic, nil
}
