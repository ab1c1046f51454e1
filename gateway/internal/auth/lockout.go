package auth

import (
	"context"
	"net"
	"sync"
	"time"
)

// lockout throttles password guesses per (account, source address): it is a brake on whoever
// guesses, not a switch anyone can flip for the account's owner.
//
//   - Only wrong passwords count. max wrong passwords from one source within the window lock that
//     source out of that account for the window; each further lock in a row (no success between)
//     doubles the duration, up to maxBackoff. A locked source is refused even the right password
//     until its lock ends (as OpenTera); the owner logging in from another address is not.
//   - Unknown usernames are throttled exactly like known ones (same key shape, same answers), so
//     the answers do not tell which usernames exist.
//   - An attempt reserves a slot before the slow password check, so concurrent guesses cannot all
//     slip in before the first failure is recorded: once wrong passwords plus attempts in flight
//     reach max, further attempts wait (bounded by their context and maxWait) for a slot instead
//     of failing. A right password is therefore never refused because of attempts in flight: it
//     waits its turn, and a success frees every slot.
type lockout struct {
	max        int // ≤ 0: disabled
	window     time.Duration
	maxBackoff time.Duration
	maxWait    time.Duration

	mu        sync.Mutex
	entries   map[string]*attempts
	nextSweep time.Time
}

type attempts struct {
	failures    int
	inflight    int
	first       time.Time // first failure of the current window
	lockedUntil time.Time
	strikes     int           // locks in a row, for the backoff
	lastLock    time.Time     // when the last lock ended (strikes are forgotten after maxBackoff)
	freed       chan struct{} // closed when a slot frees (nil: nobody waits)
}

// maxLockoutEntries bounds the table: beyond it, idle entries are swept at once.
const maxLockoutEntries = 200_000

func newLockout(max int, window time.Duration) *lockout {
	return &lockout{max: max, window: window, maxBackoff: 32 * window, maxWait: 30 * time.Second, entries: make(map[string]*attempts)}
}

type sourceKey struct{}

// WithSource returns a context carrying the network address a login comes from (an IP address,
// or host:port, whose port is dropped). [Authenticator.Password] throttles guesses per account
// and source; a context without a source shares one budget per account.
func WithSource(ctx context.Context, addr string) context.Context {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return context.WithValue(ctx, sourceKey{}, addr)
}

func sourceOf(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

// begin reserves an attempt for id, waiting for a slot while wrong passwords plus attempts in
// flight fill the budget. It returns a *LockedError while id is locked, or ctx's error.
func (l *lockout) begin(ctx context.Context, id string, now func() time.Time) error {
	if l.max <= 0 {
		return nil
	}
	var deadline <-chan time.Time
	for {
		l.mu.Lock()
		t := now()
		l.sweep(t)
		e := l.entries[id]
		if e == nil {
			e = &attempts{}
			l.entries[id] = e
		}
		if t.Before(e.lockedUntil) {
			l.mu.Unlock()
			return &LockedError{Until: e.lockedUntil}
		}
		l.expire(e, t)
		if e.failures+e.inflight < l.max {
			e.inflight++
			l.mu.Unlock()
			return nil
		}
		if e.freed == nil {
			e.freed = make(chan struct{})
		}
		freed := e.freed
		l.mu.Unlock()
		if deadline == nil {
			timer := time.NewTimer(l.maxWait)
			defer timer.Stop()
			deadline = timer.C
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return &LockedError{Until: now().Add(l.window)}
		}
	}
}

// end records the outcome of an attempt begun with begin. It reports whether this failure locked
// id, and until when.
func (l *lockout) end(id string, ok bool, now time.Time) (time.Time, bool) {
	if l.max <= 0 {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[id]
	if e == nil { // cannot happen: entries with attempts in flight are not swept
		return time.Time{}, false
	}
	e.inflight--
	if e.freed != nil {
		close(e.freed) // waiters look again: a slot freed, or the account got locked
		e.freed = nil
	}
	if ok {
		e.failures, e.first, e.lockedUntil, e.strikes = 0, time.Time{}, time.Time{}, 0
		if e.inflight == 0 {
			delete(l.entries, id)
		}
		return time.Time{}, false
	}
	l.expire(e, now)
	if e.failures == 0 {
		e.first = now
	}
	e.failures++
	if e.failures >= l.max && !now.Before(e.lockedUntil) {
		d := l.window << min(e.strikes, 30)
		if d > l.maxBackoff || d <= 0 {
			d = l.maxBackoff
		}
		e.strikes++
		e.failures, e.first = 0, time.Time{} // the count starts over when the lock ends
		e.lockedUntil = now.Add(d)
		return e.lockedUntil, true
	}
	return time.Time{}, false
}

// expire forgets failures older than the window, a lock that has run out, and the strikes of a
// source that stayed quiet for maxBackoff after its last lock.
func (l *lockout) expire(e *attempts, now time.Time) {
	if !e.lockedUntil.IsZero() && !now.Before(e.lockedUntil) {
		e.lastLock, e.lockedUntil = e.lockedUntil, time.Time{}
	}
	if e.strikes > 0 && e.lockedUntil.IsZero() && now.Sub(e.lastLock) >= l.maxBackoff {
		e.strikes = 0
	}
	if e.failures > 0 && now.Sub(e.first) >= l.window {
		e.failures, e.first = 0, time.Time{}
	}
}

// sweep drops idle entries at most once per window (at once when the table is full), so the
// table holds only recent guessers.
func (l *lockout) sweep(now time.Time) {
	if now.Before(l.nextSweep) && len(l.entries) < maxLockoutEntries {
		return
	}
	l.nextSweep = now.Add(l.window)
	for id, e := range l.entries {
		l.expire(e, now)
		if e.inflight == 0 && e.failures == 0 && e.lockedUntil.IsZero() && e.strikes == 0 {
			delete(l.entries, id)
		}
	}
}

// size returns the number of tracked (account, source) pairs (tests).
func (l *lockout) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
