package pdk

import protowire "github.com/teragate/teragate/sdk/pdk/internal/wire"

// Full protobuf names of the OpenTera events ([Event.Type]).
const (
	TypeUserEvent             = "opentera.protobuf.UserEvent"
	TypeParticipantEvent      = "opentera.protobuf.ParticipantEvent"
	TypeDeviceEvent           = "opentera.protobuf.DeviceEvent"
	TypeJoinSessionEvent      = "opentera.protobuf.JoinSessionEvent"
	TypeJoinSessionReplyEvent = "opentera.protobuf.JoinSessionReplyEvent"
	TypeLeaveSessionEvent     = "opentera.protobuf.LeaveSessionEvent"
	TypeStopSessionEvent      = "opentera.protobuf.StopSessionEvent"
	TypeDatabaseEvent         = "opentera.protobuf.DatabaseEvent"
	TypeArchiveEvent          = "opentera.protobuf.ArchiveEvent"
)

// Values of the OpenTera enums that plugins commonly test (proto/opentera has them all).
const (
	UserConnected    = 1 // UserEvent.USER_CONNECTED
	UserDisconnected = 2 // UserEvent.USER_DISCONNECTED

	ParticipantConnected    = 1 // ParticipantEvent.PARTICIPANT_CONNECTED
	ParticipantDisconnected = 2 // ParticipantEvent.PARTICIPANT_DISCONNECTED

	DeviceConnected     = 1 // DeviceEvent.DEVICE_CONNECTED
	DeviceDisconnected  = 2 // DeviceEvent.DEVICE_DISCONNECTED
	DeviceStatusChanged = 7 // DeviceEvent.DEVICE_STATUS_CHANGED

	ReplyAccepted = 1 // JoinSessionReplyEvent.REPLY_ACCEPTED
	ReplyDenied   = 2 // JoinSessionReplyEvent.REPLY_DENIED
	ReplyBusy     = 3 // JoinSessionReplyEvent.REPLY_BUSY
	ReplyTimeout  = 4 // JoinSessionReplyEvent.REPLY_TIMEOUT
)

// Outgoing is an event a plugin publishes with [Publish]: its full protobuf name and its
// encoding. The typed OpenTera events below and [RawEvent] implement it.
type Outgoing interface {
	// EventType returns the full protobuf name, e.g. "opentera.protobuf.JoinSessionEvent".
	EventType() string
	// AppendProto appends the protobuf encoding to b.
	AppendProto(b []byte) []byte
}

// RawEvent is an already encoded event.
type RawEvent struct {
	// Type is the full protobuf name.
	Type string
	// Value is the protobuf encoding.
	Value []byte
}

// EventType implements [Outgoing].
func (r RawEvent) EventType() string { return r.Type }

// AppendProto implements [Outgoing].
func (r RawEvent) AppendProto(b []byte) []byte { return append(b, r.Value...) }

// UserEvent is opentera.protobuf.UserEvent.
type UserEvent struct {
	UserUUID     string // 1
	Type         int32  // 2, UserEvent.EventType
	UserFullname string // 3
}

// ParticipantEvent is opentera.protobuf.ParticipantEvent.
type ParticipantEvent struct {
	ParticipantUUID        string // 1
	Type                   int32  // 2, ParticipantEvent.EventType
	ParticipantName        string // 3
	ParticipantProjectName string // 4
	ParticipantSiteName    string // 5
}

// DeviceEvent is opentera.protobuf.DeviceEvent.
type DeviceEvent struct {
	DeviceUUID   string // 1
	Type         int32  // 2, DeviceEvent.EventType
	DeviceName   string // 3
	DeviceStatus string // 4, JSON text
}

// JoinSessionEvent is opentera.protobuf.JoinSessionEvent: an invitation to a session.
type JoinSessionEvent struct {
	SessionURL          string   // 1
	SessionCreatorName  string   // 2
	SessionUUID         string   // 3
	SessionParticipants []string // 4
	SessionUsers        []string // 5
	SessionDevices      []string // 6
	JoinMsg             string   // 7
	SessionParameters   string   // 8, JSON text
	ServiceUUID         string   // 9
}

// JoinSessionReplyEvent is opentera.protobuf.JoinSessionReplyEvent: an invitee's answer.
type JoinSessionReplyEvent struct {
	SessionUUID     string // 1
	UserUUID        string // 2
	ParticipantUUID string // 3
	DeviceUUID      string // 4
	JoinReply       int32  // 5, ReplyAccepted … ReplyTimeout
	ReplyMsg        string // 6
}

// LeaveSessionEvent is opentera.protobuf.LeaveSessionEvent.
type LeaveSessionEvent struct {
	SessionUUID         string   // 1
	ServiceUUID         string   // 2
	LeavingParticipants []string // 3
	LeavingUsers        []string // 4
	LeavingDevices      []string // 5
}

// StopSessionEvent is opentera.protobuf.StopSessionEvent.
type StopSessionEvent struct {
	SessionUUID string // 1
	ServiceUUID string // 2
}

// ArchiveEvent is opentera.protobuf.ArchiveEvent.
type ArchiveEvent struct {
	ArchiveUUID string // 1
	OwnerUUID   string // 2
	Status      int32  // 3
	ArchiveURL  string // 4
}

// UserEvent decodes the event as a UserEvent; ok is false for another type.
func (e *Event) UserEvent() (m UserEvent, ok bool) {
	if e.Type != TypeUserEvent {
		return m, false
	}
	walk(e.raw, func(f *field) {
		switch f.num {
		case 1:
			m.UserUUID = string(f.b)
		case 2:
			m.Type = int32(f.v)
		case 3:
			m.UserFullname = string(f.b)
		}
	})
	return m, true
}

// ParticipantEvent decodes the event as a ParticipantEvent; ok is false for another type.
func (e *Event) ParticipantEvent() (m ParticipantEvent, ok bool) {
	if e.Type != TypeParticipantEvent {
		return m, false
	}
	walk(e.raw, func(f *field) {
		switch f.num {
		case 1:
			m.ParticipantUUID = string(f.b)
		case 2:
			m.Type = int32(f.v)
		case 3:
			m.ParticipantName = string(f.b)
		case 4:
			m.ParticipantProjectName = string(f.b)
		case 5:
			m.ParticipantSiteName = string(f.b)
		}
	})
	return m, true
}

// DeviceEvent decodes the event as a DeviceEvent; ok is false for another type.
func (e *Event) DeviceEvent() (m DeviceEvent, ok bool) {
	if e.Type != TypeDeviceEvent {
		return m, false
	}
	walk(e.raw, func(f *field) {
		switch f.num {
		case 1:
			m.DeviceUUID = string(f.b)
		case 2:
			m.Type = int32(f.v)
		case 3:
			m.DeviceName = string(f.b)
		case 4:
			m.DeviceStatus = string(f.b)
		}
	})
	return m, true
}

// JoinSessionEvent decodes the event as a JoinSessionEvent; ok is false for another type.
func (e *Event) JoinSessionEvent() (m JoinSessionEvent, ok bool) {
	if e.Type != TypeJoinSessionEvent {
		return m, false
	}
	return DecodeJoinSessionEvent(e.raw), true
}

// DecodeJoinSessionEvent decodes a JoinSessionEvent's encoding (malformed input gives the fields
// decoded so far).
func DecodeJoinSessionEvent(b []byte) (m JoinSessionEvent) {
	walk(b, func(f *field) {
		if f.typ != protowire.BytesType {
			return
		}
		s := string(f.b)
		switch f.num {
		case 1:
			m.SessionURL = s
		case 2:
			m.SessionCreatorName = s
		case 3:
			m.SessionUUID = s
		case 4:
			m.SessionParticipants = append(m.SessionParticipants, s)
		case 5:
			m.SessionUsers = append(m.SessionUsers, s)
		case 6:
			m.SessionDevices = append(m.SessionDevices, s)
		case 7:
			m.JoinMsg = s
		case 8:
			m.SessionParameters = s
		case 9:
			m.ServiceUUID = s
		}
	})
	return m
}

// JoinSessionReplyEvent decodes the event as a JoinSessionReplyEvent; ok is false for another
// type.
func (e *Event) JoinSessionReplyEvent() (m JoinSessionReplyEvent, ok bool) {
	if e.Type != TypeJoinSessionReplyEvent {
		return m, false
	}
	walk(e.raw, func(f *field) {
		switch f.num {
		case 1:
			m.SessionUUID = string(f.b)
		case 2:
			m.UserUUID = string(f.b)
		case 3:
			m.ParticipantUUID = string(f.b)
		case 4:
			m.DeviceUUID = string(f.b)
		case 5:
			m.JoinReply = int32(f.v)
		case 6:
			m.ReplyMsg = string(f.b)
		}
	})
	return m, true
}

// LeaveSessionEvent decodes the event as a LeaveSessionEvent; ok is false for another type.
func (e *Event) LeaveSessionEvent() (m LeaveSessionEvent, ok bool) {
	if e.Type != TypeLeaveSessionEvent {
		return m, false
	}
	walk(e.raw, func(f *field) {
		if f.typ != protowire.BytesType {
			return
		}
		s := string(f.b)
		switch f.num {
		case 1:
			m.SessionUUID = s
		case 2:
			m.ServiceUUID = s
		case 3:
			m.LeavingParticipants = append(m.LeavingParticipants, s)
		case 4:
			m.LeavingUsers = append(m.LeavingUsers, s)
		case 5:
			m.LeavingDevices = append(m.LeavingDevices, s)
		}
	})
	return m, true
}

// StopSessionEvent decodes the event as a StopSessionEvent; ok is false for another type.
func (e *Event) StopSessionEvent() (m StopSessionEvent, ok bool) {
	if e.Type != TypeStopSessionEvent {
		return m, false
	}
	m.SessionUUID = e.String(1)
	m.ServiceUUID = e.String(2)
	return m, true
}

// ArchiveEvent decodes the event as an ArchiveEvent; ok is false for another type.
func (e *Event) ArchiveEvent() (m ArchiveEvent, ok bool) {
	if e.Type != TypeArchiveEvent {
		return m, false
	}
	walk(e.raw, func(f *field) {
		switch f.num {
		case 1:
			m.ArchiveUUID = string(f.b)
		case 2:
			m.OwnerUUID = string(f.b)
		case 3:
			m.Status = int32(f.v)
		case 4:
			m.ArchiveURL = string(f.b)
		}
	})
	return m, true
}

// EventType implements [Outgoing].
func (UserEvent) EventType() string { return TypeUserEvent }

// AppendProto implements [Outgoing].
func (m UserEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.UserUUID)
	b = appendVarint(b, 2, uint64(m.Type))
	return appendString(b, 3, m.UserFullname)
}

// EventType implements [Outgoing].
func (ParticipantEvent) EventType() string { return TypeParticipantEvent }

// AppendProto implements [Outgoing].
func (m ParticipantEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.ParticipantUUID)
	b = appendVarint(b, 2, uint64(m.Type))
	b = appendString(b, 3, m.ParticipantName)
	b = appendString(b, 4, m.ParticipantProjectName)
	return appendString(b, 5, m.ParticipantSiteName)
}

// EventType implements [Outgoing].
func (DeviceEvent) EventType() string { return TypeDeviceEvent }

// AppendProto implements [Outgoing].
func (m DeviceEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.DeviceUUID)
	b = appendVarint(b, 2, uint64(m.Type))
	b = appendString(b, 3, m.DeviceName)
	return appendString(b, 4, m.DeviceStatus)
}

// EventType implements [Outgoing].
func (JoinSessionEvent) EventType() string { return TypeJoinSessionEvent }

// AppendProto implements [Outgoing].
func (m JoinSessionEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.SessionURL)
	b = appendString(b, 2, m.SessionCreatorName)
	b = appendString(b, 3, m.SessionUUID)
	b = appendStrings(b, 4, m.SessionParticipants)
	b = appendStrings(b, 5, m.SessionUsers)
	b = appendStrings(b, 6, m.SessionDevices)
	b = appendString(b, 7, m.JoinMsg)
	b = appendString(b, 8, m.SessionParameters)
	return appendString(b, 9, m.ServiceUUID)
}

// EventType implements [Outgoing].
func (JoinSessionReplyEvent) EventType() string { return TypeJoinSessionReplyEvent }

// AppendProto implements [Outgoing].
func (m JoinSessionReplyEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.SessionUUID)
	b = appendString(b, 2, m.UserUUID)
	b = appendString(b, 3, m.ParticipantUUID)
	b = appendString(b, 4, m.DeviceUUID)
	b = appendVarint(b, 5, uint64(m.JoinReply))
	return appendString(b, 6, m.ReplyMsg)
}

// EventType implements [Outgoing].
func (LeaveSessionEvent) EventType() string { return TypeLeaveSessionEvent }

// AppendProto implements [Outgoing].
func (m LeaveSessionEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.SessionUUID)
	b = appendString(b, 2, m.ServiceUUID)
	b = appendStrings(b, 3, m.LeavingParticipants)
	b = appendStrings(b, 4, m.LeavingUsers)
	return appendStrings(b, 5, m.LeavingDevices)
}

// EventType implements [Outgoing].
func (StopSessionEvent) EventType() string { return TypeStopSessionEvent }

// AppendProto implements [Outgoing].
func (m StopSessionEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.SessionUUID)
	return appendString(b, 2, m.ServiceUUID)
}

// EventType implements [Outgoing].
func (ArchiveEvent) EventType() string { return TypeArchiveEvent }

// AppendProto implements [Outgoing].
func (m ArchiveEvent) AppendProto(b []byte) []byte {
	b = appendString(b, 1, m.ArchiveUUID)
	b = appendString(b, 2, m.OwnerUUID)
	b = appendVarint(b, 3, uint64(m.Status))
	return appendString(b, 4, m.ArchiveURL)
}

var (
	_ Outgoing = RawEvent{}
	_ Outgoing = UserEvent{}
	_ Outgoing = ParticipantEvent{}
	_ Outgoing = DeviceEvent{}
	_ Outgoing = JoinSessionEvent{}
	_ Outgoing = JoinSessionReplyEvent{}
	_ Outgoing = LeaveSessionEvent{}
	_ Outgoing = StopSessionEvent{}
	_ Outgoing = ArchiveEvent{}
)
