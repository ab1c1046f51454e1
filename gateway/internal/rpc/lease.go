package rpc

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
)

// Lease decides which node answers a module's bus requests when several nodes serve the same
// module on a shared bus (Redis mode). Each module has one holder at a time; a request is
// answered by the holder only, so every publication gets one reply however many nodes hear it
// and however often the same bytes are published. The [BusServer] calls Hold for every module
// it serves and Release when it stops serving one.
type Lease interface {
	// Hold makes the node compete for module's lease (and keep it while it runs).
	Hold(module string)
	// Release gives module's lease up.
	Release(module string)
	// Held reports whether the node holds module's lease now.
	Held(module string) bool
}

// RedisLeaseConfig configures a [RedisLease].
type RedisLeaseConfig struct {
	// Client is the Redis client. Required.
	Client redis.UniversalClient
	// NodeID identifies this node (the lease's value). Required.
	NodeID string
	// TTL is the lease's lifetime in Redis: when the holder stops renewing (it died or lost
	// Redis), another node takes over after at most TTL. The holder renews every TTL/3 and
	// stops answering TTL/4 before its lease could expire, so two nodes never answer at once.
	// Zero means 3s.
	TTL time.Duration
	// Logger is the lease's logger. Nil means none.
	Logger hclog.Logger
}

// RedisLease is a [Lease] kept in Redis: key teragate:rpc:lease:<module> holds the holder's
// node id with a TTL, taken with SET NX PX and renewed with a compare-and-expire script.
type RedisLease struct {
	cfg RedisLeaseConfig
	log hclog.Logger

	mu      sync.Mutex
	modules map[string]*leaseState
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

type leaseState struct {
	until time.Time // the node may answer until then (zero: not held)
}

const leasePrefix = "teragate:rpc:lease:"

// renewScript extends the lease when this node holds it, or takes it when it is free.
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

// releaseScript deletes the lease when this node holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// NewRedisLease starts the renewal loop; call [RedisLease.Close] to stop it and give every
// lease up.
func NewRedisLease(cfg RedisLeaseConfig) *RedisLease {
	if cfg.TTL <= 0 {
		cfg.TTL = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	l := &RedisLease{cfg: cfg, log: cfg.Logger, modules: map[string]*leaseState{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

// Hold implements [Lease]. The first attempt is made at once: a lone node holds the lease by the
// time Hold returns (unless Redis is unreachable; the loop keeps trying).
func (l *RedisLease) Hold(module string) {
	l.mu.Lock()
	if _, ok := l.modules[module]; !ok {
		l.modules[module] = &leaseState{}
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.TTL/3)
	defer cancel()
	l.renew(ctx, module)
}

// Release implements [Lease].
func (l *RedisLease) Release(module string) {
	l.mu.Lock()
	_, ok := l.modules[module]
	delete(l.modules, module)
	l.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := releaseScript.Run(ctx, l.cfg.Client, []string{leasePrefix + module}, l.cfg.NodeID).Err(); err != nil {
		l.log.Debug("releasing an RPC lease", "module", module, "error", err)
	}
}

// Held implements [Lease].
func (l *RedisLease) Held(module string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.modules[module]
	return st != nil && time.Now().Before(st.until)
}

// Close stops renewing and releases every lease, so another node takes over at once.
func (l *RedisLease) Close() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	<-l.done
	mods := l.held()
	for _, m := range mods {
		l.Release(m)
	}
}

// held returns the modules the node competes for.
func (l *RedisLease) held() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Collect(maps.Keys(l.modules))
}

func (l *RedisLease) loop() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		mods := l.held()
		for _, m := range mods {
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.TTL/3)
			l.renew(ctx, m)
			cancel()
		}
	}
}

// renew takes or extends module's lease and records until when this node may answer.
func (l *RedisLease) renew(ctx context.Context, module string) {
	start := time.Now() // the validity counts from before the command: Redis's clock started later
	n, err := renewScript.Run(ctx, l.cfg.Client, []string{leasePrefix + module}, l.cfg.NodeID, l.cfg.TTL.Milliseconds()).Int()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.modules[module]
	if st == nil {
		return // released meanwhile
	}
	held := !st.until.IsZero() && time.Now().Before(st.until)
	switch {
	case err != nil:
		// Keep what we had until it runs out: a holder cut off from Redis stops answering before
		// its lease expires there and another node takes it.
		l.log.Warn("renewing an RPC lease failed", "module", module, "error", err)
	case n == 1:
		if !held {
			l.log.Debug("holding the RPC lease", "module", module)
		}
		st.until = start.Add(l.cfg.TTL - l.cfg.TTL/4)
	default:
		if held {
			l.log.Info("RPC lease lost to another node", "module", module)
		}
		st.until = time.Time{}
	}
}
