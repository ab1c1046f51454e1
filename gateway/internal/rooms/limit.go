package rooms

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limiter is a rate limit keyed by a string (a source address or an identity). The in-memory
// implementation is [TokenBucket]; a shared store (Redis) can implement the same contract so that
// every node draws on one budget.
type Limiter interface {
	// Allow takes one request's token from key's budget at now. It returns 0 if the request may
	// proceed, or else how long until it would be allowed (nothing is taken then).
	Allow(ctx context.Context, key string, now time.Time) (wait time.Duration, err error)
}

// TokenBucket is the in-memory [Limiter]: one bucket per key holding up to Burst tokens, refilled
// with one token every Interval. It is written as the generic cell rate algorithm (one "theoretical
// arrival time" per key), so a bucket that has refilled completely carries no information and is
// dropped by [TokenBucket.Prune]. At most MaxKeys buckets are kept: when that many keys are
// draining at once, a new key is refused (fail closed) rather than an existing bucket forgotten.
// Safe for concurrent use.
type TokenBucket struct {
	interval  time.Duration
	tolerance time.Duration // (burst-1) × interval
	maxKeys   int

	mu        sync.Mutex
	tat       map[string]time.Time
	lastPrune time.Time
}

// NewTokenBucket returns a limiter allowing burst requests at once per key and one more every
// interval. maxKeys ≤ 0 means 100,000.
func NewTokenBucket(burst int, interval time.Duration, maxKeys int) *TokenBucket {
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	burst = max(burst, 1)
	return &TokenBucket{
		interval: interval, tolerance: time.Duration(burst-1) * interval, maxKeys: maxKeys,
		tat: map[string]time.Time{},
	}
}

// Allow implements [Limiter].
func (b *TokenBucket) Allow(_ context.Context, key string, now time.Time) (time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tat, ok := b.tat[key]
	if !ok && len(b.tat) >= b.maxKeys {
		if now.Sub(b.lastPrune) >= time.Second {
			b.prune(now)
		}
		if len(b.tat) >= b.maxKeys {
			return b.interval, nil
		}
	}
	if tat.Before(now) {
		tat = now
	}
	if wait := tat.Sub(now) - b.tolerance; wait > 0 {
		return wait, nil
	}
	b.tat[key] = tat.Add(b.interval)
	return 0, nil
}

// Prune drops the buckets that have refilled completely at now (as if never used).
func (b *TokenBucket) Prune(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(now)
}

func (b *TokenBucket) prune(now time.Time) {
	b.lastPrune = now
	for k, tat := range b.tat {
		if !tat.After(now) {
			delete(b.tat, k)
		}
	}
}

// Len returns the number of buckets held.
func (b *TokenBucket) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.tat)
}

var _ Limiter = (*TokenBucket)(nil)

// sourceKey is the limiter key of a request's TCP peer: the IPv4 address, or the /64 of an IPv6
// address (one host commonly holds a whole /64). Forwarding headers are not trusted.
func sourceKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "src:" + host
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "src:" + p.String()
	}
	return "src:" + a.String()
}
