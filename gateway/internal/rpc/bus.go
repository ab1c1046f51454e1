package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// BusConfig configures a [BusServer].
type BusConfig struct {
	// Bus carries the requests and replies. Required.
	Bus bus.Bus
	// Router serves the calls. Required.
	Router *Router
	// Logger is the server's logger. Nil means no logging.
	Logger hclog.Logger
	// Timeout bounds one call. Zero value means 10s (OpenTera's caller timeout).
	Timeout time.Duration
	// OnMalformed, if set, is called for every payload that is not a usable RPCMessage.
	OnMalformed func()
	// Lease, if set, decides which node answers a module's requests when several nodes serve
	// the same module on a shared bus (Redis mode): only the lease holder answers. Nil means this
	// node answers every request (a single node).
	Lease Lease
	// External lists modules whose request channel the server does not subscribe itself:
	// another component subscribes it (in order with other topics) and passes each message to
	// [BusServer.Handler]. The presence registry does so for the user manager, so that a reply
	// reflects every presence message published before the request.
	External []string
}

// BusServer serves the router's modules on the bus: RPCMessage requests on module.<name>.rpc,
// JSON replies on their reply_to channel. Create it with [NewBusServer].
type BusServer struct {
	cfg BusConfig
	log hclog.Logger

	ctx context.Context // the calls' parent, set by Start

	mu      sync.Mutex                  // guards subs, served, unwatch and stopped; never held by request handlers
	subs    map[string]bus.Subscription // module → subscription
	served  map[string]bool             // modules served (subscribed here or external)
	unwatch func()
	stopped bool
}

// NewBusServer returns a stopped server; call [BusServer.Start].
func NewBusServer(cfg BusConfig) *BusServer {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &BusServer{cfg: cfg, log: cfg.Logger, ctx: context.Background(), subs: map[string]bus.Subscription{}, served: map[string]bool{}}
}

// Start subscribes the RPC channel of every registered module and follows later registrations.
// ctx bounds the calls' lifetime (cancel it or call Stop to end them).
func (s *BusServer) Start(ctx context.Context) error {
	s.ctx = ctx // set before any subscription exists: handlers read it without the lock
	s.unwatch = s.cfg.Router.Watch(func() {
		if err := s.sync(); err != nil {
			s.log.Error("following RPC module registrations", "error", err)
		}
	})
	return s.sync()
}

// Stop unsubscribes every module.
func (s *BusServer) Stop(ctx context.Context) error {
	if s.unwatch != nil {
		s.unwatch()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	var errs []error
	for m, sub := range s.subs {
		if err := sub.Unsubscribe(ctx); err != nil && !errors.Is(err, bus.ErrClosed) {
			errs = append(errs, err)
		}
		delete(s.subs, m)
	}
	for m := range s.served {
		if s.cfg.Lease != nil {
			s.cfg.Lease.Release(m)
		}
		delete(s.served, m)
	}
	return errors.Join(errs...)
}

// sync subscribes new modules and unsubscribes removed ones (external modules are only
// leased), and holds the lease of every module served.
func (s *BusServer) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	want := map[string]bool{}
	for _, m := range s.cfg.Router.Modules() {
		want[m] = true
	}
	var errs []error
	for m := range s.served {
		if !want[m] {
			if sub := s.subs[m]; sub != nil {
				if err := sub.Unsubscribe(context.Background()); err != nil {
					errs = append(errs, err)
				}
				delete(s.subs, m)
			}
			delete(s.served, m)
			if s.cfg.Lease != nil {
				s.cfg.Lease.Release(m)
			}
		}
	}
	for m := range want {
		if s.served[m] {
			continue
		}
		if !slices.Contains(s.cfg.External, m) {
			module := m
			sub, err := s.cfg.Bus.Subscribe(context.Background(), topic.RPC(m), func(msg bus.Message) { s.serve(module, msg) })
			if err != nil {
				errs = append(errs, fmt.Errorf("rpc: subscribe %s: %w", topic.RPC(m), err))
				continue
			}
			s.subs[m] = sub
		}
		s.served[m] = true
		if s.cfg.Lease != nil {
			s.cfg.Lease.Hold(m)
		}
		s.log.Debug("serving RPC module on the bus", "module", m, "channel", topic.RPC(m))
	}
	return errors.Join(errs...)
}

// Handler returns the handler of module's request channel, for a component that subscribes an
// [BusConfig.External] module itself. Requests are served inline, in the caller's order.
func (s *BusServer) Handler(module string) bus.Handler {
	return func(msg bus.Message) { s.serve(module, msg) }
}

// DecodeRequest decodes a bus payload into an RPCMessage. It fails (matching [ErrMalformed]) when
// the payload is not a protobuf RPCMessage or its reply_to is not a usable channel name.
func DecodeRequest(payload []byte) (*opentera.RPCMessage, error) {
	var m opentera.RPCMessage
	if err := proto.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if rt := m.GetReplyTo(); rt != "" && (strings.ContainsAny(rt, " \t\r\n") || bus.HasMeta(rt)) {
		return nil, fmt.Errorf("%w: reply_to %q is not a channel name", ErrMalformed, rt)
	}
	return &m, nil
}

// serve handles one request on module's channel.
func (s *BusServer) serve(module string, msg bus.Message) {
	req, err := DecodeRequest(msg.Payload)
	if err != nil {
		s.log.Warn("malformed RPC request ignored", "channel", msg.Channel, "bytes", len(msg.Payload), "error", err)
		if s.cfg.OnMalformed != nil {
			s.cfg.OnMalformed()
		}
		return
	}
	if s.cfg.Lease != nil && !s.cfg.Lease.Held(module) {
		return // the lease holder answers
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	v, callErr := s.cfg.Router.Call(ctx, module, req.GetMethod(), Args(req.GetArgs()))
	cancel()
	if callErr != nil {
		s.log.Debug("RPC call failed", "module", module, "method", req.GetMethod(), "error", callErr)
	}
	if req.GetReplyTo() == "" {
		return
	}
	// OpenTera puts the subscribed pattern in the reply; ours is the module's channel.
	reply, _ := AppendReply(make([]byte, 0, 256), req.GetMethod(), req.GetId(), msg.Pattern, v, callErr)
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := s.cfg.Bus.Publish(pctx, req.GetReplyTo(), reply); err != nil && !errors.Is(err, bus.ErrClosed) {
		s.log.Error("publishing RPC reply", "reply_to", req.GetReplyTo(), "error", err)
	}
}
