package pdk

// Result is a filter's answer for one event and one recipient kind: a delivery rule that the host
// evaluates natively for every candidate recipient, or a request to be called again with the
// recipients ([NeedRecipients]). Build it with [Deliver], [All], [None] or [NeedRecipients].
//
// A recipient receives the event when it matches at least one [Clause]; a Result without
// clauses delivers to nobody.
type Result struct {
	clauses     []Clause
	need        bool
	cacheable   bool
	rewriteType string
	rewrite     []byte
}

// Deliver returns a rule delivering the event to every recipient that matches at least one of
// the clauses. Clauses that can match nobody (such as [UUIDs] with no uuid) are dropped.
//
//	return pdk.Deliver(pdk.Visible(pdk.KindDevice, dev.DeviceUUID).AdminsOnly())
func Deliver(clauses ...Clause) Result { return Result{clauses: clauses} }

// All returns a rule delivering the event to every recipient.
func All() Result { return Deliver(Everyone()) }

// None returns a rule delivering the event to nobody.
func None() Result { return Result{} }

// NeedRecipients asks the host to call the plugin again with the candidate recipients; the
// [HandleRecipients] handler then decides for each. It costs a second call and per-recipient work
// in the guest: prefer a rule when one fits.
func NeedRecipients() Result { return Result{need: true} }

// Cacheable lets the host reuse the rule, without calling the plugin, for later events of the same
// recipient kind, topic, type and subject: for UserEvent, ParticipantEvent and DeviceEvent the
// subject is the uuid of the entity the event is about (field 1), for other events the event's
// exact bytes. Mark a rule cacheable only when it is a pure function of those: not when it
// depends on another field of a User/Participant/DeviceEvent (its type, for example), on a host
// query made during the call, or on plugin state. Cached rules are dropped when the plugin or the
// directory reloads; clauses (Visible, InSession) are still evaluated at each delivery.
func (r Result) Cacheable() Result {
	r.cacheable = true
	return r
}

// Rewrite makes the matched recipients receive another event instead: typeName is its full
// protobuf name and value its encoding (kept by reference until the handler returns).
func (r Result) Rewrite(typeName string, value []byte) Result {
	r.rewriteType, r.rewrite = typeName, value
	return r
}

// Clause is one condition of a rule: every part that is set must hold. Build one with
// [Everyone], [Visible], [UUIDs] or [InSession] and narrow it with its methods; the zero Clause
// is [Everyone].
type Clause struct {
	visibleKind Kind
	visibleUUID string
	hasVisible  bool
	uuids       []string
	hasUUIDs    bool
	session     string
	hasSession  bool
	except      []string
	adminsOnly  bool
}

// Everyone returns a clause matching every recipient.
func Everyone() Clause { return Clause{} }

// Admins returns a clause matching superadmin users only.
func Admins() Clause { return Clause{adminsOnly: true} }

// Visible returns a clause matching the recipients allowed to see the entity (kind, uuid) by the
// directory's access rules: superadmins see everything, users see entities of their projects,
// participants see themselves and their linked devices, devices themselves and their linked
// participants. An unknown entity (or an empty uuid) is seen by nobody.
func Visible(kind Kind, uuid string) Clause {
	return Clause{visibleKind: kind, visibleUUID: uuid, hasVisible: true}
}

// UUIDs returns a clause matching the recipients whose uuid is in the list. An empty list matches
// nobody.
func UUIDs(uuids ...string) Clause { return Clause{uuids: uuids, hasUUIDs: true} }

// InSession returns a clause matching the recipients taking part in the session (invited to it
// and not stopped, by the presence registry). An empty session matches nobody.
func InSession(session string) Clause { return Clause{session: session, hasSession: true} }

// Visible narrows the clause to the recipients allowed to see the entity (see [Visible]).
func (c Clause) Visible(kind Kind, uuid string) Clause {
	c.visibleKind, c.visibleUUID, c.hasVisible = kind, uuid, true
	return c
}

// UUIDs narrows the clause to the recipients in the list (see [UUIDs]).
func (c Clause) UUIDs(uuids ...string) Clause {
	c.uuids, c.hasUUIDs = uuids, true
	return c
}

// InSession narrows the clause to the recipients in the session (see [InSession]).
func (c Clause) InSession(session string) Clause {
	c.session, c.hasSession = session, true
	return c
}

// Except narrows the clause to the recipients whose uuid is not in the list.
func (c Clause) Except(uuids ...string) Clause {
	c.except = append(c.except[:len(c.except):len(c.except)], uuids...)
	return c
}

// AdminsOnly narrows the clause to superadmin users.
func (c Clause) AdminsOnly() Clause {
	c.adminsOnly = true
	return c
}

// never reports whether the clause can match nobody, so it is left out of the encoded rule (on
// the wire an empty list or session means "not set", which would match everyone).
func (c *Clause) never() bool {
	return (c.hasUUIDs && len(c.uuids) == 0) ||
		(c.hasSession && c.session == "") ||
		(c.hasVisible && (c.visibleUUID == "" || c.visibleKind == ""))
}

// Recipient is one candidate connection, given to a [HandleRecipients] handler.
type Recipient struct {
	// UUID is the connected entity's uuid.
	UUID string
	// Admin reports a superadmin user.
	Admin bool
}

// Verdict is a [HandleRecipients] handler's answer for one recipient.
type Verdict uint8

const (
	// Drop: the recipient does not receive the event.
	Drop Verdict = iota
	// Keep: the recipient receives the event as it is.
	Keep
	// Rewritten: the recipient receives the event set with [Event.Rewrite] instead.
	Rewritten
)

// appendRule appends the teragate.plugin.v1.Rule of r (without its tag).
func (r *Result) appendRule(b []byte) []byte {
	for i := range r.clauses {
		c := &r.clauses[i]
		if c.never() {
			continue
		}
		b = appendMessage(b, 1, c.appendClause)
	}
	if r.rewriteType != "" {
		b = appendString(b, 2, r.rewriteType)
		b = appendBytes(b, 3, r.rewrite)
	}
	return appendBool(b, 4, r.cacheable)
}

// appendClause appends the teragate.plugin.v1.Clause of c (without its tag).
func (c *Clause) appendClause(b []byte) []byte {
	if c.hasVisible {
		b = appendMessage(b, 1, func(b []byte) []byte {
			b = appendString(b, 1, string(c.visibleKind))
			return appendString(b, 2, c.visibleUUID)
		})
	}
	b = appendStrings(b, 2, c.uuids)
	b = appendString(b, 3, c.session)
	b = appendStrings(b, 4, c.except)
	return appendBool(b, 5, c.adminsOnly)
}
