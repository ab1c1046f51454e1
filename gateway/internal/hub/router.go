package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

var socketKinds = [...]directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice}

// ErrNoFilter is returned by a filter slot that has no filter: the batch fails closed.
var ErrNoFilter = errors.New("hub: no filter for this kind")

// RouterConfig configures a [Router].
type RouterConfig struct {
	// FilterTimeout is the deadline of one filter call. Zero value means 1s. A filter may run a
	// call past it while its code is made ready (a plugin's first call compiles it): the event
	// is then delivered late rather than dropped.
	FilterTimeout time.Duration
	// Logger is the router's logger. Nil means the hub's.
	Logger hclog.Logger
	// PositionChannel, if set, is subscribed with the topic families: the Redis bus reads the
	// history's position announcements on it ([bus.RedisConfig.PositionChannel]).
	PositionChannel string
}

// Router routes bus events to connections through the per-kind filters.
type Router struct {
	hub     *Hub
	bus     bus.Bus
	cfg     RouterConfig
	log     hclog.Logger
	metrics *metrics.Metrics
	filters [directory.KindService + 1]atomic.Pointer[filterSlot]

	mu      sync.Mutex
	subs    []bus.Subscription
	lanes   lanes
	replays replayQueue
}

type filterSlot struct{ f filter.Filter }

// NewRouter returns a router for the hub's connections. Every kind starts with no filter (fail
// closed) until [Router.SetFilter].
func NewRouter(h *Hub, b bus.Bus, cfg RouterConfig) *Router {
	if cfg.FilterTimeout <= 0 {
		cfg.FilterTimeout = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = h.cfg.Logger
	}
	return &Router{hub: h, bus: b, cfg: cfg, log: log, metrics: h.cfg.Metrics}
}

// SetFilter installs the filter of connection kind k; it takes effect for the next event.
func (r *Router) SetFilter(k directory.Kind, f filter.Filter) {
	r.filters[k].Store(&filterSlot{f: f})
}

// Filter returns the filter of kind k, or nil.
func (r *Router) Filter(k directory.Kind) filter.Filter {
	if s := r.filters[k].Load(); s != nil {
		return s.f
	}
	return nil
}

// Start subscribes to the topic families, as one bus subscription so that a client receives its
// events in publish order whichever family carried them (one Redis connection's semantics), and
// routes them on one lane per connection kind (in that order, per kind): a slow filter delays its
// own kind only. When it returns, events published on them reach the connections registered in
// the hub.
func (r *Router) Start(ctx context.Context) error {
	fams := map[string]string{ // pattern → family ([Router.dispatch])
		topic.UserManagerEvents:    "user_manager",
		topic.PatternServiceEvents: "service",
		topic.PatternDirect:        "direct",
		topic.PatternCommands:      "command",
	}
	patterns := make([]string, 0, len(fams)+1)
	for p := range fams {
		patterns = append(patterns, p)
	}
	if r.cfg.PositionChannel != "" {
		patterns = append(patterns, r.cfg.PositionChannel)
	}
	r.startLanes()
	sub, err := r.bus.SubscribeAll(ctx, patterns, func(m bus.Message) {
		f, ok := fams[m.Pattern]
		if !ok {
			return
		}
		r.metrics.EventReceived(f)
		r.dispatch(m, f)
	})
	if err != nil {
		_ = r.stopLanes(ctx)
		return fmt.Errorf("hub: subscribe %q: %w", patterns, err)
	}
	r.mu.Lock()
	r.subs = append(r.subs, sub)
	r.mu.Unlock()
	return nil
}

// Stop unsubscribes from every family.
func (r *Router) Stop(ctx context.Context) error {
	r.mu.Lock()
	subs := r.subs
	r.subs = nil
	r.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Unsubscribe(ctx))
	}
	if len(subs) > 0 {
		errs = append(errs, r.stopLanes(ctx))
	}
	return errors.Join(errs...)
}

// worker holds the router's scratch buffers (the handler of one subscription never runs
// concurrently with itself).
type worker struct {
	// replay, when set, is the replay run the worker routes recorded events for: only its
	// active members are recipients ([Router.Replay]).
	replay *replayRun
	conns  []*Conn
	rs     []filter.Recipient
	ds     []filter.Decision
	cand   filter.Candidates
	gather gatherScratch

	// staging is set while a lane routes a batch of events (several were waiting): frames are
	// staged per connection in arena and queued together by [Router.flush].
	staging bool
	arena   []stagedFrame
	staged  []*Conn // the connections with staged frames, in first-staged order
}

// stagedFrame is a frame staged for a connection during a batch; next is the index of the
// connection's next staged frame in the arena, -1 for its last.
type stagedFrame struct {
	pendingFrame
	next int32
}

func (r *Router) routeDirect(w *worker, m bus.Message) {
	k, uuid, ok := topic.ParseDirect(m.Channel)
	if !ok {
		return // websocket.<type>.<uuid> answer topics and others: not events for sockets
	}
	r.routeEvents(w, m, k, uuid)
}

// routeCommand applies a server command at once, for every kind (the lanes apply it kind by kind,
// in order with the events; see [Router.dispatch]).
func (r *Router) routeCommand(_ *worker, m bus.Message) {
	if !isDisconnect(r, m) {
		return
	}
	uuid := topic.CommandTarget(m.Channel)
	n := r.hub.CloseEntity(0, uuid, CloseDisconnect, "CMD_CLIENT_DISCONNECT", metrics.DisconnectCommand)
	r.log.Debug("client disconnect command", "uuid", uuid, "sockets", n)
}

// routeEvents routes a TeraEvent payload to every kind's sockets (kind 0) or to the sockets of
// one entity.
func (r *Router) routeEvents(w *worker, m bus.Message, kind directory.Kind, uuid string) {
	var te opentera.TeraEvent
	if err := proto.Unmarshal(m.Payload, &te); err != nil {
		r.metrics.Dropped(metrics.DropBadPayload, 1)
		r.log.Warn("undecodable event payload", "topic", m.Channel, "error", err)
		return
	}
	var raw []byte
	var multi *multiFrames
	pos := eventPos(m.Position)
	switch {
	case len(te.Events) == 1:
		raw = m.Payload
	case len(te.Events) > 1:
		// One frame per TeraEvent, as OpenTera sends it: each socket gets one frame holding the
		// events it may see, in order, the header kept (none → no frame). Filters still decide
		// per event.
		multi = &multiFrames{header: te.Header, per: map[*Conn]*survivors{}, pos: pos}
	}
	for i, a := range te.Events {
		if a == nil {
			continue
		}
		ev := filter.DecodeEvent(m.Channel, a)
		enc := encoder{header: te.Header, any: a, raw: raw, index: i, pos: pos}
		for _, k := range socketKinds {
			if kind != 0 && k != kind {
				continue
			}
			if res, ok := r.filterKind(w, ev, k, uuid); ok {
				r.deliver(w, ev, k, &enc, res, multi)
			}
		}
	}
	if multi != nil {
		r.sendMulti(w, multi)
	}
}

// eventPos parses a message's history position ("" or an unparsable one: no position).
func eventPos(tok string) position {
	if tok == "" {
		return position{}
	}
	t, err := history.ParseToken(tok)
	if err != nil {
		return position{}
	}
	return position{tok: tok, pos: t.Pos, has: true}
}

// position is an event's history position, as positioned frames carry it.
type position struct {
	tok string
	pos history.Pos
	has bool
}

// send queues an event frame for c: as is during a replay, held back in order with its position
// for a positioned connection (which may be replaying), as is otherwise.
//
// During a batch the frame is staged instead and send reports false: [Router.flush] queues and
// counts it.
func (r *Router) send(w *worker, c *Conn, fr []byte, p position) bool {
	switch {
	case w.replay != nil:
		return r.sendReplay(w, c, fr)
	case w.staging:
		i := int32(len(w.arena))
		w.arena = append(w.arena, stagedFrame{pendingFrame: pendingFrame{f: fr, pos: p.pos, has: p.has}, next: -1})
		if c.stageLast == 0 {
			c.stageFirst = i + 1
			w.staged = append(w.staged, c)
		} else {
			w.arena[c.stageLast-1].next = i
		}
		c.stageLast = i + 1
		return false
	case c.positions:
		return c.sendEvent(fr, p.pos, p.has)
	default:
		return c.Send(fr)
	}
}

// flush queues the frames staged during a batch, each connection's together (one lock, one writer
// wake-up, one write), and counts them delivered.
func (r *Router) flush(w *worker) {
	var delivered [directory.KindService + 1]int
	for _, c := range w.staged {
		first := c.stageFirst - 1
		c.stageFirst, c.stageLast = 0, 0
		delivered[c.kind] += c.sendStaged(w.arena, first)
	}
	for k, n := range delivered {
		if n > 0 {
			r.metrics.Delivered(directory.Kind(k), n)
		}
	}
	clear(w.staged)
	w.staged = w.staged[:0]
	clear(w.arena)
	w.arena = w.arena[:0]
}

// filtered is the outcome of [Router.filterKind].
type filtered struct {
	took    time.Duration
	err     error
	skipped int // sockets of the kind that were not candidates
}

// filterKind gathers the candidate sockets of kind k for ev into w.conns and w.rs and runs the
// kind's filter into w.ds; it reports false when there is nothing to deliver (no candidate, or
// the filter failed before any was gathered: that is counted and logged here). A family-topic
// event whose filter is a [filter.Narrower] visits only the candidates the filter describes,
// gathered from the hub's index; otherwise every socket of the kind is a candidate.
func (r *Router) filterKind(w *worker, ev *filter.Event, k directory.Kind, uuid string) (filtered, bool) {
	if w.replay != nil {
		return r.filterReplay(w, ev, k, uuid)
	}
	w.conns, w.rs = w.conns[:0], w.rs[:0]
	f := r.Filter(k)
	nf, narrow := f.(filter.Narrower)
	if !narrow || uuid != "" {
		if uuid == "" {
			w.conns = r.hub.AppendKind(w.conns, k)
		} else {
			w.conns = r.hub.AppendEntity(w.conns, k, uuid)
		}
		return r.decideAll(w, f, ev, k)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FilterTimeout)
	defer cancel()
	if !r.narrow(ctx, w, nf, ev, k, start, r.hub.Count(k)) {
		return filtered{}, false
	}
	if w.cand.All {
		w.conns = r.hub.AppendKind(w.conns, k)
		for _, c := range w.conns {
			w.rs = append(w.rs, filter.Recipient{Kind: c.kind, UUID: c.uuid, Access: c.Access()})
		}
	} else {
		w.conns, w.rs = r.hub.appendCandidates(w.conns, w.rs, k, &w.cand, &w.gather)
	}
	// The sockets the index let the router skip count as filtered, as when every socket was
	// a candidate (the count may race with connects and disconnects; never below zero).
	res := filtered{skipped: max(r.hub.Count(k)-len(w.conns), 0)}
	return r.decideNarrowed(ctx, w, nf, ev, k, start, res)
}

// filterReplay is filterKind for a replay run: the recipients are the run's active members of
// kind k that the live path would have gathered (a narrowing filter's candidates among them).
// A replay counts nothing of the other sockets.
func (r *Router) filterReplay(w *worker, ev *filter.Event, k directory.Kind, uuid string) (filtered, bool) {
	run := w.replay
	w.conns, w.rs = w.conns[:0], w.rs[:0]
	among := run.active[k]
	if len(among) == 0 {
		return filtered{}, false
	}
	f := r.Filter(k)
	nf, narrow := f.(filter.Narrower)
	if uuid != "" {
		all, n := r.hub.AppendEntity(w.conns, k, uuid), 0
		for _, c := range all {
			if run.in(c) {
				all[n] = c
				n++
			}
		}
		clear(all[n:])
		w.conns = all[:n]
		return r.decideAll(w, f, ev, k)
	}
	if !narrow {
		w.conns = append(w.conns, among...)
		return r.decideAll(w, f, ev, k)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FilterTimeout)
	defer cancel()
	if !r.narrow(ctx, w, nf, ev, k, start, len(among)) {
		return filtered{}, false
	}
	if w.cand.All {
		for _, c := range among {
			w.conns = append(w.conns, c)
			w.rs = append(w.rs, filter.Recipient{Kind: c.kind, UUID: c.uuid, Access: c.Access()})
		}
	} else {
		w.conns, w.rs = r.hub.appendCandidatesAmong(w.conns, w.rs, k, &w.cand, &w.gather, among, run.in)
	}
	return r.decideNarrowed(ctx, w, nf, ev, k, start, filtered{})
}

// decideAll runs kind k's filter (nil: fail closed) on every connection in w.conns; it reports
// false when there is none.
func (r *Router) decideAll(w *worker, f filter.Filter, ev *filter.Event, k directory.Kind) (filtered, bool) {
	if len(w.conns) == 0 {
		return filtered{}, false
	}
	for _, c := range w.conns {
		w.rs = append(w.rs, filter.Recipient{Kind: c.kind, UUID: c.uuid, Access: c.Access()})
	}
	res := filtered{err: ErrNoFilter}
	start := time.Now()
	if f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FilterTimeout)
		res.err = r.decide(ctx, f, ev, k, w.rs, r.decisions(w))
		cancel()
	}
	res.took = time.Since(start)
	return res, true
}

// decideNarrowed runs a narrowing filter on the candidates gathered in w.conns and w.rs; with
// none, it counts res.skipped filtered and reports false.
func (r *Router) decideNarrowed(ctx context.Context, w *worker, nf filter.Narrower, ev *filter.Event, k directory.Kind, start time.Time, res filtered) (filtered, bool) {
	if len(w.conns) == 0 {
		r.metrics.FilterCall(k, time.Since(start).Seconds(), false)
		r.metrics.Dropped(metrics.DropFiltered, res.skipped)
		return res, false
	}
	res.err = r.decideCandidates(ctx, nf, ev, k, &w.cand, w.rs, r.decisions(w))
	res.took = time.Since(start)
	return res, true
}

// narrow asks a narrowing filter for ev's candidates of kind k into w.cand. When it fails, the n
// possible recipients are dropped, counted and logged, and narrow reports false.
func (r *Router) narrow(ctx context.Context, w *worker, nf filter.Narrower, ev *filter.Event, k directory.Kind, start time.Time, n int) bool {
	w.cand.Reset()
	err := r.candidates(ctx, nf, ev, k, &w.cand)
	if err == nil {
		return true
	}
	r.metrics.FilterCall(k, time.Since(start).Seconds(), true)
	r.metrics.Dropped(metrics.DropFilterError, n)
	r.log.Warn("filter failed, batch dropped", "kind", k, "event", ev.Name(), "topic", ev.Topic, "recipients", n, "error", err)
	return false
}

// decisions returns the worker's decision slice for its len(w.rs) recipients, cleared.
func (r *Router) decisions(w *worker) []filter.Decision {
	n := len(w.rs)
	if cap(w.ds) < n {
		w.ds = make([]filter.Decision, n)
	}
	ds := w.ds[:n]
	clear(ds)
	return ds
}

// deliver queues the frames of the filter's decisions w.ds for the worker's connections (or,
// when the filter failed, drops the batch). With multi (a TeraEvent of several events), the
// surviving events are collected per connection instead, for [Router.sendMulti].
func (r *Router) deliver(w *worker, ev *filter.Event, k directory.Kind, enc *encoder, res filtered, multi *multiFrames) {
	n, err := len(w.conns), res.err
	ds := w.ds[:n]
	r.metrics.FilterCall(k, res.took.Seconds(), err != nil)
	if err != nil {
		r.metrics.Dropped(metrics.DropFilterError, n)
		r.log.Warn("filter failed, batch dropped", "kind", k, "event", ev.Name(), "topic", ev.Topic, "recipients", n, "error", err)
		clear(w.conns)
		clear(w.rs)
		return
	}
	delivered, filtered, failed := 0, res.skipped, 0
	var rewrites map[*anypb.Any]*encoder
	for i, d := range ds {
		c := w.conns[i]
		if multi != nil {
			switch {
			case d.Verdict == filter.Keep:
				multi.add(c, enc.any, strconv.Itoa(enc.index))
			case d.Verdict == filter.Rewritten && d.Rewrite != nil:
				multi.add(c, d.Rewrite, fmt.Sprintf("r%p", d.Rewrite))
			default:
				filtered++
			}
			continue
		}
		var fr []byte
		switch d.Verdict {
		case filter.Keep:
			fr = enc.frameFor(c)
		case filter.Rewritten:
			if d.Rewrite == nil {
				filtered++
				continue
			}
			if rewrites == nil {
				rewrites = map[*anypb.Any]*encoder{}
			}
			re := rewrites[d.Rewrite]
			if re == nil {
				re = &encoder{header: enc.header, any: d.Rewrite, pos: enc.pos}
				rewrites[d.Rewrite] = re
			}
			fr = re.frameFor(c)
		default:
			filtered++
			continue
		}
		if fr == nil {
			failed++
			continue
		}
		if r.send(w, c, fr, enc.pos) {
			delivered++
		}
	}
	if failed > 0 {
		r.metrics.Dropped(metrics.DropEncodeFailed, failed)
		r.log.Warn("event could not be encoded", "event", ev.Name(), "recipients", failed)
	}
	r.metrics.Dropped(metrics.DropFiltered, filtered)
	r.metrics.Delivered(k, delivered)
	clear(w.conns)
	clear(w.rs)
}

// decide calls the filter, turning a panic into an error (fail closed).
func (r *Router) decide(ctx context.Context, f filter.Filter, ev *filter.Event, k directory.Kind, rs []filter.Recipient, ds []filter.Decision) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hub: filter panicked: %v", p)
		}
	}()
	return f.Decide(ctx, ev, k, rs, ds)
}

// candidates asks a narrowing filter for its candidates, turning a panic into an error.
func (r *Router) candidates(ctx context.Context, f filter.Narrower, ev *filter.Event, k directory.Kind, c *filter.Candidates) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hub: filter panicked: %v", p)
		}
	}()
	return f.Candidates(ctx, ev, k, c)
}

// decideCandidates is decide for a narrowing filter's gathered candidates.
func (r *Router) decideCandidates(ctx context.Context, f filter.Narrower, ev *filter.Event, k directory.Kind, c *filter.Candidates, rs []filter.Recipient, ds []filter.Decision) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hub: filter panicked: %v", p)
		}
	}()
	return f.DecideCandidates(ctx, ev, k, c, rs, ds)
}

var (
	teraEventURL = opentera.TypeURL(&opentera.TeraEvent{})
	jsonOpts     = protojson.MarshalOptions{EmitDefaultValues: true}
)

// encoder encodes one outgoing event once per wire format: a TeraMessage wrapping a TeraEvent
// that holds the single event, as OpenTera sends it.
type encoder struct {
	header *opentera.TeraEvent_Header
	any    *anypb.Any
	index  int    // the event's position in its TeraEvent
	raw    []byte // the TeraEvent bytes as received, when they hold exactly this event
	pos    position
	frames [2 * numFormats][]byte // plain frames by format, then positioned ones
	failed [2 * numFormats]bool
}

// frameFor returns c's frame of the event: positioned for a connection that asked for positions
// (when the event has one), the shared plain frame otherwise.
func (e *encoder) frameFor(c *Conn) []byte {
	if c.positions && e.pos.has {
		return e.encode(int(numFormats)+int(c.format), c.format, e.pos.tok)
	}
	return e.encode(int(c.format), c.format, "")
}

func (e *encoder) encode(slot int, f Format, pos string) []byte {
	if e.frames[slot] != nil || e.failed[slot] {
		return e.frames[slot]
	}
	b, err := EncodeEventAt(e.header, e.any, e.raw, f, pos)
	if err != nil {
		e.failed[slot] = true
		return nil
	}
	e.frames[slot] = b
	return b
}

// EncodeEvent returns the complete websocket frame carrying one event in format f: a
// TeraMessage{message: Any(TeraEvent{header, events: [ev]})}, as protojson text with every
// default value emitted (OpenTera's JSON) or as binary protobuf. raw, if not nil, is the already
// encoded TeraEvent.
func EncodeEvent(header *opentera.TeraEvent_Header, ev *anypb.Any, raw []byte, f Format) ([]byte, error) {
	return EncodeEventAt(header, ev, raw, f, "")
}

// EncodeEventAt is [EncodeEvent] with the event's history position pos added to the frame
// ([PositionField]); pos "" gives EncodeEvent's frame.
func EncodeEventAt(header *opentera.TeraEvent_Header, ev *anypb.Any, raw []byte, f Format, pos string) ([]byte, error) {
	if raw != nil {
		return encodeTeraEvent(raw, f, pos)
	}
	return EncodeEventsAt(header, []*anypb.Any{ev}, f, pos)
}

// EncodeEvents returns the complete websocket frame carrying the events in format f: a
// TeraMessage{message: Any(TeraEvent{header, events})}, as [EncodeEvent] does for one.
func EncodeEvents(header *opentera.TeraEvent_Header, evs []*anypb.Any, f Format) ([]byte, error) {
	return EncodeEventsAt(header, evs, f, "")
}

// EncodeEventsAt is [EncodeEvents] with a history position, as [EncodeEventAt].
func EncodeEventsAt(header *opentera.TeraEvent_Header, evs []*anypb.Any, f Format, pos string) ([]byte, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&opentera.TeraEvent{Header: header, Events: evs})
	if err != nil {
		return nil, err
	}
	return encodeTeraEvent(raw, f, pos)
}

// encodeTeraEvent frames raw, an encoded TeraEvent, as a TeraMessage in format f, with the
// position pos unless it is "".
func encodeTeraEvent(raw []byte, f Format, pos string) ([]byte, error) {
	return EncodeMessage(&anypb.Any{TypeUrl: teraEventURL, Value: raw}, f, pos)
}

// PositionField is the field number of the event's position in a binary TeraMessage frame of a
// connection with resume=1 (a string; OpenTera's TeraMessage has field 1 only, so its parsers
// keep it as an unknown field). JSON frames carry it as the top-level key "position".
const PositionField = 1000

// EncodeMessage returns the complete frame of a TeraMessage wrapping a in format f, with the
// history position pos beside "message" (JSON) or in [PositionField] (binary) unless pos is "".
func EncodeMessage(a *anypb.Any, f Format, pos string) ([]byte, error) {
	tm := &opentera.TeraMessage{Message: a}
	if f == FormatProto {
		b, err := proto.Marshal(tm)
		if err != nil {
			return nil, err
		}
		if pos != "" {
			b = protowire.AppendTag(b, PositionField, protowire.BytesType)
			b = protowire.AppendString(b, pos)
		}
		return BinaryFrame(b), nil
	}
	b, err := jsonOpts.Marshal(tm)
	if err != nil {
		return nil, err
	}
	if pos != "" {
		b = bytes.TrimRight(b, " \t\r\n")
		if len(b) == 0 || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("hub: unexpected TeraMessage JSON %q", b)
		}
		q, err := json.Marshal(pos)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b[:len(b)-1], `,"position":`...), q...), '}')
	}
	return TextFrame(b), nil
}

// multiFrames collects, for a TeraEvent of several events, the events each connection may see.
type multiFrames struct {
	header *opentera.TeraEvent_Header
	pos    position
	per    map[*Conn]*survivors
	order  []*Conn // connections in first-survivor order
}

type survivors struct {
	anys []*anypb.Any
	sig  strings.Builder // identifies the set, so identical sets share one encoding
}

func (m *multiFrames) add(c *Conn, a *anypb.Any, id string) {
	s := m.per[c]
	if s == nil {
		s = &survivors{}
		m.per[c] = s
		m.order = append(m.order, c)
	}
	s.anys = append(s.anys, a)
	s.sig.WriteString(id)
	s.sig.WriteByte(',')
}

// sendMulti queues one frame per connection with the events that survived its filters; each
// distinct set of events is encoded once per format.
func (r *Router) sendMulti(w *worker, m *multiFrames) {
	type cacheKey struct {
		sig string
		f   Format
		pos bool
	}
	frames := map[cacheKey][]byte{}
	var delivered [directory.KindService + 1]int
	failed := 0
	for _, c := range m.order {
		s := m.per[c]
		positioned := c.positions && m.pos.has
		key := cacheKey{s.sig.String(), c.format, positioned}
		fr, ok := frames[key]
		if !ok {
			tok := ""
			if positioned {
				tok = m.pos.tok
			}
			var err error
			if fr, err = EncodeEventsAt(m.header, s.anys, c.format, tok); err != nil {
				fr = nil
			}
			frames[key] = fr
		}
		if fr == nil {
			failed++
			continue
		}
		if r.send(w, c, fr, m.pos) {
			delivered[c.kind]++
		}
	}
	if failed > 0 {
		r.metrics.Dropped(metrics.DropEncodeFailed, failed)
		r.log.Warn("events could not be encoded", "recipients", failed)
	}
	for k, n := range delivered {
		if n > 0 {
			r.metrics.Delivered(directory.Kind(k), n)
		}
	}
}
