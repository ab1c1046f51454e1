package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/scope"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	"github.com/teragate/teragate/sdk/abi"
)

type scopeKey struct{}

// scopeState is one scoped call's scope and whether the host refused something during it.
type scopeState struct {
	sc     scope.Scope
	denied atomic.Bool
}

// WithScope returns a context whose plugin calls run for a caller limited to sc. The host
// imports a guest uses during such a call enforce it, whatever the guest does:
//
//   - presence: a question about an entity outside the scope fails with [abi.HostErrDenied];
//   - directory: an entity outside the scope looks unknown (found false, no values);
//   - publish: a direct topic websocket.<kind>.<uuid>.events must address a reachable entity,
//     and every entity the published events name must be reachable, or the publish fails with
//     [abi.HostErrDenied] and nothing is published.
//
// A context without a scope (the bus, the gateway's own filter calls) is trusted. RPC transports
// set the scope of each authenticated caller; see package scope for who reaches whom.
//
// A call that fails after the host refused something for its caller, or whose guest failure
// starts with [abi.ForbiddenPrefix], fails with an error wrapping [ErrForbidden].
func WithScope(ctx context.Context, sc scope.Scope) context.Context {
	if sc.Trusted() {
		return ctx
	}
	return context.WithValue(ctx, scopeKey{}, &scopeState{sc: sc})
}

func scopeOf(ctx context.Context) scope.Scope {
	if st, ok := ctx.Value(scopeKey{}).(*scopeState); ok {
		return st.sc
	}
	return scope.Trusted()
}

// forbidden returns the error of a call that ended after the host refused something for its
// caller (even when the guest then answered as if all were well: its answer may claim what did
// not happen), or whose guest refused with [abi.ForbiddenPrefix]; it wraps ErrForbidden. Other
// errors, and nil, pass through.
func forbidden(ctx context.Context, err error) error {
	if errors.Is(err, ErrForbidden) {
		return err
	}
	if st, _ := ctx.Value(scopeKey{}).(*scopeState); st != nil && st.denied.Load() {
		if err == nil {
			return fmt.Errorf("%w: the plugin asked about or addressed an entity outside the caller's access", ErrForbidden)
		}
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	if err != nil && errors.Is(err, ErrGuest) && strings.Contains(err.Error(), ": "+abi.ForbiddenPrefix) {
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	return err
}

// denied counts and logs one refusal of a scoped host call.
func (r *Registry) denied(ctx context.Context, v *version, what string, err error) {
	if st, ok := ctx.Value(scopeKey{}).(*scopeState); ok {
		st.denied.Store(true)
	}
	if d, ok := r.cfg.Observer.(interface{ Denied(string) }); ok {
		d.Denied("plugin_rpc")
	}
	v.p.log.Info("host call refused: beyond the caller's access", "import", what, "reason", err)
}

// scopedPublish checks a publish made during a call for a limited caller: the direct topic's
// addressee and every entity the events name must be reachable.
func (r *Registry) scopedPublish(sc scope.Scope, q *pluginv1.PublishRequest) error {
	if t, ok := scope.DirectTarget(q.GetTopic()); ok {
		if err := sc.Check(t); err != nil {
			return err
		}
	}
	evs := make([]*anypb.Any, 0, len(q.GetEvents()))
	for _, e := range q.GetEvents() {
		evs = append(evs, &anypb.Any{TypeUrl: "type.googleapis.com/" + e.GetType(), Value: e.GetValue()})
	}
	return sc.CheckEvents(evs)
}
