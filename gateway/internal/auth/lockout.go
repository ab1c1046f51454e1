package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// throttle limits password guesses per (kind, username, source address).
//
// A guesser, not an account, is locked: max wrong passwords from one source for one username lock
// that pair for base, the next lock of the same pair lasts twice as long, and so on up to maxLock.
// The rightful owner logging in from another address is not affected. Unknown usernames are
// throttled exactly like known ones, so the answers do not tell which usernames exist.
//
// Only wrong passwords count. An attempt takes a slot before its (slow) password check, and
// failures plus attempts in flight never exceed max; an attempt that finds every slot taken waits
// in line (at most maxWait, or until its context ends) for one to free instead of being refused,
// so a burst of correct logins all succeed while a burst of guesses checks at most max passwords.
// A freed slot is handed to the head of the line (one wake-up per slot, no thundering herd); a
// lock answers the whole line at once.
//
// Entries are keyed by a hash of the triple, so a long username costs no memory; at most maxKeys
// are kept (idle ones are swept once per base; when the map is full the entry whose lock ends
// first is dropped).
type throttle struct {
	max     int // ≤ 0: disabled
	base    time.Duration
	maxLock time.Duration
	maxWait time.Duration
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	keys      map[throttleKey]*attempts
	nextSweep time.Time
}

// throttleKey is the SHA-256 of a (kind, username, source) triple.
type throttleKey [sha256.Size]byte

type attempts struct {
	failures    int       // wrong passwords since first, below max unless locked
	first       time.Time // first failure of the current window
	lastFail    time.Time
	lockedUntil time.Time
	level       int       // locks so far; the next lasts base<<level, capped at maxLock
	inflight    int       // attempts holding a slot
	queue       []*waiter // attempts waiting for a slot, in arrival order
}

// defaultMaxKeys bounds the throttle's memory (about 200 bytes an entry).
const defaultMaxKeys = 100_000

func newThrottle(max int, base, maxLock, maxWait time.Duration, now func() time.Time) *throttle {
	return &throttle{max: max, base: base, maxLock: maxLock, maxWait: maxWait, maxKeys: defaultMaxKeys, now: now,
		keys: make(map[throttleKey]*attempts)}
}

func makeKey(kind directory.Kind, username, source string) throttleKey {
	b := make([]byte, 0, 9+len(username)+len(source))
	b = append(b, byte(kind))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(username))) // no two triples hash the same bytes
	b = append(b, username...)
	b = append(b, source...)
	return sha256.Sum256(b)
}

// sourceAddr reduces a client address (an IP, or host:port as in http.Request.RemoteAddr) to the
// unit the throttle counts by: the IPv4 address, or the /64 prefix of an IPv6 address (one host
// commonly owns a whole /64). Anything unparsable is used as is.
func sourceAddr(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // zone
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return remote
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// lockFor returns how long the lock of the given level lasts.
func (l *throttle) lockFor(level int) time.Duration {
	d := l.base
	for range level {
		if d >= l.maxLock/2 {
			return l.maxLock
		}
		d *= 2
	}
	return min(d, l.maxLock)
}

// acquire takes a slot for an attempt of key, waiting in line for one when they are all taken. It
// returns a *LockedError while the key is locked, [ErrBusy] when no slot came within maxWait, or
// ctx's error. After a nil error, release must be called exactly once.
func (l *throttle) acquire(ctx context.Context, k throttleKey) error {
	if l.max <= 0 {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	e := l.entry(k, now)
	if now.Before(e.lockedUntil) {
		l.mu.Unlock()
		return &LockedError{Until: e.lockedUntil}
	}
	l.expire(e, now)
	if len(e.queue) == 0 && e.failures+e.inflight < l.max {
		e.inflight++
		l.mu.Unlock()
		return nil
	}
	// Every slot is held by an attempt in flight (failures alone lock before reaching max): wait
	// in line. release hands a freed slot to the head of the line, or the lock to everyone.
	w := &waiter{done: make(chan error, 1)}
	e.queue = append(e.queue, w)
	l.mu.Unlock()

	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	var err error
	select {
	case err = <-w.done:
		return err
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = ErrBusy
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(e.queue, w); i >= 0 {
		e.queue = slices.Delete(e.queue, i, i+1)
		return err
	}
	return <-w.done // answered meanwhile: take the slot (or the lock) it was given
}

// waiter is an attempt waiting for a slot.
type waiter struct {
	done chan error // receives nil with a slot, or a *LockedError
}

// release ends an attempt begun with a successful acquire: ok is false for a wrong password. It
// reports whether this failure locked the key, and until when.
func (l *throttle) release(k throttleKey, ok bool) (until time.Time, locked bool) {
	if l.max <= 0 {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[k]
	if e == nil { // cannot happen: entries with attempts in flight are neither swept nor evicted
		return time.Time{}, false
	}
	e.inflight--
	now := l.now()
	if ok {
		e.failures, e.first, e.lastFail, e.lockedUntil, e.level = 0, time.Time{}, time.Time{}, time.Time{}, 0
	} else {
		l.expire(e, now)
		if e.failures == 0 {
			e.first = now
		}
		e.failures++
		e.lastFail = now
		if e.failures >= l.max && !now.Before(e.lockedUntil) {
			e.lockedUntil = now.Add(l.lockFor(e.level))
			e.level++
			until, locked = e.lockedUntil, true
		}
	}
	l.serve(e, now)
	if e.idle() {
		delete(l.keys, k)
	}
	return until, locked
}

// serve answers the waiters of e: all of them while e is locked, otherwise as many as there are
// free slots, in arrival order. Called with mu held.
func (l *throttle) serve(e *attempts, now time.Time) {
	if now.Before(e.lockedUntil) {
		for _, w := range e.queue {
			w.done <- &LockedError{Until: e.lockedUntil}
		}
		e.queue = e.queue[:0]
		return
	}
	n := 0
	for n < len(e.queue) && e.failures+e.inflight < l.max {
		e.inflight++
		e.queue[n].done <- nil
		n++
	}
	e.queue = slices.Delete(e.queue, 0, n)
}

// entry returns k's entry, creating it. Called with mu held.
func (l *throttle) entry(k throttleKey, now time.Time) *attempts {
	l.sweep(now, false)
	if e := l.keys[k]; e != nil {
		return e
	}
	if len(l.keys) >= l.maxKeys {
		l.sweep(now, true)
		if len(l.keys) >= l.maxKeys {
			l.evict()
		}
	}
	e := &attempts{}
	l.keys[k] = e
	return e
}

// idle reports whether e holds nothing worth keeping.
func (e *attempts) idle() bool {
	return e.inflight == 0 && len(e.queue) == 0 && e.failures == 0 && e.lockedUntil.IsZero() && e.level == 0
}

// expire forgets a lock that has run out (the failure count starts over), failures older than
// base, and the backoff level once the key has been quiet for maxLock after its lock.
func (l *throttle) expire(e *attempts, now time.Time) {
	if !e.lockedUntil.IsZero() && !now.Before(e.lockedUntil) {
		if e.failures > 0 && e.first.Before(e.lockedUntil) { // the failures that caused the lock
			e.failures, e.first = 0, time.Time{}
		}
		if now.Sub(e.lockedUntil) >= l.maxLock && now.Sub(e.lastFail) >= l.maxLock {
			e.lockedUntil, e.level = time.Time{}, 0
		}
	}
	if e.failures > 0 && now.Sub(e.first) >= l.base {
		e.failures, e.first = 0, time.Time{}
	}
}

// sweep drops idle entries, at most once per base unless forced. Called with mu held.
func (l *throttle) sweep(now time.Time, force bool) {
	if !force && now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(l.base)
	for k, e := range l.keys {
		l.expire(e, now)
		if e.idle() {
			delete(l.keys, k)
		}
	}
}

// evict drops the entry whose lock ends first among those without attempts in flight, to make
// room when the map is full of live entries. Called with mu held.
func (l *throttle) evict() {
	var (
		victim throttleKey
		until  time.Time
		found  bool
	)
	for k, e := range l.keys {
		if e.inflight > 0 || len(e.queue) > 0 {
			continue
		}
		if !found || e.lockedUntil.Before(until) {
			victim, until, found = k, e.lockedUntil, true
		}
	}
	if found {
		delete(l.keys, victim)
	}
}

// size returns the number of tracked keys (tests).
func (l *throttle) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
