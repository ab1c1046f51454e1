package auth

import (
	"context"
	"sync"
	"time"
)

// Revocations remembers revoked token ids until the tokens expire. Implementations must be safe
// for concurrent use. The default is [MemoryRevocations]; a shared store (Redis, as OpenTera's
// user_disabled_tokens) makes a logout on one node effective on all.
type Revocations interface {
	// Revoke records id as revoked until the given time, after which it may be forgotten.
	Revoke(ctx context.Context, id string, until time.Time) error
	// Revoked reports whether id is revoked now.
	Revoked(ctx context.Context, id string) (bool, error)
}

// MemoryRevocations is an in-process [Revocations]. Entries are dropped once their token has
// expired, so its size is bounded by the logouts of one token lifetime.
type MemoryRevocations struct {
	now func() time.Time

	mu        sync.Mutex
	ids       map[string]time.Time
	sweepAt   int // sweep when the map reaches this size …
	nextSweep time.Time
}

// revocationSweepEvery bounds how long expired entries can linger.
const revocationSweepEvery = time.Minute

// NewMemoryRevocations returns an empty MemoryRevocations. A nil now means time.Now.
func NewMemoryRevocations(now func() time.Time) *MemoryRevocations {
	if now == nil {
		now = time.Now
	}
	return &MemoryRevocations{now: now, ids: make(map[string]time.Time), sweepAt: 64}
}

// Revoke records id as revoked until until.
func (r *MemoryRevocations) Revoke(_ context.Context, id string, until time.Time) error {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !until.After(now) {
		return nil // already expired: nothing to remember
	}
	if cur, ok := r.ids[id]; !ok || until.After(cur) {
		r.ids[id] = until
	}
	if len(r.ids) >= r.sweepAt || !now.Before(r.nextSweep) {
		for k, u := range r.ids {
			if !u.After(now) {
				delete(r.ids, k)
			}
		}
		r.sweepAt = max(64, 2*len(r.ids))
		r.nextSweep = now.Add(revocationSweepEvery)
	}
	return nil
}

// Revoked reports whether id is revoked and its token not yet expired.
func (r *MemoryRevocations) Revoked(_ context.Context, id string) (bool, error) {
	now := r.now()
	r.mu.Lock()
	until, ok := r.ids[id]
	r.mu.Unlock()
	return ok && until.After(now), nil
}

// Len returns the number of remembered ids, expired ones not yet swept included.
func (r *MemoryRevocations) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

var _ Revocations = (*MemoryRevocations)(nil)
