package filter

import (
	"context"
	"slices"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

// Native is OpenTera's event filter table (docs/opentera.md) in Go, with access derived
// from the directory and session membership from [Sessions]:
//
//	event                  user                     participant              device
//	UserEvent              user visible             never                    never
//	ParticipantEvent       participant visible      itself                   linked participant
//	DeviceEvent            device visible           linked device            itself
//	JoinSessionEvent       in session_users         in session_participants  in session_devices
//	LeaveSessionEvent      in the session           in the session           in the session
//	JoinSessionReplyEvent  in session, not self     in session, not self     in session, not self
//	StopSessionEvent       always                   always                   always
//	ArchiveEvent           owner is self            owner is self            owner is self
//	DatabaseEvent, others  never                    never                    never
//
// "Visible" is the directory's access rule ([directory.Access.Sees]). Unlike OpenTera, every event
// of a multi-event TeraEvent is filtered on its own (the router splits them), so none escapes.
type Native struct {
	// Sessions answers session membership; nil means nobody is in any session.
	Sessions Sessions
}

// Decide implements [Filter].
func (f *Native) Decide(_ context.Context, ev *Event, kind directory.Kind, rs []Recipient, out []Decision) error {
	if len(out) < len(rs) {
		return ErrLengthMismatch
	}
	out = out[:len(rs)]
	set := func(ok func(r *Recipient) bool) {
		for i := range rs {
			if ok(&rs[i]) {
				out[i] = Decision{Verdict: Keep}
			} else {
				out[i] = Decision{}
			}
		}
	}
	switch m := ev.Msg.(type) {
	case *opentera.UserEvent:
		f.subject(rs, out, directory.KindUser, m.GetUserUuid())
	case *opentera.ParticipantEvent:
		f.subject(rs, out, directory.KindParticipant, m.GetParticipantUuid())
	case *opentera.DeviceEvent:
		f.subject(rs, out, directory.KindDevice, m.GetDeviceUuid())
	case *opentera.JoinSessionEvent:
		var list []string
		switch kind {
		case directory.KindUser:
			list = m.GetSessionUsers()
		case directory.KindParticipant:
			list = m.GetSessionParticipants()
		case directory.KindDevice:
			list = m.GetSessionDevices()
		}
		set(func(r *Recipient) bool { return slices.Contains(list, r.UUID) })
	case *opentera.LeaveSessionEvent:
		session := m.GetSessionUuid()
		set(func(r *Recipient) bool { return f.inSession(r, session) })
	case *opentera.JoinSessionReplyEvent:
		session := m.GetSessionUuid()
		var from string
		switch kind {
		case directory.KindUser:
			from = m.GetUserUuid()
		case directory.KindParticipant:
			from = m.GetParticipantUuid()
		case directory.KindDevice:
			from = m.GetDeviceUuid()
		}
		set(func(r *Recipient) bool { return r.UUID != from && f.inSession(r, session) })
	case *opentera.StopSessionEvent:
		set(func(*Recipient) bool { return true })
	case *opentera.ArchiveEvent:
		owner := m.GetOwnerUuid()
		set(func(r *Recipient) bool { return r.UUID == owner })
	default: // DatabaseEvent (disabled in OpenTera), unknown or undecodable types
		clear(out)
	}
	return nil
}

// subject delivers to the recipients that may see the entity the event is about. The subject is
// resolved once per batch, per snapshot.
func (f *Native) subject(rs []Recipient, out []Decision, k directory.Kind, uuid string) {
	var sub directory.Subject
	var snap *directory.Snapshot
	for i := range rs {
		a := rs[i].Access
		if s := a.Snapshot(); s != snap && s != nil {
			snap = s
			sub, _ = s.Subject(k, uuid)
		}
		if a.SeesSubject(sub) {
			out[i] = Decision{Verdict: Keep}
		} else {
			out[i] = Decision{}
		}
	}
}

// Candidates implements [Narrower]: the viewers of the subject for User/Participant/Device
// events, the listed uuids for JoinSessionEvent and ArchiveEvent, nobody for events no one
// receives, and every connection for session events decided by membership (the presence registry
// answers per uuid) and for StopSessionEvent.
func (f *Native) Candidates(_ context.Context, ev *Event, kind directory.Kind, c *Candidates) error {
	switch m := ev.Msg.(type) {
	case *opentera.UserEvent:
		c.Visible = append(c.Visible, Entity{directory.KindUser, m.GetUserUuid()})
	case *opentera.ParticipantEvent:
		c.Visible = append(c.Visible, Entity{directory.KindParticipant, m.GetParticipantUuid()})
	case *opentera.DeviceEvent:
		c.Visible = append(c.Visible, Entity{directory.KindDevice, m.GetDeviceUuid()})
	case *opentera.JoinSessionEvent:
		switch kind {
		case directory.KindUser:
			c.UUIDs = append(c.UUIDs, m.GetSessionUsers()...)
		case directory.KindParticipant:
			c.UUIDs = append(c.UUIDs, m.GetSessionParticipants()...)
		case directory.KindDevice:
			c.UUIDs = append(c.UUIDs, m.GetSessionDevices()...)
		}
	case *opentera.LeaveSessionEvent:
		c.All = m.GetSessionUuid() != "" && f.Sessions != nil
	case *opentera.JoinSessionReplyEvent:
		c.All = m.GetSessionUuid() != "" && f.Sessions != nil
	case *opentera.StopSessionEvent:
		c.All = true
	case *opentera.ArchiveEvent:
		c.UUIDs = append(c.UUIDs, m.GetOwnerUuid())
	}
	return nil
}

// DecideCandidates implements [Narrower]: it is Decide (every verdict depends on its recipient
// only).
func (f *Native) DecideCandidates(ctx context.Context, ev *Event, kind directory.Kind, _ *Candidates, rs []Recipient, out []Decision) error {
	return f.Decide(ctx, ev, kind, rs, out)
}

func (f *Native) inSession(r *Recipient, session string) bool {
	return session != "" && f.Sessions != nil && f.Sessions.InSession(r.Kind, r.UUID, session)
}

var _ Narrower = (*Native)(nil)
