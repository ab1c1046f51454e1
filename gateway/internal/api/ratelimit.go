package api

import (
	"math"
	"sync"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// LoginRate limits the logins of one entity (a user, participant or device, whatever address it
// comes from): a token bucket of Burst logins refilled at PerSecond. Every login that
// authenticated takes a token; a login finding none is answered 429 with Retry-After (the time
// until a token is back) before any token or ticket is issued. A websocket needs a ticket and a
// ticket needs a login, so the bucket bounds the entity's websocket opens too.
//
// It stops a client reconnecting in a tight loop (no backoff) from taking the gateway's CPU from
// the others: after its burst it gets PerSecond logins a second and 429s for the rest, each
// answered before any token, ticket or presence work. Wrong passwords are limited separately,
// per username and address (max_failed_logins).
type LoginRate struct {
	// PerSecond is the sustained rate; ≤ 0 disables the limit.
	PerSecond float64
	// Burst is how many logins an entity may make at once (an entity holding that many sockets
	// can have all of them come back together, as in a connect storm).
	Burst int
}

// loginLimiter is the per-entity token buckets of a LoginRate. Buckets full again are forgotten
// (swept at most once a second), so its memory follows the entities logging in right now; it
// keeps at most maxBuckets (then a full-enough new entity is admitted without a bucket).
type loginLimiter struct {
	rate  LoginRate
	now   func() time.Time
	mu    sync.Mutex
	b     map[entityKey]*bucket
	swept time.Time
}

type entityKey struct {
	kind directory.Kind
	uuid string
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxBuckets = 1 << 20

func newLoginLimiter(r LoginRate) *loginLimiter {
	if r.PerSecond <= 0 {
		return nil
	}
	if r.Burst < 1 {
		r.Burst = 1
	}
	return &loginLimiter{rate: r, now: time.Now, b: map[entityKey]*bucket{}}
}

// allow takes a token for (kind, uuid). When there is none it returns false and how long until
// one is back.
func (l *loginLimiter) allow(kind directory.Kind, uuid string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	burst := float64(l.rate.Burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) >= time.Second {
		l.sweep(now)
	}
	k := entityKey{kind, uuid}
	b := l.b[k]
	if b == nil {
		if len(l.b) >= maxBuckets {
			return true, 0
		}
		b = &bucket{tokens: burst, at: now}
		l.b[k] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.at).Seconds()*l.rate.PerSecond)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate.PerSecond * float64(time.Second))
	return false, wait
}

// sweep forgets the buckets that are full again by now.
func (l *loginLimiter) sweep(now time.Time) {
	l.swept = now
	burst := float64(l.rate.Burst)
	for k, b := range l.b {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate.PerSecond >= burst {
			delete(l.b, k)
		}
	}
}
