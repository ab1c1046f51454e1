package directory

// Kind is the kind of an entity in the directory. The zero value is invalid.
type Kind uint8

// The entity kinds. Their numeric values are stable and start at 1, so the zero [Kind] is invalid.
const (
	// KindUser is a user (a clinician or an administrator), who logs in with a username and password.
	KindUser Kind = iota + 1
	// KindParticipant is a participant (a patient), who logs in with a username and password or a token.
	KindParticipant
	// KindDevice is a device (a robot, a sensor, a station), which logs in with a token.
	KindDevice
	// KindService is a back-end service, which authenticates with a static token.
	KindService
)

var kindNames = [...]string{
	KindUser:        "user",
	KindParticipant: "participant",
	KindDevice:      "device",
	KindService:     "service",
}

// String returns "user", "participant", "device" or "service", and "invalid" for any other value.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "invalid"
}

// Valid reports whether k is one of the four defined kinds.
func (k Kind) Valid() bool { return k >= KindUser && k <= KindService }

// ParseKind returns the Kind named s ("user", "participant", "device" or "service", as in the
// websocket paths /wss/<kind>). It reports false for any other string, including "invalid".
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "user":
		return KindUser, true
	case "participant":
		return KindParticipant, true
	case "device":
		return KindDevice, true
	case "service":
		return KindService, true
	}
	return 0, false
}
