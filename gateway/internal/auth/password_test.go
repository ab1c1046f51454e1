package auth_test

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

func TestPassword(t *testing.T) {
	u, p := directory.KindUser, directory.KindParticipant
	tests := []struct {
		name      string
		kind      directory.Kind
		username  string
		password  string
		want      auth.Principal
		wantErr   error
		alsoMatch error
	}{
		{name: "user ok", kind: u, username: "alice", password: "alice-pw", want: auth.Principal{Kind: u, UUID: aliceUUID}},
		{name: "superadmin ok", kind: u, username: "root", password: "root-pw", want: auth.Principal{Kind: u, UUID: rootUUID, Admin: true}},
		{name: "participant ok", kind: p, username: "pat", password: "pat-pw", want: auth.Principal{Kind: p, UUID: patUUID}},
		{name: "wrong password", kind: u, username: "alice", password: "alice-PW", wantErr: auth.ErrWrongPassword, alsoMatch: auth.ErrBadCredentials},
		{name: "empty password", kind: u, username: "alice", password: "", wantErr: auth.ErrWrongPassword, alsoMatch: auth.ErrBadCredentials},
		{name: "unknown user", kind: u, username: "mallory", password: "x", wantErr: auth.ErrUnknownUser, alsoMatch: auth.ErrBadCredentials},
		{name: "empty username", kind: u, username: "", password: "x", wantErr: auth.ErrUnknownUser, alsoMatch: auth.ErrBadCredentials},
		{name: "user name as participant", kind: p, username: "alice", password: "alice-pw", wantErr: auth.ErrUnknownUser, alsoMatch: auth.ErrBadCredentials},
		{name: "disabled user, right password", kind: u, username: "off", password: "off-pw", wantErr: auth.ErrDisabled},
		{name: "disabled user, wrong password", kind: u, username: "off", password: "nope", wantErr: auth.ErrBadCredentials},
		{name: "disabled participant", kind: p, username: "offpart", password: "offpart-pw", wantErr: auth.ErrDisabled},
		{name: "device has no password login", kind: directory.KindDevice, username: "Robot", password: "x", wantErr: auth.ErrKind},
		{name: "service has no password login", kind: directory.KindService, username: "Svc", password: "x", wantErr: auth.ErrKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, auth.Config{})
			got, err := e.auth.Password(context.Background(), tt.kind, tt.username, tt.password, attacker)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				if tt.alsoMatch != nil {
					require.ErrorIs(t, err, tt.alsoMatch)
				}
				require.Equal(t, auth.Principal{}, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("reasons are distinct", func(t *testing.T) {
		require.False(t, errors.Is(auth.ErrUnknownUser, auth.ErrWrongPassword))
		require.False(t, errors.Is(auth.ErrWrongPassword, auth.ErrUnknownUser))
		require.False(t, errors.Is(auth.ErrBadCredentials, auth.ErrUnknownUser))
	})
	t.Run("cancelled context", func(t *testing.T) {
		e := newEnv(t, auth.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := e.auth.Password(ctx, u, "alice", "alice-pw", attacker)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// Source addresses of the lockout tests.
const (
	attacker = "198.51.100.7:40000"
	owner    = "203.0.113.5:50000"
)

// step is one action of a lockout scenario.
type step struct {
	advance  time.Duration
	username string // "" is alice
	source   string // "" is attacker
	password string // "alice-pw" is right
	wantErr  error  // nil: success
}

func TestLockout(t *testing.T) {
	const good, bad = "alice-pw", "wrong"
	fail := step{password: bad, wantErr: auth.ErrWrongPassword}
	ok := step{password: good}
	locked := step{password: good, wantErr: auth.ErrLocked}
	after := func(d time.Duration, s step) step { s.advance = d; return s }
	from := func(src string, s step) step { s.source = src; return s }
	as := func(user string, s step) step { s.username = user; return s }
	times := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	seq := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		cfg   auth.Config
		steps []step
	}{
		{name: "four failures do not lock", steps: seq(times(4, fail), []step{ok})},
		{name: "five failures lock, even the right password", steps: seq(times(5, fail), []step{locked, {password: bad, wantErr: auth.ErrLocked}})},
		{name: "still locked just before the end", steps: seq(times(5, fail), []step{after(119*time.Second, locked)})},
		{name: "unlocked after the duration", steps: seq(times(5, fail), []step{after(120*time.Second, ok)})},
		{name: "after unlock the count starts over", steps: seq(times(5, fail), []step{after(121*time.Second, fail)}, times(3, fail), []step{ok})},
		{name: "success resets the count", steps: seq(times(4, fail), []step{ok}, times(4, fail), []step{ok})},
		{name: "failures outside the window are forgotten", steps: seq(times(4, fail), []step{after(121*time.Second, fail)}, times(3, fail), []step{ok})},
		{name: "failures spread within the window lock", steps: seq([]step{fail, after(100*time.Second, fail)}, times(3, fail), []step{locked})},
		{name: "custom limits", cfg: auth.Config{MaxFailedAttempts: 2, LockoutDuration: 10 * time.Second},
			steps: seq(times(2, fail), []step{locked, after(10*time.Second, ok)})},
		{name: "negative max disables the lockout", cfg: auth.Config{MaxFailedAttempts: -1}, steps: seq(times(20, fail), []step{ok})},

		// The lock is on the guesser's address, not on the account.
		{name: "the owner from another address is not locked", steps: seq(times(5, fail), []step{from(owner, ok), locked, from(owner, ok)})},
		{name: "the owner's failures do not add up with the attacker's", steps: seq(times(4, fail), times(4, from(owner, fail)), []step{ok, from(owner, ok)})},
		{name: "the port does not matter", steps: seq(times(5, from("198.51.100.7:1", fail)), []step{from("198.51.100.7:2", locked), from("198.51.100.7", locked)})},
		{name: "IPv4-mapped IPv6 is the IPv4 address", steps: seq(times(5, from("198.51.100.7:1", fail)), []step{from("[::ffff:198.51.100.7]:2", locked)})},
		{name: "one IPv6 /64 is one source", steps: seq(times(5, from("[2001:db8:1:2::1]:1", fail)), []step{from("[2001:db8:1:2:ffff::9]:2", locked), from("[2001:db8:1:3::1]:2", ok)})},
		{name: "other usernames from the same address are not locked", steps: seq(times(5, fail), []step{as("root", step{password: "root-pw"})})},

		// Exponential backoff: each further lock of the same pair lasts twice as long.
		{name: "the second lock lasts twice as long", steps: seq(times(5, fail), []step{after(120*time.Second, fail)}, times(4, fail),
			[]step{after(239*time.Second, locked), after(time.Second, ok)})},
		{name: "the third lock lasts four times as long", steps: seq(times(5, fail), []step{after(120*time.Second, fail)}, times(4, fail),
			[]step{after(240*time.Second, fail)}, times(4, fail), []step{after(479*time.Second, locked), after(time.Second, ok)})},
		{name: "the backoff is capped", cfg: auth.Config{MaxFailedAttempts: 1, LockoutDuration: 10 * time.Second, MaxLockoutDuration: 25 * time.Second},
			steps: []step{fail, after(10*time.Second, fail), after(20*time.Second, fail), after(24*time.Second, locked), after(time.Second, fail), after(25*time.Second, fail)}},
		{name: "a success resets the backoff", steps: seq(times(5, fail), []step{after(120*time.Second, ok)}, times(5, fail), []step{after(120*time.Second, ok)})},
		{name: "an hour of quiet after a lock resets the backoff", steps: seq(times(5, fail), []step{after(120*time.Second+time.Hour, fail)}, times(4, fail),
			[]step{after(120*time.Second, ok)})},
		{name: "less quiet keeps it", steps: seq(times(5, fail), []step{after(120*time.Second+time.Hour-time.Second, fail)}, times(4, fail),
			[]step{after(120*time.Second, locked), after(120*time.Second, ok)})},

		// Unknown usernames are throttled like known ones.
		{name: "an unknown username locks alike", steps: seq(times(5, as("ghost", step{password: bad, wantErr: auth.ErrUnknownUser})),
			[]step{as("ghost", step{password: bad, wantErr: auth.ErrLocked}), after(120*time.Second, as("ghost", step{password: bad, wantErr: auth.ErrUnknownUser}))})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			for i, s := range tt.steps {
				e.clock.Advance(s.advance)
				user, src := cmp.Or(s.username, "alice"), cmp.Or(s.source, attacker)
				_, err := e.auth.Password(context.Background(), directory.KindUser, user, s.password, src)
				if s.wantErr == nil {
					require.NoError(t, err, "step %d", i)
				} else {
					require.ErrorIs(t, err, s.wantErr, "step %d", i)
				}
			}
		})
	}
}

// TestUnknownNamesAnsweredAlike checks that a known and an unknown username get the same answers
// at every step, so a client cannot tell which exists.
func TestUnknownNamesAnsweredAlike(t *testing.T) {
	e := newEnv(t, auth.Config{})
	ctx := context.Background()
	type answer struct {
		text      string
		bad       bool
		lockUntil time.Time
	}
	try := func(user string) answer {
		_, err := e.auth.Password(ctx, directory.KindUser, user, "guess", attacker)
		require.Error(t, err)
		a := answer{text: err.Error(), bad: errors.Is(err, auth.ErrBadCredentials)}
		if le := (*auth.LockedError)(nil); errors.As(err, &le) {
			a.text, a.lockUntil = auth.ErrLocked.Error(), le.Until
		}
		if a.bad {
			a.text = "bad credentials" // the reasons differ on purpose (logs); clients see one answer
		}
		return a
	}
	for i := range 7 {
		known, unknown := try("alice"), try("ghost")
		require.Equal(t, known, unknown, "attempt %d", i+1)
		if i >= 5 {
			require.False(t, known.lockUntil.IsZero(), "attempt %d is refused by the lock", i+1)
		}
	}
}

// TestLockoutDetails checks the lock's end time and that idle entries are swept.
func TestLockoutDetails(t *testing.T) {
	e := newEnv(t, auth.Config{})
	ctx := context.Background()
	start := e.clock.Now()
	for range 5 {
		_, err := e.auth.Password(ctx, directory.KindUser, "alice", "wrong", attacker)
		require.ErrorIs(t, err, auth.ErrWrongPassword)
	}
	_, err := e.auth.Password(ctx, directory.KindUser, "alice", "alice-pw", attacker)
	var le *auth.LockedError
	require.ErrorAs(t, err, &le)
	require.Equal(t, start.Add(auth.DefaultLockoutDuration), le.Until)
	require.Equal(t, auth.ErrLocked.Error(), err.Error())

	// Successes leave nothing behind; failures of unknown usernames are tracked like known ones.
	_, err = e.auth.Password(ctx, directory.KindUser, "root", "root-pw", attacker)
	require.NoError(t, err)
	_, err = e.auth.Password(ctx, directory.KindUser, "ghost", "x", attacker)
	require.ErrorIs(t, err, auth.ErrUnknownUser)
	require.Equal(t, 2, e.auth.LockoutSize())

	// Idle entries are swept once their lock is over and the backoff is forgotten.
	e.clock.Advance(auth.DefaultLockoutDuration + auth.DefaultMaxLockoutDuration)
	_, err = e.auth.Password(ctx, directory.KindUser, "root", "root-pw", attacker)
	require.NoError(t, err)
	require.Equal(t, 0, e.auth.LockoutSize())
}

// concurrentLogins runs n concurrent logins of alice from one address and counts the outcomes.
func concurrentLogins(t *testing.T, e *env, n int, password string) map[string]int {
	t.Helper()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[string]int{}
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := e.auth.Password(context.Background(), directory.KindUser, "alice", password, attacker)
			var outcome string
			switch {
			case err == nil:
				outcome = "ok"
			case errors.Is(err, auth.ErrWrongPassword):
				outcome = "wrong"
			case errors.Is(err, auth.ErrLocked):
				outcome = "locked"
			default:
				outcome = err.Error()
			}
			mu.Lock()
			got[outcome]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}

// slowAlice gives alice a password hash at bcrypt cost 5 (2 ms, 60 ms under -race) instead of the
// minimum 4, so that concurrent checks of her password overlap as they do at the default cost.
func slowAlice(t *testing.T, e *env) {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), 5)
	require.NoError(t, err)
	fixture := string(fixtureYAML(nil, nil))
	fixture = strings.Replace(fixture, cheapHashOf(t, "alice-pw"), string(h), 1)
	snap, err := directory.Parse([]byte(fixture))
	require.NoError(t, err)
	e.store.Swap(snap)
}

// cheapHashOf returns the fixture's hash of pw.
func cheapHashOf(t *testing.T, pw string) string {
	t.Helper()
	fixtureYAML(nil, nil)
	h := hashes[pw]
	require.NotEmpty(t, h)
	return h
}

// TestConcurrentCorrectLogins checks that attempts in flight never count against a right
// password: 100 concurrent correct logins of one account from one address all succeed.
func TestConcurrentCorrectLogins(t *testing.T) {
	e := newEnv(t, auth.Config{MaxLoginWait: time.Minute}) // the bound is not what is tested here
	slowAlice(t, e)
	require.Equal(t, map[string]int{"ok": 100}, concurrentLogins(t, e, 100, "alice-pw"))
	require.Equal(t, 0, e.auth.LockoutSize(), "successes leave nothing behind")
}

// TestConcurrentWrongLogins checks that concurrent guesses wait for a slot instead of exceeding
// the budget: of 100 concurrent wrong passwords exactly 5 are checked, the rest are refused by the
// lock they caused, and the right password is refused until the lock ends.
func TestConcurrentWrongLogins(t *testing.T) {
	e := newEnv(t, auth.Config{MaxLoginWait: time.Minute})
	slowAlice(t, e)
	require.Equal(t, map[string]int{"wrong": auth.DefaultMaxFailedAttempts, "locked": 100 - auth.DefaultMaxFailedAttempts},
		concurrentLogins(t, e, 100, "guess"))
	_, err := e.auth.Password(context.Background(), directory.KindUser, "alice", "alice-pw", attacker)
	require.ErrorIs(t, err, auth.ErrLocked)
	_, err = e.auth.Password(context.Background(), directory.KindUser, "alice", "alice-pw", owner)
	require.NoError(t, err, "the owner, elsewhere, is not locked out")
	e.clock.Advance(auth.DefaultLockoutDuration)
	_, err = e.auth.Password(context.Background(), directory.KindUser, "alice", "alice-pw", attacker)
	require.NoError(t, err)
}

// TestLockoutMetrics checks that locks are counted, per kind.
func TestLockoutMetrics(t *testing.T) {
	m := metrics.New()
	e := newEnv(t, auth.Config{Metrics: m, MaxFailedAttempts: 2})
	for _, user := range []string{"alice", "ghost"} {
		for range 3 {
			_, _ = e.auth.Password(context.Background(), directory.KindUser, user, "guess", attacker)
		}
	}
	_, _ = e.auth.Password(context.Background(), directory.KindParticipant, "pat", "guess", attacker)
	require.InDelta(t, 2, counterValue(t, m, "teragate_login_throttle_events_total", map[string]string{"kind": "user", "event": "locked"}), 0)
	require.InDelta(t, 0, counterValue(t, m, "teragate_login_throttle_events_total", map[string]string{"kind": "participant", "event": "locked"}), 0)
}

// counterValue reads a counter from m's registry; 0 when the series does not exist.
func counterValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return 0
}

func TestHashPassword(t *testing.T) {
	h, err := auth.HashPassword("s3cret")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$2a$10$"), h)
	require.True(t, auth.CheckPassword(h, "s3cret"))
	cheap := cheapHash("s3cret") // cost 10 is slow under -race; check the negative cases on a cheap hash
	require.True(t, auth.CheckPassword(cheap, "s3cret"))
	require.False(t, auth.CheckPassword(cheap, "s3cret "))
	require.False(t, auth.CheckPassword(cheap, ""))
	require.False(t, auth.CheckPassword("not-a-hash", "s3cret"))
	require.False(t, auth.CheckPassword("", ""))

	// The hash is accepted by the directory.
	_, err = directory.Parse([]byte("users: [{uuid: a, username: a, password_hash: '" + h + "'}]"))
	require.NoError(t, err)

	_, err = auth.HashPassword("")
	require.ErrorIs(t, err, auth.ErrEmptyPassword)
	_, err = auth.HashPassword(strings.Repeat("x", 73))
	require.Error(t, err, "bcrypt cannot hash more than 72 bytes")
}
