package auth

import (
	"sync"
	"time"
)

// lockout counts failed passwords per account.
//
// An attempt reserves a slot before the (slow) bcrypt check, so that many concurrent guesses cannot
// all slip in before the first failure is recorded: once failures plus attempts in flight reach
// max, further attempts are refused until those finish.
type lockout struct {
	max    int // ≤ 0: disabled
	window time.Duration

	mu        sync.Mutex
	accounts  map[string]*attempts
	nextSweep time.Time
}

type attempts struct {
	failures    int
	inflight    int
	first       time.Time // first failure of the current window
	lockedUntil time.Time
}

func newLockout(max int, window time.Duration) *lockout {
	return &lockout{max: max, window: window, accounts: make(map[string]*attempts)}
}

// begin reserves an attempt for id, or returns a *LockedError.
func (l *lockout) begin(id string, now time.Time) error {
	if l.max <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	e := l.accounts[id]
	if e == nil {
		e = &attempts{}
		l.accounts[id] = e
	}
	if now.Before(e.lockedUntil) {
		return &LockedError{Until: e.lockedUntil}
	}
	l.expire(e, now)
	if e.failures+e.inflight >= l.max {
		return &LockedError{Until: now.Add(l.window)}
	}
	e.inflight++
	return nil
}

// end records the outcome of an attempt begun with begin. It reports whether this failure locked
// the account, and until when.
func (l *lockout) end(id string, ok bool, now time.Time) (time.Time, bool) {
	if l.max <= 0 {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.accounts[id]
	if e == nil { // cannot happen: entries with attempts in flight are not swept
		return time.Time{}, false
	}
	e.inflight--
	if ok {
		e.failures, e.first, e.lockedUntil = 0, time.Time{}, time.Time{}
		if e.inflight == 0 {
			delete(l.accounts, id)
		}
		return time.Time{}, false
	}
	l.expire(e, now)
	if e.failures == 0 {
		e.first = now
	}
	e.failures++
	if e.failures >= l.max && !now.Before(e.lockedUntil) {
		e.lockedUntil = now.Add(l.window)
		return e.lockedUntil, true
	}
	return time.Time{}, false
}

// expire forgets failures older than the window and a lock that has run out.
func (l *lockout) expire(e *attempts, now time.Time) {
	if !e.lockedUntil.IsZero() && !now.Before(e.lockedUntil) {
		e.failures, e.first, e.lockedUntil = 0, time.Time{}, time.Time{}
	}
	if e.failures > 0 && now.Sub(e.first) >= l.window {
		e.failures, e.first = 0, time.Time{}
	}
}

// sweep drops idle entries at most once per window, so the map holds only accounts with recent
// failures.
func (l *lockout) sweep(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(l.window)
	for id, e := range l.accounts {
		l.expire(e, now)
		if e.inflight == 0 && e.failures == 0 && e.lockedUntil.IsZero() {
			delete(l.accounts, id)
		}
	}
}

// size returns the number of tracked accounts (tests).
func (l *lockout) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accounts)
}
