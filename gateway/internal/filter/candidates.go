package filter

import (
	"context"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Entity names an entity by kind and uuid.
type Entity struct {
	// Kind is the entity's kind.
	Kind directory.Kind
	// UUID is the entity's uuid.
	UUID string
}

// Candidates describes the recipients of one kind that a [Narrower] may deliver an event to:
// every connection of the kind when All is set, otherwise the union of the admins (when Admins is
// set), the entities listed in UUIDs, and the viewers that may see one of Visible (the
// directory's access rule, as [directory.Access.SeesSubject]: resolved in each viewer's own
// snapshot). The zero value is nobody.
//
// The router reuses one Candidates per worker: a filter appends to the slices and must not keep
// them (nor make them alias its own slices) after the call.
type Candidates struct {
	// All: every connection of the kind is a candidate (the filter cannot narrow this event).
	All bool
	// Admins: every admin ([directory.Access.Admin]) is a candidate.
	Admins bool
	// UUIDs lists candidate entities.
	UUIDs []string
	// Visible lists subjects: every viewer that may see one of them is a candidate.
	Visible []Entity
	// Plan is the filter's own state, set by [Narrower.Candidates] and read back by
	// [Narrower.DecideCandidates] (for example the rule the candidates came from, so that a
	// reload between the two calls cannot decide with another rule). Nil by default.
	Plan any
}

// Reset empties c for the next event, keeping the slices' capacity.
func (c *Candidates) Reset() {
	clear(c.UUIDs)
	clear(c.Visible)
	*c = Candidates{UUIDs: c.UUIDs[:0], Visible: c.Visible[:0]}
}

// Narrower is a [Filter] that can describe, before seeing any recipient, which recipients it may
// deliver an event to, so that the router gathers only those instead of every connection of the
// kind.
//
// For every event and kind, Candidates must describe a superset of the recipients to which
// Decide, given every connection of the kind, would deliver or rewrite; and DecideCandidates,
// given the connections gathered from c, must decide each of them as Decide would. So a
// Narrower's decision for a recipient may not depend on the other recipients of the batch.
//
// An error from Candidates fails the batch closed, as one from Decide does. The router calls
// DecideCandidates after a successful Candidates only when it gathered at least one recipient.
type Narrower interface {
	Filter
	// Candidates describes in c (empty, as after [Candidates.Reset]) the candidates of kind for ev.
	Candidates(ctx context.Context, ev *Event, kind directory.Kind, c *Candidates) error
	// DecideCandidates decides the recipients gathered from c, as Decide does.
	DecideCandidates(ctx context.Context, ev *Event, kind directory.Kind, c *Candidates, rs []Recipient, out []Decision) error
}
