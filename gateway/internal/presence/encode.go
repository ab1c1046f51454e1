package presence

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// Change is a presence change of an entity, as the per-kind OpenTera event types express it.
type Change uint8

// The presence changes [EntityEvent] builds.
const (
	Connected Change = iota
	Disconnected
	JoinedSession
	LeftSession
)

var (
	userTypes        = [...]opentera.UserEvent_EventType{opentera.UserEvent_USER_CONNECTED, opentera.UserEvent_USER_DISCONNECTED, opentera.UserEvent_USER_JOINED_SESSION, opentera.UserEvent_USER_LEFT_SESSION}
	participantTypes = [...]opentera.ParticipantEvent_EventType{opentera.ParticipantEvent_PARTICIPANT_CONNECTED, opentera.ParticipantEvent_PARTICIPANT_DISCONNECTED, opentera.ParticipantEvent_PARTICIPANT_JOINED_SESSION, opentera.ParticipantEvent_PARTICIPANT_LEFT_SESSION}
	deviceTypes      = [...]opentera.DeviceEvent_EventType{opentera.DeviceEvent_DEVICE_CONNECTED, opentera.DeviceEvent_DEVICE_DISCONNECTED, opentera.DeviceEvent_DEVICE_JOINED_SESSION, opentera.DeviceEvent_DEVICE_LEFT_SESSION}
)

// EntityEvent builds the UserEvent, ParticipantEvent or DeviceEvent of a presence change, with
// the names OpenTera fills in from its database (user full name; participant, project and site
// names; device name). It returns nil for a service or an invalid kind.
func EntityEvent(snap *directory.Snapshot, kind directory.Kind, uuid string, change Change) proto.Message {
	switch kind {
	case directory.KindUser:
		ev := &opentera.UserEvent{UserUuid: uuid, Type: userTypes[change]}
		if u, ok := snap.User(uuid); ok {
			ev.UserFullname = u.Fullname
		}
		return ev
	case directory.KindParticipant:
		ev := &opentera.ParticipantEvent{ParticipantUuid: uuid, Type: participantTypes[change]}
		ev.ParticipantName, ev.ParticipantProjectName, ev.ParticipantSiteName = ParticipantNames(snap, uuid)
		return ev
	case directory.KindDevice:
		ev := &opentera.DeviceEvent{DeviceUuid: uuid, Type: deviceTypes[change]}
		if d, ok := snap.Device(uuid); ok {
			ev.DeviceName = d.Name
		}
		return ev
	}
	return nil
}

// ParticipantNames returns a participant's name, project name and site name from the directory.
func ParticipantNames(snap *directory.Snapshot, uuid string) (name, project, site string) {
	p, ok := snap.Participant(uuid)
	if !ok {
		return "", "", ""
	}
	name = p.Name
	if pr, ok := snap.Project(p.Project); ok {
		project = pr.Name
		if s, ok := snap.Site(pr.Site); ok {
			site = s.Name
		}
	}
	return name, project, site
}

// publish sends one event in its own TeraEvent on the module's event topic.
func (r *Registry) publish(ctx context.Context, m proto.Message) {
	r.publishAny(ctx, m, nil)
}

// publishAny publishes m, reusing a (m as received) when it is packed with the standard type URL.
func (r *Registry) publishAny(ctx context.Context, m proto.Message, a *anypb.Any) {
	if a == nil || a.GetTypeUrl() != opentera.TypeURL(m) {
		var err error
		if a, err = opentera.NewAny(m); err != nil {
			r.log.Error("encoding presence event", "error", err)
			return
		}
	}
	payload, err := encodeAny(topic.UserManagerEvents, a)
	if err != nil {
		r.log.Error("encoding presence event", "error", err)
		return
	}
	if err := r.cfg.Bus.Publish(ctx, topic.UserManagerEvents, payload); err != nil {
		if errors.Is(err, bus.ErrClosed) {
			r.log.Debug("presence event not published: bus closed (shutting down)")
			return
		}
		r.log.Error("publishing presence event", "error", err)
		return
	}
	if r.cfg.OnPublish != nil {
		r.cfg.OnPublish()
	}
}

// EncodeEvent returns the binary TeraEvent (version 1, current time, topic) holding m.
func EncodeEvent(topic string, m proto.Message) ([]byte, error) {
	a, err := opentera.NewAny(m)
	if err != nil {
		return nil, err
	}
	return encodeAny(topic, a)
}

func encodeAny(topic string, a *anypb.Any) ([]byte, error) {
	te := opentera.TeraEvent{
		Header: &opentera.TeraEvent_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Topic: topic},
		Events: []*anypb.Any{a},
	}
	return proto.Marshal(&te)
}

// EncodeModuleMessage returns the binary TeraModuleMessage from source to dest holding m.
func EncodeModuleMessage(source, dest string, m proto.Message) ([]byte, error) {
	a, err := opentera.NewAny(m)
	if err != nil {
		return nil, err
	}
	mm := &opentera.TeraModuleMessage{
		Head: &opentera.TeraModuleMessage_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Source: source, Dest: dest},
		Data: []*anypb.Any{a},
	}
	return proto.Marshal(mm)
}
