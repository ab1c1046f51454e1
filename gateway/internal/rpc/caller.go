package rpc

import (
	"context"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Caller is the authenticated entity behind an HTTP call.
type Caller struct {
	// Kind and UUID identify the caller.
	Kind directory.Kind
	UUID string
	// Admin is true for superadmin users and admin services: they see everything.
	Admin bool
	// Access is the caller's access handle in the directory snapshot of the call.
	Access directory.Access
}

// Sees reports whether the caller may see the entity of kind k with the given uuid: admins see
// everyone, others follow the directory's access rules.
func (c Caller) Sees(k directory.Kind, uuid string) bool {
	return c.Admin || c.Access.Sees(k, uuid)
}

type callerKey struct{}

// WithCaller returns a context carrying the caller of a call.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller of a call. It reports false for calls without one (the bus and
// in-process Go calls, which are trusted and see everything).
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Visibility returns the filter a handler applies to the uuids it returns: nil when the call may
// see everything (no caller, or an admin), else the caller's [Caller.Sees].
func Visibility(ctx context.Context) func(k directory.Kind, uuid string) bool {
	c, ok := CallerFrom(ctx)
	if !ok || c.Admin {
		return nil
	}
	return c.Sees
}
