package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
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
			got, err := e.auth.Password(context.Background(), tt.kind, tt.username, tt.password)
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
		_, err := e.auth.Password(ctx, u, "alice", "alice-pw")
		require.ErrorIs(t, err, context.Canceled)
	})
}

// step is one action of a lockout scenario.
type step struct {
	advance  time.Duration
	password string // "alice-pw" is right
	wantErr  error  // nil: success
}

func TestLockout(t *testing.T) {
	const good, bad = "alice-pw", "wrong"
	fail := step{password: bad, wantErr: auth.ErrWrongPassword}
	ok := step{password: good}
	locked := step{password: good, wantErr: auth.ErrLocked}
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
		{name: "still locked just before the end", steps: seq(times(5, fail), []step{{advance: 119 * time.Second, password: good, wantErr: auth.ErrLocked}})},
		{name: "unlocked after the duration", steps: seq(times(5, fail), []step{{advance: 120 * time.Second, password: good}})},
		{name: "after unlock the count starts over", steps: seq(times(5, fail), []step{{advance: 121 * time.Second, password: bad, wantErr: auth.ErrWrongPassword}}, times(3, fail), []step{ok})},
		{name: "success resets the count", steps: seq(times(4, fail), []step{ok}, times(4, fail), []step{ok})},
		{name: "failures outside the window are forgotten", steps: seq(times(4, fail), []step{{advance: 121 * time.Second, password: bad, wantErr: auth.ErrWrongPassword}}, times(3, fail), []step{ok})},
		{name: "failures spread within the window lock", steps: seq([]step{fail, {advance: 100 * time.Second, password: bad, wantErr: auth.ErrWrongPassword}}, times(3, fail), []step{locked})},
		{name: "custom limits", cfg: auth.Config{MaxFailedAttempts: 2, LockoutDuration: 10 * time.Second},
			steps: seq(times(2, fail), []step{locked, {advance: 10 * time.Second, password: good}})},
		{name: "negative max disables the lockout", cfg: auth.Config{MaxFailedAttempts: -1}, steps: seq(times(20, fail), []step{ok})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			for i, s := range tt.steps {
				e.clock.Advance(s.advance)
				_, err := e.auth.Password(context.Background(), directory.KindUser, "alice", s.password)
				if s.wantErr == nil {
					require.NoError(t, err, "step %d", i)
				} else {
					require.ErrorIs(t, err, s.wantErr, "step %d", i)
				}
			}
		})
	}
}

func TestLockoutDetails(t *testing.T) {
	e := newEnv(t, auth.Config{})
	ctx := context.Background()
	start := e.clock.Now()
	for range 5 {
		_, err := e.auth.Password(ctx, directory.KindUser, "alice", "wrong")
		require.ErrorIs(t, err, auth.ErrWrongPassword)
	}
	_, err := e.auth.Password(ctx, directory.KindUser, "alice", "alice-pw")
	var le *auth.LockedError
	require.ErrorAs(t, err, &le)
	require.Equal(t, start.Add(auth.DefaultLockoutDuration), le.Until)
	require.Equal(t, auth.ErrLocked.Error(), err.Error())

	// Other accounts are not affected.
	_, err = e.auth.Password(ctx, directory.KindUser, "root", "root-pw")
	require.NoError(t, err)
	require.Equal(t, 1, e.auth.LockoutSize())

	// Idle entries are swept once their lock is over and the backoff forgotten (32 windows).
	e.clock.Advance(34 * auth.DefaultLockoutDuration)
	_, err = e.auth.Password(ctx, directory.KindUser, "root", "root-pw")
	require.NoError(t, err)
	require.Equal(t, 0, e.auth.LockoutSize())
}

// TestLockoutConcurrentGuesses checks that concurrent guesses cannot exceed the attempt budget.
func TestLockoutConcurrentGuesses(t *testing.T) {
	e := newEnv(t, auth.Config{})
	const p = 100
	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		wrong, locked int
	)
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.auth.Password(context.Background(), directory.KindUser, "alice", "guess")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, auth.ErrWrongPassword):
				wrong++
			case errors.Is(err, auth.ErrLocked):
				locked++
			default:
				t.Errorf("unexpected %v", err)
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, wrong, auth.DefaultMaxFailedAttempts, "at most 5 passwords were actually tried")
	require.Equal(t, p, wrong+locked)
	_, err := e.auth.Password(context.Background(), directory.KindUser, "alice", "alice-pw")
	require.ErrorIs(t, err, auth.ErrLocked)
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

// TestLockoutConcurrentRightPasswords: 100 concurrent logins with the right password all succeed;
// attempts beyond the budget wait for a slot instead of being refused.
func TestLockoutConcurrentRightPasswords(t *testing.T) {
	e := newEnv(t, auth.Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.auth.Password(auth.WithSource(context.Background(), "192.0.2.1:5555"), directory.KindUser, "alice", "alice-pw")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestLockoutPerSource: guesses from one address lock that address out of the account, not the
// owner logging in from elsewhere; locks in a row double; unknown usernames are answered exactly
// like known ones, lock included.
func TestLockoutPerSource(t *testing.T) {
	e := newEnv(t, auth.Config{})
	attacker := auth.WithSource(context.Background(), "198.51.100.7:40000")
	attacker2 := auth.WithSource(context.Background(), "198.51.100.7:40001") // same host, other port
	owner := auth.WithSource(context.Background(), "203.0.113.9:1234")
	try := func(ctx context.Context, user, pw string) error {
		_, err := e.auth.Password(ctx, directory.KindUser, user, pw)
		return err
	}
	for range 5 {
		require.ErrorIs(t, try(attacker, "alice", "guess"), auth.ErrWrongPassword)
	}
	require.ErrorIs(t, try(attacker2, "alice", "alice-pw"), auth.ErrLocked, "the attacker's address is locked, whatever its port")
	require.NoError(t, try(owner, "alice", "alice-pw"), "the owner, elsewhere, is not")

	// Unknown and known names: the same answers in the same order.
	for _, user := range []string{"root", "ghost"} {
		var got []string
		for range 6 {
			err := try(attacker, user, "guess")
			switch {
			case errors.Is(err, auth.ErrLocked):
				got = append(got, "locked")
			case errors.Is(err, auth.ErrBadCredentials):
				got = append(got, "bad")
			default:
				t.Fatalf("%s: unexpected %v", user, err)
			}
		}
		require.Equal(t, []string{"bad", "bad", "bad", "bad", "bad", "locked"}, got, user)
	}

	// Exponential backoff: the second lock in a row lasts twice as long.
	start := e.clock.Now()
	var le *auth.LockedError
	require.ErrorAs(t, try(attacker, "alice", "alice-pw"), &le)
	require.Equal(t, start.Add(auth.DefaultLockoutDuration), le.Until)
	e.clock.Advance(auth.DefaultLockoutDuration)
	for range 5 {
		require.ErrorIs(t, try(attacker, "alice", "guess"), auth.ErrWrongPassword)
	}
	require.ErrorAs(t, try(attacker, "alice", "alice-pw"), &le)
	require.Equal(t, e.clock.Now().Add(2*auth.DefaultLockoutDuration), le.Until)
	e.clock.Advance(2 * auth.DefaultLockoutDuration)
	require.NoError(t, try(attacker, "alice", "alice-pw"), "a success after the lock clears the strikes")
}
