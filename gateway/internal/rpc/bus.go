package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
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
	// Claim, if set, decides which node answers a request when several nodes serve the same
	// module on a shared bus (Redis mode): a request is served only where Claim returns true.
	// Nil means always (a single node).
	Claim func(ctx context.Context, key []byte) bool
}

// BusServer serves the router's modules on the bus: RPCMessage requests on module.<name>.rpc,
// JSON replies on their reply_to channel. Create it with [NewBusServer].
type BusServer struct {
	cfg BusConfig
	log hclog.Logger

	ctx context.Context // the calls' parent, set by Start

	mu      sync.Mutex                  // guards subs, unwatch and stopped; never held by request handlers
	subs    map[string]bus.Subscription // module → subscription
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
	return &BusServer{cfg: cfg, log: cfg.Logger, ctx: context.Background(), subs: map[string]bus.Subscription{}}
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
	return errors.Join(errs...)
}

// sync subscribes new modules and unsubscribes removed ones.
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
	for m, sub := range s.subs {
		if !want[m] {
			if err := sub.Unsubscribe(context.Background()); err != nil {
				errs = append(errs, err)
			}
			delete(s.subs, m)
		}
	}
	for m := range want {
		if _, ok := s.subs[m]; ok {
			continue
		}
		module := m
		sub, err := s.cfg.Bus.Subscribe(context.Background(), Pattern(m), func(msg bus.Message) { s.serve(module, msg) })
		if err != nil {
			errs = append(errs, fmt.Errorf("rpc: subscribe %s: %w", Pattern(m), err))
			continue
		}
		s.subs[m] = sub
		s.log.Debug("serving RPC module on the bus", "module", m, "channel", Pattern(m))
	}
	return errors.Join(errs...)
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
	if s.cfg.Claim != nil && !s.cfg.Claim(s.ctx, append([]byte("rpc\x00"+msg.Channel+"\x00"), msg.Payload...)) {
		return // another node answers
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
