package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
)

// RedisConfig configures [NewRedis].
type RedisConfig struct {
	// Client is the Redis client used to publish and to open one pub/sub connection per
	// subscription. Required. The bus does not close it: its owner does, after [Redis.Close].
	Client *redis.Client
	// MaxPending bounds the messages queued for one subscription whose handler is behind, as
	// [MemoryConfig.MaxPending]. Zero value means 1<<20.
	MaxPending int
	// OnDrop, if set, is called for every message dropped because a subscription's queue was full.
	OnDrop func(pattern, channel string)
	// OnReconnect, if set, is called with the subscription's patterns each time a subscription's
	// connection was lost and its patterns are subscribed again on a new connection (messages
	// published in between are lost: Redis pub/sub keeps nothing).
	OnReconnect func(patterns []string)
	// Logger logs lost and restored subscriptions. Nil means no logging.
	Logger hclog.Logger
	// PositionChannel, if set, is the channel on which the event history announces the position
	// of the message it publishes next on a channel (payload "<position> <channel>", published
	// just before that message by the same Redis script, so nothing comes in between on a
	// connection). A subscription whose patterns match it does not receive these announcements:
	// it gets the position in the next message on that channel ([Message.Position]).
	PositionChannel string
	// RetryBackoff is the longest wait between two attempts to reconnect a lost subscription.
	// Zero value means 1s.
	RetryBackoff time.Duration
}

// Redis is the [Bus] of a multi-node deployment: Redis PUBLISH and PSUBSCRIBE, with OpenTera's
// channel names, so OpenTera services publishing into the same Redis are understood.
//
// # Notes
//
// Each subscription holds its own pub/sub connection: Redis delivers the messages of one
// connection in the order it executed the PUBLISH commands, which gives [Bus.SubscribeAll] its
// order across patterns. Messages are read off the connection as soon as they arrive and queued
// for the handler (bounded by MaxPending), so a slow handler never makes Redis drop the client for
// an overfull output buffer.
//
// A lost connection is re-established with the same patterns (go-redis resubscribes on the new
// connection); each loss is logged at warn level, each restoration at info level and counted by
// OnReconnect. Messages published while the connection was down are not delivered.
type Redis struct {
	cfg    RedisConfig
	log    hclog.Logger
	mu     sync.Mutex
	subs   map[*redisSub]struct{}
	closed atomic.Bool
	wg     sync.WaitGroup
}

// NewRedis returns a bus on cfg.Client.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("bus: redis: nil client")
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1 << 20
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Redis{cfg: cfg, log: cfg.Logger, subs: map[*redisSub]struct{}{}}, nil
}

// Publish implements [Bus] with PUBLISH.
func (b *Redis) Publish(ctx context.Context, channel string, payload []byte) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := b.cfg.Client.Publish(ctx, channel, payload).Err(); err != nil {
		return fmt.Errorf("bus: redis publish: %w", err)
	}
	return nil
}

// Subscribe implements [Bus].
func (b *Redis) Subscribe(ctx context.Context, pattern string, h Handler) (Subscription, error) {
	return b.SubscribeAll(ctx, []string{pattern}, h)
}

// SubscribeAll implements [Bus]: one PSUBSCRIBE connection for all the patterns. It returns
// once Redis has confirmed every pattern.
func (b *Redis) SubscribeAll(ctx context.Context, patterns []string, h Handler) (Subscription, error) {
	if err := checkSubscription(patterns, h); err != nil {
		return nil, err
	}
	if b.closed.Load() {
		return nil, ErrClosed
	}
	ps := b.cfg.Client.PSubscribe(ctx, patterns...)
	// Wait for the confirmation of every pattern: from then on a PUBLISH reaches us.
	for confirmed := 0; confirmed < len(patterns); {
		msg, err := ps.Receive(ctx)
		if err != nil {
			_ = ps.Close()
			return nil, fmt.Errorf("bus: redis psubscribe: %w", err)
		}
		if _, ok := msg.(*redis.Subscription); ok {
			confirmed++
		}
	}
	s := &redisSub{bus: b, ps: ps, patterns: patterns, mailbox: newMailbox(h, b.cfg.MaxPending, b.cfg.OnDrop)}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		_ = ps.Close()
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	b.wg.Add(2)
	b.mu.Unlock()
	go s.receive()
	go s.run(&b.wg)
	return s, nil
}

// Close implements [Bus]: it closes every subscription and waits for running handlers to return.
// It does not close the client.
func (b *Redis) Close(ctx context.Context) error {
	if b.closed.Swap(true) {
		return nil
	}
	b.mu.Lock()
	subs := b.subs
	b.subs = map[*redisSub]struct{}{}
	b.mu.Unlock()
	for s := range subs {
		s.stop()
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type redisSub struct {
	bus      *Redis
	ps       *redis.PubSub
	patterns []string
	mailbox
}

// receive reads the pub/sub connection until the subscription stops, reconnecting after errors.
func (s *redisSub) receive() {
	defer s.bus.wg.Done()
	ctx := context.Background()
	lost := false
	wait := 10 * time.Millisecond
	posCh := s.bus.cfg.PositionChannel
	var pendPos, pendCh string // the announced position of the next message on pendCh
	for {
		msg, err := s.ps.Receive(ctx)
		if s.isStopped() {
			return
		}
		if err != nil {
			pendPos, pendCh = "", ""
			if !lost {
				lost = true
				s.bus.log.Warn("redis subscription lost; reconnecting", "patterns", s.patterns, "error", err)
			}
			select {
			case <-s.done:
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, s.bus.cfg.RetryBackoff)
			continue
		}
		switch m := msg.(type) {
		case *redis.Message:
			if posCh != "" && m.Channel == posCh {
				pendPos, pendCh, _ = strings.Cut(m.Payload, " ")
				continue
			}
			pos := ""
			if pendCh != "" && m.Channel == pendCh {
				pos, pendPos, pendCh = pendPos, "", ""
			}
			s.push(m.Pattern, m.Channel, []byte(m.Payload), pos)
		case *redis.Subscription:
			if lost && m.Kind == "psubscribe" {
				lost, wait = false, 10*time.Millisecond
				s.bus.log.Info("redis subscription restored", "patterns", s.patterns)
				if s.bus.cfg.OnReconnect != nil {
					s.bus.cfg.OnReconnect(s.patterns)
				}
			}
		}
	}
}

func (s *redisSub) stop() {
	if s.mailbox.stop() {
		_ = s.ps.Close() // unblocks Receive
	}
}

// Unsubscribe implements [Subscription]: it closes the subscription's connection.
func (s *redisSub) Unsubscribe(_ context.Context) error {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
	s.stop()
	return nil
}

var (
	_ Bus          = (*Redis)(nil)
	_ Subscription = (*redisSub)(nil)
)
