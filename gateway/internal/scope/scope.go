// Package scope decides what an untrusted caller may name: the entities it may address events to
// and pass as RPC arguments, and the events it may publish.
//
// Two kinds of code act on behalf of someone else and must not lend them more reach than they
// have: a service publishing events over HTTP (POST /api/events), and an RPC plugin serving a call
// from a user, participant, device or non-admin service. Both take a [Scope] built from the
// caller's directory access. A trusted scope (the bus, the gateway itself, superadmin users, admin
// services) may name anything; any other scope may name only the entities its access sees
// (package directory's rules: a user its projects' entities, a participant itself and its linked
// devices, a device itself and its linked participants, a service itself and its listed projects).
//
// The checks read the events themselves: every uuid an OpenTera event names (the subject of a
// presence event, the invitees of a JoinSessionEvent, the owner of an ArchiveEvent, …) must be
// reachable, so a caller can neither invite a stranger nor forge an event about one.
package scope

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// ErrDenied is wrapped by every refusal: the caller named an entity, a topic or an event type
// beyond its scope.
var ErrDenied = errors.New("not allowed")

// Entity is one entity an event names. Kind 0 means "whatever kind the uuid has" (an
// ArchiveEvent's owner).
type Entity struct {
	Kind directory.Kind
	UUID string
}

// Scope is what one caller may name. The zero Scope is trusted.
type Scope struct {
	limited bool
	access  directory.Access
}

// Trusted is the scope of callers that may name anything: services on the bus and the gateway.
func Trusted() Scope { return Scope{} }

// Of returns the scope of the caller with access a: trusted for a superadmin user or an admin
// service, limited to what a sees otherwise. The zero Access (an unknown caller) reaches nothing.
func Of(a directory.Access) Scope {
	if a.Admin() {
		return Scope{}
	}
	return Scope{limited: true, access: a}
}

// Trusted reports whether the scope may name anything.
func (s Scope) Trusted() bool { return !s.limited }

// Reaches reports whether the scope may name the entity of kind k (0: any kind) and uuid.
func (s Scope) Reaches(k directory.Kind, uuid string) bool {
	if !s.limited {
		return true
	}
	if uuid == "" || !s.access.Valid() {
		return false
	}
	if k != 0 {
		return s.access.Sees(k, uuid)
	}
	for _, k := range [...]directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice, directory.KindService} {
		if s.access.Sees(k, uuid) {
			return true
		}
	}
	return false
}

// Check returns an error wrapping [ErrDenied] that names the first entity of es the scope may
// not reach, or nil.
func (s Scope) Check(es ...Entity) error {
	if !s.limited {
		return nil
	}
	for _, e := range es {
		if !s.Reaches(e.Kind, e.UUID) {
			what := "entity"
			if e.Kind != 0 {
				what = e.Kind.String()
			}
			return fmt.Errorf("%w: %s %q is outside the caller's access", ErrDenied, what, e.UUID)
		}
	}
	return nil
}

// CheckEvents decodes each event and checks that the scope reaches every entity it names. A
// limited scope may not publish events whose type the gateway cannot decode (it could not tell
// whom they name).
func (s Scope) CheckEvents(events []*anypb.Any) error {
	if !s.limited {
		return nil
	}
	for _, a := range events {
		m, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%w: event type %q cannot be checked: %v", ErrDenied, a.GetTypeUrl(), err)
		}
		if err := s.Check(Named(m)...); err != nil {
			return fmt.Errorf("%s: %w", m.ProtoReflect().Descriptor().Name(), err)
		}
	}
	return nil
}

// Named returns the entities an OpenTera event names (its subject, invitees, leavers, owner).
// Events that name no entity (StopSessionEvent, unknown types) return nil.
func Named(m proto.Message) []Entity {
	var out []Entity
	add := func(k directory.Kind, uuids ...string) {
		for _, u := range uuids {
			if u != "" {
				out = append(out, Entity{k, u})
			}
		}
	}
	switch e := m.(type) {
	case *opentera.UserEvent:
		add(directory.KindUser, e.GetUserUuid())
	case *opentera.ParticipantEvent:
		add(directory.KindParticipant, e.GetParticipantUuid())
	case *opentera.DeviceEvent:
		add(directory.KindDevice, e.GetDeviceUuid())
	case *opentera.JoinSessionEvent:
		add(directory.KindUser, e.GetSessionUsers()...)
		add(directory.KindParticipant, e.GetSessionParticipants()...)
		add(directory.KindDevice, e.GetSessionDevices()...)
	case *opentera.JoinSessionReplyEvent:
		add(directory.KindUser, e.GetUserUuid())
		add(directory.KindParticipant, e.GetParticipantUuid())
		add(directory.KindDevice, e.GetDeviceUuid())
	case *opentera.LeaveSessionEvent:
		add(directory.KindUser, e.GetLeavingUsers()...)
		add(directory.KindParticipant, e.GetLeavingParticipants()...)
		add(directory.KindDevice, e.GetLeavingDevices()...)
	case *opentera.ArchiveEvent:
		add(0, e.GetOwnerUuid())
	}
	return out
}

// DirectTarget splits a direct topic websocket.<kind>.<uuid>.events into the entity it
// addresses. Unlike [topic.ParseDirect] it refuses a uuid holding a dot: a service's publication
// names one entity exactly.
func DirectTarget(channel string) (Entity, bool) {
	k, uuid, ok := topic.ParseDirect(channel)
	if !ok || strings.Contains(uuid, ".") {
		return Entity{}, false
	}
	return Entity{k, uuid}, true
}

// The OpenTera event types a non-admin service may publish. The presence announcements
// (UserEvent, ParticipantEvent, DeviceEvent), database notifications and server commands are the
// gateway's and OpenTera's own; only admin services may publish them.
var serviceTypes = map[string]bool{
	"opentera.protobuf.JoinSessionEvent":      true,
	"opentera.protobuf.JoinSessionReplyEvent": true,
	"opentera.protobuf.LeaveSessionEvent":     true,
	"opentera.protobuf.StopSessionEvent":      true,
	"opentera.protobuf.ArchiveEvent":          true,
}

// Session-membership events reach a session's members, whom the publisher does not name: a
// limited service may send them only to one entity it reaches (a direct topic).
var directOnly = map[string]bool{
	"opentera.protobuf.JoinSessionReplyEvent": true,
	"opentera.protobuf.LeaveSessionEvent":     true,
	"opentera.protobuf.StopSessionEvent":      true,
}

// CheckServicePublish decides whether the service named name, with this scope, may publish
// events on channel. A trusted scope (an admin service) may publish anything. A limited one may
// publish
//
//   - on its own topic service.<name>.events: JoinSessionEvent and ArchiveEvent, whose audience
//     is the entities they name;
//   - on websocket.<kind>.<uuid>.events of an entity it reaches: any of JoinSessionEvent,
//     JoinSessionReplyEvent, LeaveSessionEvent, StopSessionEvent and ArchiveEvent;
//
// and every entity an event names must be reachable. Anything else (module.* topics, other
// services' topics, presence announcements, server commands, undecodable types) wraps
// [ErrDenied] with the reason.
func (s Scope) CheckServicePublish(name, channel string, events []*anypb.Any) error {
	if !s.limited {
		return nil
	}
	target, direct := DirectTarget(channel)
	switch {
	case direct:
		if !s.Reaches(target.Kind, target.UUID) {
			return fmt.Errorf("%w: topic %q addresses %s %q, outside this service's access", ErrDenied, channel, target.Kind, target.UUID)
		}
	case name != "" && channel == topic.Service(name):
	default:
		return fmt.Errorf("%w: a service without admin may publish only on %q and on websocket.<kind>.<uuid>.events of entities it reaches, not on %q",
			ErrDenied, topic.Service(name), channel)
	}
	for i, a := range events {
		m, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%w: events[%d] of type %q cannot be decoded: %v", ErrDenied, i, a.GetTypeUrl(), err)
		}
		full := string(m.ProtoReflect().Descriptor().FullName())
		if !serviceTypes[full] {
			return fmt.Errorf("%w: events[%d] is a %s; a service without admin may publish only JoinSessionEvent, JoinSessionReplyEvent, LeaveSessionEvent, StopSessionEvent and ArchiveEvent",
				ErrDenied, i, full)
		}
		if directOnly[full] && !direct {
			return fmt.Errorf("%w: events[%d] is a %s, which reaches a session's members; a service without admin may send it only on websocket.<kind>.<uuid>.events",
				ErrDenied, i, full)
		}
		if err := s.Check(Named(m)...); err != nil {
			return fmt.Errorf("events[%d] (%s): %w", i, full, err)
		}
	}
	return nil
}
