package auth_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// countedTickets is a Tickets store that can count its live tickets.
type countedTickets interface {
	auth.Tickets
	Len() int
}

// ticketStores runs f against every Tickets implementation (the same tests prove them
// equivalent); new builds a fresh, empty store.
func ticketStores(t *testing.T, f func(t *testing.T, newStore func(ttl time.Duration, now func() time.Time) countedTickets)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func(ttl time.Duration, now func() time.Time) countedTickets { return auth.NewMemoryTickets(ttl, now) })
	})
	t.Run("redis", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		f(t, func(ttl time.Duration, now func() time.Time) countedTickets {
			c := redisClient(t, srv.URL)
			require.NoError(t, c.FlushDB(context.Background()).Err())
			return auth.NewRedisTickets(c, ttl, now)
		})
	})
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestTickets(t *testing.T) {
	ticketStores(t, testTickets)
}

func testTickets(t *testing.T, newStore func(time.Duration, func() time.Time) countedTickets) {
	ctx := context.Background()
	u, p, d := directory.KindUser, directory.KindParticipant, directory.KindDevice
	type redeem struct {
		advance time.Duration
		kind    directory.Kind
		ticket  string // "" = the issued ticket
		want    string
		wantErr error
	}
	tests := []struct {
		name    string
		kind    directory.Kind
		redeems []redeem
	}{
		{name: "redeemed once", kind: u, redeems: []redeem{{kind: u, want: aliceUUID}}},
		{name: "single use", kind: u, redeems: []redeem{{kind: u, want: aliceUUID}, {kind: u, wantErr: auth.ErrTicketInvalid}}},
		{name: "valid until just before the ttl", kind: d, redeems: []redeem{{advance: 59 * time.Second, kind: d, want: aliceUUID}}},
		{name: "expired at the ttl", kind: d, redeems: []redeem{{advance: 60 * time.Second, kind: d, wantErr: auth.ErrTicketExpired}}},
		{name: "expired is consumed", kind: d, redeems: []redeem{{advance: time.Hour, kind: d, wantErr: auth.ErrTicketExpired}, {kind: d, wantErr: auth.ErrTicketInvalid}}},
		{name: "wrong kind fails and does not consume", kind: p, redeems: []redeem{{kind: u, wantErr: auth.ErrTicketInvalid}, {kind: d, wantErr: auth.ErrTicketInvalid}, {kind: p, want: aliceUUID}}},
		{name: "unknown ticket", kind: u, redeems: []redeem{{kind: u, ticket: strings.Repeat("ab", 32), wantErr: auth.ErrTicketInvalid}, {kind: u, want: aliceUUID}}},
		{name: "malformed ticket", kind: u, redeems: []redeem{{kind: u, ticket: "zz" + strings.Repeat("ab", 31), wantErr: auth.ErrTicketInvalid}, {kind: u, ticket: "abc", wantErr: auth.ErrTicketInvalid}}},
		{name: "empty ticket", kind: u, redeems: []redeem{{kind: u, ticket: "-", wantErr: auth.ErrTicketInvalid}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			tk := newStore(0, clock.Now)
			ticket, err := tk.Issue(ctx, tt.kind, aliceUUID)
			require.NoError(t, err)
			require.Regexp(t, `^[0-9a-f]{64}$`, ticket, "256 bits, URL-safe")
			for i, r := range tt.redeems {
				clock.Advance(r.advance)
				tkt := ticket
				switch r.ticket {
				case "":
				case "-":
					tkt = ""
				default:
					tkt = r.ticket
				}
				got, err := tk.Redeem(ctx, tkt, r.kind)
				if r.wantErr != nil {
					require.ErrorIs(t, err, r.wantErr, "redeem %d", i)
					require.Empty(t, got)
					continue
				}
				require.NoError(t, err, "redeem %d", i)
				require.Equal(t, r.want, got)
			}
		})
	}
}

func TestTicketsIssue(t *testing.T) {
	ticketStores(t, testTicketsIssue)
}

func testTicketsIssue(t *testing.T, newStore func(time.Duration, func() time.Time) countedTickets) {
	ctx := context.Background()
	tk := newStore(time.Minute, nil)
	_, err := tk.Issue(ctx, 0, aliceUUID)
	require.ErrorIs(t, err, auth.ErrKind)
	_, err = tk.Issue(ctx, directory.KindUser, "")
	require.ErrorIs(t, err, auth.ErrTicketInvalid)

	seen := map[string]bool{}
	for range 1000 {
		s, err := tk.Issue(ctx, directory.KindUser, aliceUUID)
		require.NoError(t, err)
		require.False(t, seen[s])
		seen[s] = true
	}
	require.Equal(t, 1000, tk.Len())

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = tk.Issue(cctx, directory.KindUser, aliceUUID)
	require.ErrorIs(t, err, context.Canceled)
	_, err = tk.Redeem(cctx, "x", directory.KindUser)
	require.ErrorIs(t, err, context.Canceled)
}

// TestTicketsConcurrentRedeem has P goroutines race to redeem each ticket: exactly one wins.
func TestTicketsConcurrentRedeem(t *testing.T) {
	ticketStores(t, testTicketsConcurrentRedeem)
}

func testTicketsConcurrentRedeem(t *testing.T, newStore func(time.Duration, func() time.Time) countedTickets) {
	ctx := context.Background()
	tk := newStore(0, nil)
	p, n := 8, 300
	if testing.Short() {
		n = 50
	}
	for i := range n {
		ticket, err := tk.Issue(ctx, directory.KindDevice, robotUUID)
		require.NoError(t, err)
		var (
			wins  atomic.Int32
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for g := range p {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				kind := directory.KindDevice
				if g == 0 {
					kind = directory.KindUser // a wrong-kind attempt must not steal the ticket
				}
				uuid, err := tk.Redeem(ctx, ticket, kind)
				if err == nil {
					if uuid != robotUUID {
						t.Errorf("redeemed %q", uuid)
					}
					wins.Add(1)
				} else if !strings.Contains(err.Error(), "invalid ticket") {
					t.Errorf("unexpected error %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.EqualValues(t, 1, wins.Load(), "ticket %d", i)
	}
	require.Zero(t, tk.Len())
}

// TestTicketsHammer issues and redeems from P goroutines × N iterations.
func TestTicketsHammer(t *testing.T) {
	ticketStores(t, testTicketsHammer)
}

func testTicketsHammer(t *testing.T, newStore func(time.Duration, func() time.Time) countedTickets) {
	ctx := context.Background()
	tk := newStore(0, nil)
	p, n := 8, 2000
	if testing.Short() {
		n = 200
	}
	var wg sync.WaitGroup
	for g := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uuid := []string{aliceUUID, patUUID, robotUUID}[g%3]
			for range n {
				ticket, err := tk.Issue(ctx, directory.KindUser, uuid)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := tk.Redeem(ctx, ticket, directory.KindUser)
				if err != nil || got != uuid {
					t.Errorf("redeem: %q %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, tk.Len())
}

// TestRedisTicketsAcrossNodes: a ticket issued through one client (node A) is redeemed through
// another (node B), once; the stored key is the ticket's hash, never the ticket, and carries a TTL.
func TestRedisTicketsAcrossNodes(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	a := auth.NewRedisTickets(redisClient(t, srv.URL), 0, nil)
	b := auth.NewRedisTickets(redisClient(t, srv.URL), 0, nil)
	ticket, err := a.Issue(ctx, directory.KindParticipant, patUUID)
	require.NoError(t, err)
	raw := redisClient(t, srv.URL)
	keys, err := raw.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.NotContains(t, keys[0], ticket)
	ttl, err := raw.PTTL(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0), "the key expires by itself")
	got, err := b.Redeem(ctx, ticket, directory.KindParticipant)
	require.NoError(t, err)
	require.Equal(t, patUUID, got)
	_, err = a.Redeem(ctx, ticket, directory.KindParticipant)
	require.ErrorIs(t, err, auth.ErrTicketInvalid)
}

// TestRedisRevocations: a revocation made through one client is seen through another until the
// token's expiry, when Redis forgets it.
func TestRedisRevocations(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	a := auth.NewRedisRevocations(redisClient(t, srv.URL))
	b := auth.NewRedisRevocations(redisClient(t, srv.URL))
	require.NoError(t, a.Revoke(ctx, "jti-1", time.Now().Add(time.Hour)))
	require.NoError(t, a.Revoke(ctx, "jti-past", time.Now().Add(-time.Second)))
	got, err := b.Revoked(ctx, "jti-1")
	require.NoError(t, err)
	require.True(t, got)
	got, err = b.Revoked(ctx, "jti-past")
	require.NoError(t, err)
	require.False(t, got)
	got, err = b.Revoked(ctx, "jti-2")
	require.NoError(t, err)
	require.False(t, got)
	require.NoError(t, a.Revoke(ctx, "jti-short", time.Now().Add(1100*time.Millisecond)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = b.Revoked(ctx, "jti-short")
		require.NoError(t, err)
		if !got {
			break
		}
		require.True(t, time.Now().Before(deadline), "the revocation should expire with its token")
		time.Sleep(50 * time.Millisecond)
	}
}
