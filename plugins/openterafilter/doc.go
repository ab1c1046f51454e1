// Package openterafilter is OpenTera's event filter table (docs/opentera.md) written as
// sdk/pdk delivery rules: the logic shared by the first-party plugins filter.user,
// filter.participant and filter.device. The host evaluates the rules natively for every
// recipient, so the plugins run once per (event, recipient kind) and never per recipient.
//
//	event                  user                     participant              device
//	UserEvent              Visible(user)            none                     none
//	ParticipantEvent       Visible(participant)     Visible = itself         Visible = linked
//	DeviceEvent            Visible(device)          Visible = linked         Visible = itself
//	JoinSessionEvent       UUIDs(session_users)     UUIDs(participants)      UUIDs(devices)
//	LeaveSessionEvent      InSession(session)       InSession(session)       InSession(session)
//	JoinSessionReplyEvent  InSession.Except(self)   InSession.Except(self)   InSession.Except(self)
//	StopSessionEvent       all                      all                      all
//	ArchiveEvent           UUIDs(owner)             UUIDs(owner)             UUIDs(owner)
//	DatabaseEvent, others  none                     none                     none
//
// Every rule is marked cacheable (see [Rule]), so most events never enter the guest. "Visible" is
// the directory's access rule; for participant recipients it reduces to the participant itself
// and its linked devices, for device recipients to the device itself and its linked
// participants, which is what OpenTera's table says. The result equals the gateway's native
// filter (gateway/internal/filter.Native) for every event and recipient; a test under gateway/
// checks it on the demo directory.
//
// It is not a plugin itself (no main): the plugins import it. It holds no state and is safe for
// concurrent use.
package openterafilter
