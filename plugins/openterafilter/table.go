package openterafilter

import "github.com/teragate/teragate/sdk/pdk"

// Rule returns OpenTera's delivery rule for the event, for recipients of kind ev.Kind. Every rule
// is cacheable: it depends only on the kind, the event type and, for User/Participant/Device
// events, the uuid of the entity they are about (session membership and access are evaluated by
// the host at delivery time, not frozen into the rule).
func Rule(ev *pdk.Event) pdk.Result { return rule(ev).Cacheable() }

func rule(ev *pdk.Event) pdk.Result {
	switch ev.Type {
	case pdk.TypeUserEvent:
		if ev.Kind != pdk.KindUser {
			return pdk.None()
		}
		return pdk.Deliver(pdk.Visible(pdk.KindUser, ev.String(1)))
	case pdk.TypeParticipantEvent:
		return pdk.Deliver(pdk.Visible(pdk.KindParticipant, ev.String(1)))
	case pdk.TypeDeviceEvent:
		return pdk.Deliver(pdk.Visible(pdk.KindDevice, ev.String(1)))
	case pdk.TypeJoinSessionEvent:
		// session_participants 4, session_users 5, session_devices 6
		switch ev.Kind {
		case pdk.KindUser:
			return pdk.Deliver(pdk.UUIDs(ev.Strings(5)...))
		case pdk.KindParticipant:
			return pdk.Deliver(pdk.UUIDs(ev.Strings(4)...))
		case pdk.KindDevice:
			return pdk.Deliver(pdk.UUIDs(ev.Strings(6)...))
		}
		return pdk.None()
	case pdk.TypeLeaveSessionEvent:
		return pdk.Deliver(pdk.InSession(ev.String(1)))
	case pdk.TypeJoinSessionReplyEvent:
		// The reply reaches the session's members except the one who replied (user_uuid 2,
		// participant_uuid 3, device_uuid 4, by recipient kind).
		c := pdk.InSession(ev.String(1))
		var from string
		switch ev.Kind {
		case pdk.KindUser:
			from = ev.String(2)
		case pdk.KindParticipant:
			from = ev.String(3)
		case pdk.KindDevice:
			from = ev.String(4)
		}
		if from != "" {
			c = c.Except(from)
		}
		return pdk.Deliver(c)
	case pdk.TypeStopSessionEvent:
		return pdk.All()
	case pdk.TypeArchiveEvent:
		return pdk.Deliver(pdk.UUIDs(ev.String(2)))
	}
	// DatabaseEvent (disabled in OpenTera) and unknown types reach nobody.
	return pdk.None()
}

// Register registers [Rule] as the plugin's filter for one recipient kind, with the plugin's name.
// The plugins call it from their init function.
func Register(name string, kind pdk.Kind) {
	pdk.Info(name, Version)
	pdk.HandleFilter(Rule, kind)
}

// Version is the version the first-party filter plugins report.
const Version = "1.0.0"
