package pdktest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	"github.com/teragate/teragate/sdk/abi"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/internal/hook"
)

// ErrPlugin wraps the error message of a failed plugin call (an error result; natively a panic in
// a handler is such a result too).
var ErrPlugin = errors.New("pdktest: plugin call failed")

// Recipient is a candidate connection of a filter test.
type Recipient struct {
	// UUID is the connected entity's uuid.
	UUID string
	// Admin marks a superadmin user (also true when the harness's Directory says so).
	Admin bool
}

// Delivery is what one recipient receives.
type Delivery struct {
	// UUID is the recipient's uuid.
	UUID string
	// Type is the full protobuf name of what it receives (the event's, or the rewrite's).
	Type string
	// Value is the encoding of what it receives.
	Value []byte
	// Rewritten reports that the recipient receives a rewritten event.
	Rewritten bool
}

// Published is one call of the publish host import.
type Published struct {
	// Topic is the bus topic.
	Topic string
	// Events are the published events, in order.
	Events []Event
}

// Event is one published event.
type Event struct {
	// Type is its full protobuf name.
	Type string
	// Value is its encoding.
	Value []byte
}

// Message decodes the event with the protobuf registry (the OpenTera events are registered).
func (e Event) Message() (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(e.Type))
	if err != nil {
		return nil, err
	}
	m := mt.New().Interface()
	return m, proto.Unmarshal(e.Value, m)
}

// LogLine is one call of the log host import.
type LogLine struct {
	// Level is the log level (pdk.LogTrace … pdk.LogError).
	Level pdk.LogLevel
	// Text is the line, message then key=value pairs.
	Text string
}

// Option configures a [Harness].
type Option func(*Harness)

// WithFilter registers fn (for the kinds) in place of the plugin's own filter for this test.
func WithFilter(fn pdk.FilterFunc, kinds ...pdk.Kind) Option {
	return func(*Harness) { pdk.HandleFilter(fn, kinds...) }
}

// WithRecipients registers fn in place of the plugin's per-recipient handler for this test.
func WithRecipients(fn pdk.RecipientsFunc) Option {
	return func(*Harness) { pdk.HandleRecipients(fn) }
}

// WithRPC registers an RPC module in place of the plugin's own for this test.
func WithRPC(module string, methods map[string]pdk.RPCFunc) Option {
	return func(*Harness) { pdk.HandleRPC(module, methods) }
}

// WithConfig sets the plugin id and configuration blob passed to tg_init. Default id "test".
func WithConfig(pluginID string, config []byte) Option {
	return func(h *Harness) { h.id, h.config = pluginID, config }
}

// Harness runs a plugin's handlers natively, through the same request and result bytes as the
// Wasm exports, with recording fakes behind the host imports. Facts are set on [Harness.Directory]
// and [Harness.Presence]; [Harness.Deliver] and [Harness.Who] play the host's part of the filter
// protocol (rule evaluation, the second call with recipients).
//
// One harness is live at a time in a test binary (the handlers are process-wide, as in a Wasm
// instance): [New] waits for the previous one's test to end.
type Harness struct {
	// Directory holds the directory facts (see [Directory]).
	Directory *Directory
	// Presence holds the presence facts (see [Presence]).
	Presence *Presence
	// CanSee evaluates Visible clauses and the can_see query. Nil means Directory.CanSee.
	CanSee func(viewer, subject pdk.Subject) bool
	// InSession evaluates InSession clauses and the in_session query. Nil means
	// Presence.InSession.
	InSession func(kind pdk.Kind, uuid, session string) bool
	// RPC fakes the methods the plugin calls with pdk.CallRPC, keyed "module.method".
	RPC map[string]pdk.RPCFunc

	// FailDirectory, FailPresence, FailPublish and FailRPC, when non-zero, make the import return
	// that code (an abi.HostErr* value).
	FailDirectory, FailPresence, FailPublish, FailRPC int32

	// Info is the plugin's answer to tg_init.
	Info *pluginv1.InitResult

	id     string
	config []byte

	caller pdk.Caller // the caller of the RPC call in progress ([Harness.CallAs])

	mu        sync.Mutex
	published []Published
	logs      []LogLine
	calls     map[string]int
}

// live serialises harnesses: the plugin's handlers and hook.Current are process-wide.
var live sync.Mutex

// New starts a harness for the handlers the plugin registered (in its init functions), replaced
// by the options, and calls the plugin's init. Everything is undone when the test ends.
func New(t testing.TB, opts ...Option) *Harness {
	t.Helper()
	live.Lock()
	saved := pdk.Registered()
	h := &Harness{Directory: NewDirectory(), Presence: NewPresence(), id: "test", calls: map[string]int{}}
	t.Cleanup(func() {
		hook.Current = nil
		pdk.Restore(saved)
		live.Unlock()
	})
	for _, o := range opts {
		o(h)
	}
	hook.Current = hostAdapter{h}
	req, err := proto.Marshal(&pluginv1.InitRequest{PluginId: h.id, Config: h.config, AbiVersion: abi.Version})
	if err != nil {
		t.Fatal(err)
	}
	res, failed := hook.Init(req)
	if failed {
		t.Fatalf("pdktest: tg_init failed: %s", res)
	}
	h.Info = &pluginv1.InitResult{}
	if err := proto.Unmarshal(res, h.Info); err != nil {
		t.Fatalf("pdktest: tg_init result: %v", err)
	}
	return h
}

// Filter makes one tg_filter call with the request as given and returns the decoded result.
func (h *Harness) Filter(req *pluginv1.FilterRequest) (*pluginv1.FilterResult, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	h.count("filter")
	res, failed := hook.Filter(b)
	if failed {
		return nil, errors.Join(ErrPlugin, errors.New(string(res)))
	}
	out := &pluginv1.FilterResult{}
	if err := proto.Unmarshal(res, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Rule returns the plugin's first answer for the event (no recipients yet): a rule, or nil and no
// error when it asked for the recipients.
func (h *Harness) Rule(kind pdk.Kind, topic string, ev proto.Message) (*pluginv1.Rule, error) {
	res, err := h.Filter(request(kind, topic, ev))
	if err != nil {
		return nil, err
	}
	return res.GetRule(), nil
}

func request(kind pdk.Kind, topic string, ev proto.Message) *pluginv1.FilterRequest {
	val, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return &pluginv1.FilterRequest{
		Kind: string(kind), Topic: topic,
		EventType: string(ev.ProtoReflect().Descriptor().FullName()), Event: val,
	}
}

// Deliver plays the host's part of filtering one event for recipients of one kind: it calls the
// plugin, evaluates its rule for every recipient (or calls again with the recipients when asked),
// and returns what each receiving recipient gets, in recipient order. A failed call is an error
// (the host would deliver nothing).
func (h *Harness) Deliver(kind pdk.Kind, topic string, ev proto.Message, rs ...Recipient) ([]Delivery, error) {
	req := request(kind, topic, ev)
	res, err := h.Filter(req)
	if err != nil {
		return nil, err
	}
	rs = h.withAdmins(kind, rs)
	var out []Delivery
	switch r := res.GetResult().(type) {
	case *pluginv1.FilterResult_Rule:
		rule := r.Rule
		for _, rc := range rs {
			if !h.Matches(rule, kind, rc) {
				continue
			}
			d := Delivery{UUID: rc.UUID, Type: req.EventType, Value: req.Event}
			if rule.GetRewriteType() != "" {
				d = Delivery{UUID: rc.UUID, Type: rule.GetRewriteType(), Value: rule.GetRewrite(), Rewritten: true}
			}
			out = append(out, d)
		}
	case *pluginv1.FilterResult_NeedRecipients:
		for _, rc := range rs {
			req.Recipients = append(req.Recipients, &pluginv1.Recipient{Uuid: rc.UUID, Admin: rc.Admin})
		}
		res, err := h.Filter(req)
		if err != nil {
			return nil, err
		}
		v := res.GetVerdicts()
		if v == nil {
			return nil, errors.New("pdktest: second call did not answer verdicts")
		}
		for i, rc := range rs {
			if !bit(v.GetDeliver(), i) {
				continue
			}
			d := Delivery{UUID: rc.UUID, Type: req.EventType, Value: req.Event}
			if bit(v.GetRewriteMask(), i) {
				d = Delivery{UUID: rc.UUID, Type: v.GetRewriteType(), Value: v.GetRewrite(), Rewritten: true}
			}
			out = append(out, d)
		}
	default:
		return nil, errors.New("pdktest: empty filter result")
	}
	return out, nil
}

func bit(b []byte, i int) bool { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

func (h *Harness) withAdmins(kind pdk.Kind, rs []Recipient) []Recipient {
	out := slices.Clone(rs)
	for i := range out {
		if kind == pdk.KindUser && h.Directory.Superadmin(out[i].UUID) {
			out[i].Admin = true
		}
	}
	return out
}

// Who returns the uuids, in recipient order, of the recipients of one kind that receive the event
// (as is or rewritten). A failed plugin call fails the test.
func (h *Harness) Who(t testing.TB, kind pdk.Kind, topic string, ev proto.Message, rs ...Recipient) []string {
	t.Helper()
	ds, err := h.Deliver(kind, topic, ev, rs...)
	if err != nil {
		t.Fatalf("pdktest: filter: %v", err)
	}
	out := []string{}
	for _, d := range ds {
		out = append(out, d.UUID)
	}
	return out
}

// Matches evaluates a rule for one recipient of the given kind, as the host does: the recipient
// matches when at least one clause holds, and a clause holds when every condition set in it does.
func (h *Harness) Matches(rule *pluginv1.Rule, kind pdk.Kind, r Recipient) bool {
	for _, c := range rule.GetAnyOf() {
		if h.clause(c, kind, r) {
			return true
		}
	}
	return false
}

func (h *Harness) clause(c *pluginv1.Clause, kind pdk.Kind, r Recipient) bool {
	self := pdk.Subject{Kind: kind, UUID: r.UUID}
	if v := c.GetVisible(); v != nil && !h.canSee(self, pdk.Subject{Kind: pdk.Kind(v.GetKind()), UUID: v.GetUuid()}) {
		return false
	}
	if len(c.GetUuids()) > 0 && !slices.Contains(c.GetUuids(), r.UUID) {
		return false
	}
	if s := c.GetInSession(); s != "" && !h.inSession(kind, r.UUID, s) {
		return false
	}
	if slices.Contains(c.GetExceptUuids(), r.UUID) {
		return false
	}
	return !c.GetAdminsOnly() || r.Admin
}

func (h *Harness) canSee(viewer, subject pdk.Subject) bool {
	if h.CanSee != nil {
		return h.CanSee(viewer, subject)
	}
	return h.Directory.CanSee(viewer, subject)
}

func (h *Harness) inSession(kind pdk.Kind, uuid, session string) bool {
	if h.InSession != nil {
		return h.InSession(kind, uuid, session)
	}
	return h.Presence.InSession(kind, uuid, session)
}

// Call makes one tg_rpc call: the arguments are encoded as a JSON array, the result decoded from
// JSON (numbers as float64). A failed call returns an error wrapping [ErrPlugin].
func (h *Harness) Call(method string, args ...any) (any, error) {
	return h.CallAs(pdk.Caller{}, method, args...)
}

// CallAs makes one tg_rpc call for caller, as the gateway does for an authenticated HTTP
// caller. While it runs, the fake host applies the gateway's scope rules for a caller that is not
// trusted: presence questions about an entity the caller may not see (per CanSee) are denied,
// directory queries about one answer "not found", and a publish to websocket.<kind>.<uuid>.events
// of such an entity is denied. (The gateway also refuses to publish events that name such an
// entity.)
func (h *Harness) CallAs(caller pdk.Caller, method string, args ...any) (any, error) {
	h.caller = caller
	defer func() { h.caller = pdk.Caller{} }()
	if args == nil {
		args = []any{}
	}
	argsJSON, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	call := &pluginv1.RPCCall{Method: method, ArgsJson: argsJSON, CallerAdmin: caller.Admin}
	if caller.UUID != "" {
		call.Caller = &pluginv1.Subject{Kind: string(caller.Kind), Uuid: caller.UUID}
	}
	req, err := proto.Marshal(call)
	if err != nil {
		return nil, err
	}
	h.count("rpc")
	res, failed := hook.RPC(req)
	if failed {
		return nil, errors.Join(ErrPlugin, errors.New(string(res)))
	}
	var r pluginv1.RPCResult
	if err := proto.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(r.GetReturnJson(), &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Published returns the events the plugin published so far.
func (h *Harness) Published() []Published {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.published)
}

// Logs returns the lines the plugin logged so far.
func (h *Harness) Logs() []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.logs)
}

// Calls returns how many times the named import or export was called ("filter", "rpc", "log",
// "directory", "presence", "publish", "rpc_call").
func (h *Harness) Calls(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[name]
}

func (h *Harness) count(name string) {
	h.mu.Lock()
	h.calls[name]++
	h.mu.Unlock()
}

// The host imports (hook.Host). Requests are decoded with the generated protobuf types, so a
// protowire encoding mistake in the kit shows up here.

// log records a line of the log import.
func (h *Harness) log(level int32, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls["log"]++
	h.logs = append(h.logs, LogLine{Level: pdk.LogLevel(level), Text: string(msg)})
}

// directory answers the directory import.
func (h *Harness) directory(q []byte) ([]byte, int32) {
	h.count("directory")
	if h.FailDirectory != 0 {
		return nil, h.FailDirectory
	}
	var req pluginv1.DirectoryQuery
	if err := proto.Unmarshal(q, &req); err != nil {
		return nil, abi.HostErrBadRequest
	}
	subject := pdk.Subject{Kind: pdk.Kind(req.GetSubject().GetKind()), UUID: req.GetSubject().GetUuid()}
	viewer := pdk.Subject{Kind: pdk.Kind(req.GetViewer().GetKind()), UUID: req.GetViewer().GetUuid()}
	if !h.reaches(subject) || (viewer.UUID != "" && !h.reaches(viewer)) {
		return marshal(&pluginv1.QueryResult{}) // outside the caller's access: unknown
	}
	var res pluginv1.QueryResult
	if req.GetQuery() == "can_see" {
		res.Found = true
		res.Flag = h.canSee(viewer, subject)
	} else {
		found, flag, values, ok := h.Directory.query(req.GetQuery(), subject)
		if !ok {
			return nil, abi.HostErrBadRequest
		}
		res.Found, res.Flag, res.Values = found, flag, values
	}
	return marshal(&res)
}

// reaches reports whether the caller of the RPC call in progress may name subject.
func (h *Harness) reaches(subject pdk.Subject) bool {
	c := h.caller
	if c.Trusted() || subject == (pdk.Subject{Kind: c.Kind, UUID: c.UUID}) {
		return true
	}
	return h.canSee(pdk.Subject{Kind: c.Kind, UUID: c.UUID}, subject)
}

// presence answers the presence import.
func (h *Harness) presence(q []byte) ([]byte, int32) {
	h.count("presence")
	if h.FailPresence != 0 {
		return nil, h.FailPresence
	}
	var req pluginv1.PresenceQuery
	if err := proto.Unmarshal(q, &req); err != nil {
		return nil, abi.HostErrBadRequest
	}
	kind, uuid := pdk.Kind(req.GetSubject().GetKind()), req.GetSubject().GetUuid()
	if !h.reaches(pdk.Subject{Kind: kind, UUID: uuid}) {
		return nil, abi.HostErrDenied
	}
	var res pluginv1.QueryResult
	switch req.GetQuery() {
	case "online":
		res.Flag = h.Presence.Online(kind, uuid)
		res.Found = res.Flag
	case "busy":
		if s := h.Presence.Busy(kind, uuid); s != "" {
			res.Found, res.Flag, res.Values = true, true, []string{s}
		}
	case "in_session":
		res.Flag = h.inSession(kind, uuid, req.GetSession())
		res.Found = res.Flag
	default:
		return nil, abi.HostErrBadRequest
	}
	return marshal(&res)
}

func marshal(m proto.Message) ([]byte, int32) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, abi.HostErrFailed
	}
	return b, 0
}

// publish records a call of the publish import.
func (h *Harness) publish(req []byte) int32 {
	h.count("publish")
	if h.FailPublish != 0 {
		return h.FailPublish
	}
	var pr pluginv1.PublishRequest
	if err := proto.Unmarshal(req, &pr); err != nil || pr.GetTopic() == "" {
		return abi.HostErrBadRequest
	}
	if rest, ok := strings.CutPrefix(pr.GetTopic(), "websocket."); ok {
		if k, u, ok := strings.Cut(strings.TrimSuffix(rest, ".events"), "."); ok && !h.reaches(pdk.Subject{Kind: pdk.Kind(k), UUID: u}) {
			return abi.HostErrDenied
		}
	}
	p := Published{Topic: pr.GetTopic()}
	for _, e := range pr.GetEvents() {
		p.Events = append(p.Events, Event{Type: e.GetType(), Value: slices.Clone(e.GetValue())})
	}
	h.mu.Lock()
	h.published = append(h.published, p)
	h.mu.Unlock()
	return 0
}

// rpcCall answers the rpc_call import from [Harness.RPC].
func (h *Harness) rpcCall(q []byte) ([]byte, int32) {
	h.count("rpc_call")
	if h.FailRPC != 0 {
		return nil, h.FailRPC
	}
	var req pluginv1.RPCRequest
	if err := proto.Unmarshal(q, &req); err != nil {
		return nil, abi.HostErrBadRequest
	}
	fn := h.RPC[req.GetModule()+"."+req.GetMethod()]
	if fn == nil {
		return nil, abi.HostErrBadRequest
	}
	var args []any
	if err := json.Unmarshal(req.GetArgsJson(), &args); err != nil {
		return nil, abi.HostErrBadRequest
	}
	ret, err := fn(args)
	if err != nil {
		return nil, abi.HostErrFailed
	}
	body, err := json.Marshal(ret)
	if err != nil {
		return nil, abi.HostErrFailed
	}
	return marshal(&pluginv1.RPCResult{ReturnJson: body})
}

// hostAdapter exposes the harness as hook.Host without adding the imports to its API.
type hostAdapter struct{ h *Harness }

func (a hostAdapter) Log(level int32, msg []byte)        { a.h.log(level, msg) }
func (a hostAdapter) Directory(q []byte) ([]byte, int32) { return a.h.directory(q) }
func (a hostAdapter) Presence(q []byte) ([]byte, int32)  { return a.h.presence(q) }
func (a hostAdapter) Publish(req []byte) int32           { return a.h.publish(req) }
func (a hostAdapter) RPCCall(q []byte) ([]byte, int32)   { return a.h.rpcCall(q) }

var (
	_ hook.Host = hostAdapter{}
	_           = opentera.TypeURLPrefix // the OpenTera events are registered for Event.Message
)
