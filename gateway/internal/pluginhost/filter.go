package pluginhost

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// Filter is the [filter.Filter] of one connection kind backed by the plugin that serves the kind
// (filter.<kind>, or one listing the kind in InitResult.filter_kinds). Create it with
// [Registry.Filter].
type Filter struct {
	r        *Registry
	kind     directory.Kind
	fallback filter.Filter
	sessions filter.Sessions
}

// Filter returns the filter of connection kind k. When no plugin serves k, fallback decides
// (nil fallback: the batch fails closed with [ErrNotLoaded]). sessions answers in_session
// clauses (nil: nobody is in any session).
func (r *Registry) Filter(k directory.Kind, fallback filter.Filter, sessions filter.Sessions) *Filter {
	return &Filter{r: r, kind: k, fallback: fallback, sessions: sessions}
}

// Serving returns the id of the plugin serving kind k, or "".
func (r *Registry) Serving(k directory.Kind) string {
	if p := (*r.kinds.Load())[k]; p != nil {
		return p.id
	}
	return ""
}

func exportFilter(in *instance) api.Function { return in.filter }

// Decide implements [filter.Filter].
func (f *Filter) Decide(ctx context.Context, ev *filter.Event, kind directory.Kind, rs []filter.Recipient, out []filter.Decision) error {
	if len(out) < len(rs) {
		return filter.ErrLengthMismatch
	}
	out = out[:len(rs)]
	p := (*f.r.kinds.Load())[kind]
	var v *version
	if p != nil {
		v = p.acquire()
	}
	if v == nil {
		if f.fallback == nil {
			return fmt.Errorf("filter %s: %w", kind, ErrNotLoaded)
		}
		return f.fallback.Decide(ctx, ev, kind, rs, out)
	}
	defer v.release()
	if len(rs) == 0 {
		return nil
	}

	var snap *directory.Snapshot
	if d := f.r.cfg.Deps.Directory; d != nil {
		snap = d.Current()
	}
	key, cacheable := cacheKey(ev, kind)
	if cacheable && !v.quarantined.Load() {
		if cr := v.cache.get(key, snap); cr != nil {
			cr.eval(rs, out, f.sessions)
			return nil
		}
	}
	var cr *compiledRule
	err := v.do(ctx, exportFilter, func(in *instance, call func([]byte) ([]byte, error)) error {
		in.req = appendFilterRequest(in.req[:0], kind, ev, nil)
		res, err := call(in.req)
		if err != nil {
			return err
		}
		var need bool
		cr, need, err = decodeResult(res, -1)
		if err != nil || !need {
			return err
		}
		in.req = appendFilterRequest(in.req[:0], kind, ev, rs)
		if res, err = call(in.req); err != nil {
			return err
		}
		cr, _, err = decodeResult(res, len(rs))
		return err
	})
	if err != nil {
		return err
	}
	if cr.verdicts != nil {
		cr.applyVerdicts(out)
		return nil
	}
	if cacheable && cr.cacheable {
		v.cache.put(key, snap, cr)
	}
	cr.eval(rs, out, f.sessions)
	return nil
}

// planMark is a [filter.Candidates.Plan] of a [Filter] that did not narrow by a rule.
type planMark uint8

const (
	// planDecide: no rule to narrow by (the guest wants the recipients): decide the whole kind with
	// Decide.
	planDecide planMark = iota + 1
	// planFallbackDecide: no plugin serves the kind and the fallback cannot narrow: the fallback
	// decides the whole kind.
	planFallbackDecide
)

// Candidates implements [filter.Narrower]. The candidates come from the rule the plugin answers
// without recipients: the cached rule when there is one (no guest call), otherwise the guest's
// first answer, which DecideCandidates then applies without calling the guest again (and which is
// cached when cacheable, as by Decide). A guest that asks for the recipients gets every
// connection of the kind; after it did once, a version is no longer asked before the recipients
// are gathered (so such a plugin pays no extra call). When no plugin serves the kind, the
// fallback narrows if it can. The plan recorded in c makes DecideCandidates decide with exactly
// what produced the candidates, even if a plugin or directory reload happens in between.
func (f *Filter) Candidates(ctx context.Context, ev *filter.Event, kind directory.Kind, c *filter.Candidates) error {
	p := (*f.r.kinds.Load())[kind]
	var v *version
	if p != nil {
		v = p.acquire()
	}
	if v == nil {
		if f.fallback == nil {
			return fmt.Errorf("filter %s: %w", kind, ErrNotLoaded)
		}
		if fb, ok := f.fallback.(filter.Narrower); ok {
			if err := fb.Candidates(ctx, ev, kind, c); err != nil {
				return err
			}
			switch c.Plan.(type) {
			case *compiledRule, planMark: // the fallback's plan would read as ours
			default:
				return nil
			}
		}
		c.Reset()
		c.All, c.Plan = true, planFallbackDecide
		return nil
	}
	defer v.release()

	var snap *directory.Snapshot
	if d := f.r.cfg.Deps.Directory; d != nil {
		snap = d.Current()
	}
	key, cacheable := cacheKey(ev, kind)
	if cacheable && !v.quarantined.Load() {
		if cr := v.cache.get(key, snap); cr != nil {
			cr.candidates(c)
			c.Plan = cr
			return nil
		}
	}
	if v.cache.needsRecipients.Load() {
		c.All, c.Plan = true, planDecide
		return nil
	}
	var cr *compiledRule
	var need bool
	err := v.do(ctx, exportFilter, func(in *instance, call func([]byte) ([]byte, error)) error {
		in.req = appendFilterRequest(in.req[:0], kind, ev, nil)
		res, err := call(in.req)
		if err != nil {
			return err
		}
		cr, need, err = decodeResult(res, -1)
		return err
	})
	if err != nil {
		return err
	}
	if need {
		v.cache.needsRecipients.Store(true)
		c.All, c.Plan = true, planDecide
		return nil
	}
	if cacheable && cr.cacheable {
		v.cache.put(key, snap, cr)
	}
	cr.candidates(c)
	c.Plan = cr
	return nil
}

// DecideCandidates implements [filter.Narrower]: it applies the plan Candidates recorded in c.
func (f *Filter) DecideCandidates(ctx context.Context, ev *filter.Event, kind directory.Kind, c *filter.Candidates, rs []filter.Recipient, out []filter.Decision) error {
	if len(out) < len(rs) {
		return filter.ErrLengthMismatch
	}
	switch pl := c.Plan.(type) {
	case *compiledRule:
		pl.eval(rs, out[:len(rs)], f.sessions)
		return nil
	case planMark:
		if pl == planFallbackDecide && f.fallback != nil {
			return f.fallback.Decide(ctx, ev, kind, rs, out)
		}
		return f.Decide(ctx, ev, kind, rs, out)
	}
	if fb, ok := f.fallback.(filter.Narrower); ok {
		return fb.DecideCandidates(ctx, ev, kind, c, rs, out)
	}
	return fmt.Errorf("filter %s: %w", kind, ErrNotLoaded)
}

// appendFilterRequest encodes a FilterRequest (field numbers of abi.proto) without the protobuf
// runtime: it runs once or twice per (event, kind).
func appendFilterRequest(b []byte, kind directory.Kind, ev *filter.Event, rs []filter.Recipient) []byte {
	typ := ev.Any.GetTypeUrl()
	if i := strings.LastIndexByte(typ, '/'); i >= 0 {
		typ = typ[i+1:]
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, kind.String())
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, ev.Topic)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, typ)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, ev.Any.GetValue())
	for i := range rs {
		u := rs[i].UUID
		n := 1 + protowire.SizeVarint(uint64(len(u))) + len(u)
		admin := rs[i].Access.Admin()
		if admin {
			n += 2
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, u)
		if admin {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
	}
	return b
}

// compiledRule is a decoded FilterResult ready to apply: a Rule's clauses, or Verdicts.
type compiledRule struct {
	clauses   []clause
	rewrite   *anypb.Any // shared by every recipient (and every event, when cached)
	cacheable bool

	verdicts *pluginv1.Verdicts
}

type clause struct {
	uuidList   []string // the uuids clause as the plugin listed it (uuids is its lookup form)
	hasVisible bool
	visKind    directory.Kind
	visUUID    string
	uuids      uuidSet
	hasUUIDs   bool
	except     uuidSet
	inSession  string
	adminsOnly bool
}

// uuidSet is a small slice (linear scan) or a map for long lists.
type uuidSet struct {
	list []string
	m    map[string]struct{}
}

func newUUIDSet(l []string) uuidSet {
	if len(l) <= 8 {
		return uuidSet{list: l}
	}
	m := make(map[string]struct{}, len(l))
	for _, u := range l {
		m[u] = struct{}{}
	}
	return uuidSet{m: m}
}

func (s *uuidSet) has(u string) bool {
	if s.m != nil {
		_, ok := s.m[u]
		return ok
	}
	for _, x := range s.list {
		if x == u {
			return true
		}
	}
	return false
}

// errBadResult wraps every undecodable or inconsistent FilterResult.
var errBadResult = fmt.Errorf("%w: bad FilterResult", ErrProtocol)

// decodeResult decodes a FilterResult. n < 0 marks the first call (no recipients sent): then
// Verdicts are invalid and need_recipients is allowed; n ≥ 0 is the recipient count of the second
// call, which must answer a Rule or Verdicts of exactly that many bits.
func decodeResult(b []byte, n int) (_ *compiledRule, needRecipients bool, _ error) {
	var fr pluginv1.FilterResult
	if err := proto.Unmarshal(b, &fr); err != nil {
		return nil, false, fmt.Errorf("%w: %v", errBadResult, err)
	}
	switch r := fr.Result.(type) {
	case *pluginv1.FilterResult_Rule:
		cr, err := compileRule(r.Rule)
		return cr, false, err
	case *pluginv1.FilterResult_NeedRecipients:
		if n >= 0 || !r.NeedRecipients {
			return nil, false, fmt.Errorf("%w: need_recipients on the call that had them", errBadResult)
		}
		return nil, true, nil
	case *pluginv1.FilterResult_Verdicts:
		if n < 0 {
			return nil, false, fmt.Errorf("%w: verdicts without recipients", errBadResult)
		}
		return compileVerdicts(r.Verdicts, n)
	}
	return nil, false, fmt.Errorf("%w: empty result", errBadResult)
}

func rewriteAny(typ string, value []byte) (*anypb.Any, error) {
	if typ == "" {
		if len(value) > 0 {
			return nil, fmt.Errorf("%w: rewrite without rewrite_type", errBadResult)
		}
		return nil, nil
	}
	if strings.ContainsAny(typ, "/ ") {
		return nil, fmt.Errorf("%w: rewrite_type %q", errBadResult, typ)
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + typ, Value: value}, nil
}

func compileRule(r *pluginv1.Rule) (*compiledRule, error) {
	cr := &compiledRule{cacheable: r.GetCacheable(), clauses: make([]clause, 0, len(r.GetAnyOf()))}
	var err error
	if cr.rewrite, err = rewriteAny(r.GetRewriteType(), r.GetRewrite()); err != nil {
		return nil, err
	}
	for _, c := range r.GetAnyOf() {
		cl := clause{inSession: c.GetInSession(), adminsOnly: c.GetAdminsOnly()}
		if s := c.GetVisible(); s != nil {
			k, ok := directory.ParseKind(s.GetKind())
			if !ok {
				return nil, fmt.Errorf("%w: visible.kind %q", errBadResult, s.GetKind())
			}
			cl.hasVisible, cl.visKind, cl.visUUID = true, k, s.GetUuid()
		}
		if c.GetUuids() != nil {
			cl.hasUUIDs, cl.uuids, cl.uuidList = true, newUUIDSet(c.GetUuids()), c.GetUuids()
		}
		cl.except = newUUIDSet(c.GetExceptUuids())
		cr.clauses = append(cr.clauses, cl)
	}
	return cr, nil
}

func compileVerdicts(vd *pluginv1.Verdicts, n int) (*compiledRule, bool, error) {
	nb := (n + 7) / 8
	if len(vd.GetDeliver()) != nb {
		return nil, false, fmt.Errorf("%w: deliver has %d bytes for %d recipients", errBadResult, len(vd.GetDeliver()), n)
	}
	if m := len(vd.GetRewriteMask()); m != 0 && m != nb {
		return nil, false, fmt.Errorf("%w: rewrite_mask has %d bytes for %d recipients", errBadResult, m, n)
	}
	rw, err := rewriteAny(vd.GetRewriteType(), vd.GetRewrite())
	if err != nil {
		return nil, false, err
	}
	if rw == nil && len(vd.GetRewriteMask()) > 0 {
		for _, x := range vd.GetRewriteMask() {
			if x != 0 {
				return nil, false, fmt.Errorf("%w: rewrite_mask without rewrite_type", errBadResult)
			}
		}
	}
	return &compiledRule{verdicts: vd, rewrite: rw}, false, nil
}

func (cr *compiledRule) applyVerdicts(out []filter.Decision) {
	del, mask := cr.verdicts.GetDeliver(), cr.verdicts.GetRewriteMask()
	for i := range out {
		bit := byte(1) << (i & 7)
		switch {
		case del[i>>3]&bit == 0:
			out[i] = filter.Decision{}
		case len(mask) > 0 && mask[i>>3]&bit != 0:
			out[i] = filter.Decision{Verdict: filter.Rewritten, Rewrite: cr.rewrite}
		default:
			out[i] = filter.Decision{Verdict: filter.Keep}
		}
	}
}

// candidates describes in c every recipient the rule can deliver to. A clause's conditions all
// have to hold, so each clause is described by its narrowest one: its uuids, else admins-only,
// else the viewers of its visible subject; a clause with none of them (everyone, in-session,
// except only) makes every connection a candidate.
func (cr *compiledRule) candidates(c *filter.Candidates) {
	for ci := range cr.clauses {
		cl := &cr.clauses[ci]
		switch {
		case cl.hasUUIDs:
			c.UUIDs = append(c.UUIDs, cl.uuidList...)
		case cl.adminsOnly:
			c.Admins = true
		case cl.hasVisible:
			c.Visible = append(c.Visible, filter.Entity{Kind: cl.visKind, UUID: cl.visUUID})
		default:
			c.All = true
			return
		}
	}
}

// eval applies the rule to every recipient. Visible subjects are resolved once per snapshot.
func (cr *compiledRule) eval(rs []filter.Recipient, out []filter.Decision, sess filter.Sessions) {
	hit := filter.Decision{Verdict: filter.Keep}
	if cr.rewrite != nil {
		hit = filter.Decision{Verdict: filter.Rewritten, Rewrite: cr.rewrite}
	}
	type resolved struct {
		snap *directory.Snapshot
		sub  directory.Subject
	}
	var small [4]resolved
	var subs []resolved
	if len(cr.clauses) <= len(small) {
		subs = small[:len(cr.clauses)]
	} else {
		subs = make([]resolved, len(cr.clauses))
	}
	for i := range rs {
		r := &rs[i]
		ok := false
		for ci := range cr.clauses {
			c := &cr.clauses[ci]
			if c.adminsOnly && !r.Access.Admin() {
				continue
			}
			if c.hasUUIDs && !c.uuids.has(r.UUID) {
				continue
			}
			if c.except.has(r.UUID) {
				continue
			}
			if c.inSession != "" && (sess == nil || !sess.InSession(r.Kind, r.UUID, c.inSession)) {
				continue
			}
			if c.hasVisible {
				rv := &subs[ci]
				if s := r.Access.Snapshot(); s != rv.snap && s != nil {
					rv.snap = s
					rv.sub, _ = s.Subject(c.visKind, c.visUUID)
				}
				if !r.Access.SeesSubject(rv.sub) {
					continue
				}
			}
			ok = true
			break
		}
		if ok {
			out[i] = hit
		} else {
			out[i] = filter.Decision{}
		}
	}
}

// ruleKey identifies the events a cacheable rule may be reused for.
type ruleKey struct {
	kind    directory.Kind
	topic   string
	typ     string
	subject string
}

// cacheKey returns the key of ev for kind: the subject is the entity a User/Participant/
// DeviceEvent is about; other events are keyed by their exact bytes when short, and not cached
// otherwise.
func cacheKey(ev *filter.Event, kind directory.Kind) (ruleKey, bool) {
	k := ruleKey{kind: kind, topic: ev.Topic, typ: ev.Any.GetTypeUrl()}
	switch m := ev.Msg.(type) {
	case *opentera.UserEvent:
		k.subject = "u:" + m.GetUserUuid()
	case *opentera.ParticipantEvent:
		k.subject = "p:" + m.GetParticipantUuid()
	case *opentera.DeviceEvent:
		k.subject = "d:" + m.GetDeviceUuid()
	default:
		if len(ev.Any.GetValue()) > 256 {
			return k, false
		}
		k.subject = "=" + string(ev.Any.GetValue())
	}
	return k, true
}

// maxCachedRules bounds a version's rule cache; it is cleared when full. OpenTera's table has about
// one rule per (kind, event type, subject): 4,096 thrashed with 10k connected entities (each miss
// is a call into the guest); 32,768 rules of a few hundred bytes each stay a few MiB per version.
const maxCachedRules = 1 << 15

// ruleCache holds a version's cacheable rules; it is emptied when the directory snapshot changes.
type ruleCache struct {
	// needsRecipients is set once the version answered need_recipients (see Filter.Candidates).
	needsRecipients atomic.Bool

	mu   sync.RWMutex
	snap *directory.Snapshot
	m    map[ruleKey]*compiledRule
}

func (c *ruleCache) get(k ruleKey, snap *directory.Snapshot) *compiledRule {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.snap != snap {
		return nil
	}
	return c.m[k]
}

func (c *ruleCache) put(k ruleKey, snap *directory.Snapshot, cr *compiledRule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != snap || c.m == nil || len(c.m) >= maxCachedRules {
		c.snap, c.m = snap, make(map[ruleKey]*compiledRule)
	}
	c.m[k] = cr
}

// ApplyResult decodes a FilterResult as the second call's answer for len(rs) recipients and
// applies it. It is the ABI boundary the fuzz target exercises; garbage gives an error, never a
// panic.
func ApplyResult(b []byte, rs []filter.Recipient, out []filter.Decision, sess filter.Sessions) error {
	if len(out) < len(rs) {
		return filter.ErrLengthMismatch
	}
	out = out[:len(rs)]
	cr, _, err := decodeResult(b, len(rs))
	if err != nil {
		return err
	}
	if cr.verdicts != nil {
		cr.applyVerdicts(out)
	} else {
		cr.eval(rs, out, sess)
	}
	return nil
}

var _ filter.Narrower = (*Filter)(nil)
