package pdk

import "errors"

// ErrForbidden is what an RPC method returns, wrapped with a reason, when its caller may not do
// what it asked (e.g. fmt.Errorf("%w: user %q is outside your access", pdk.ErrForbidden, uuid)).
// The gateway answers it as forbidden (HTTP 403) rather than as an error.
var ErrForbidden = errors.New("forbidden")

// Caller is who an RPC call runs for, as the gateway authenticated it.
type Caller struct {
	// Kind and UUID identify the caller; both are empty for a trusted caller (a service on the
	// bus, or the gateway itself).
	Kind Kind
	UUID string
	// Admin is true for a superadmin user or an admin service, which may name any entity.
	Admin bool
}

// Trusted reports whether the caller may name any entity: a bus caller or an admin.
func (c Caller) Trusted() bool { return c.UUID == "" || c.Admin }

// caller is the caller of the RPC call being served (set by the tg_rpc dispatcher).
var caller Caller

// CurrentCaller returns the caller of the RPC method being served. Outside an RPC call it is the
// zero (trusted) Caller.
//
// An RPC method that takes entity uuids as arguments acts for its caller and must not lend it
// more reach than it has. The gateway enforces that whatever the plugin does: during a call for
// a caller that is not trusted, [PresenceOnline], [PresenceBusy] and [PresenceInSession] refuse
// (ErrHostDenied) an entity the caller may not see, the Directory queries answer as if it did not
// exist, and [Publish] refuses to address such an entity or to publish an event that names one.
// A well-behaved method checks its arguments first with [CallerReaches] and answers a clear error
// before it does anything, so that a call is refused whole rather than half done (rpc.sessions
// is the example).
func CurrentCaller() Caller { return caller }

// CallerReaches reports whether the current caller may name the entity of kind k and uuid: true
// for a trusted caller, otherwise whether the directory lets the caller see it.
func CallerReaches(k Kind, uuid string) (bool, error) {
	c := caller
	if c.Trusted() {
		return true, nil
	}
	if uuid == "" {
		return false, nil
	}
	return DirectoryCanSee(Subject{Kind: c.Kind, UUID: c.UUID}, Subject{Kind: k, UUID: uuid})
}
