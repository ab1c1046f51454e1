package rooms_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/rooms"
)

const refused = "teragate_rooms_refused_total"

// TestRegistrationRateLimitPerSource floods POST /registration from one TCP source over one
// keep-alive connection: the burst is served, the rest gets 429 errno 123 with the wait as
// Retry-After and stores no session, while a second source is still served; the refusals are
// counted; the bucket refills with the clock.
func TestRegistrationRateLimitPerSource(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		for _, tc := range []struct {
			name       string
			burst      int
			interval   time.Duration
			flood      int
			wantOK     int
			retryAfter string // "" when nothing is refused
		}{
			{"defaults: 20 then one every 3s", 0, 0, 50, 20, "3"},
			{"burst 5, one every 10s", 5, 10 * time.Second, 12, 5, "10"},
			{"burst 1, one every 1.5s (Retry-After rounded up)", 1, 1500 * time.Millisecond, 4, 1, "2"},
			{"disabled", -1, 0, 50, 50, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, sk, func(c *rooms.Config) { c.RegistrationBurst, c.RegistrationInterval = tc.burst, tc.interval })
				attacker, other := f.from("127.0.0.1"), f.from("127.0.0.2")
				ok := 0
				for range tc.flood {
					r := f.rawVia(attacker, http.MethodPost, "/registration", "", nil)
					switch r.code {
					case http.StatusOK:
						require.Len(t, r.hdr.Get("Hawk-Session-Token"), 64)
						ok++
					case http.StatusTooManyRequests:
						require.Equal(t, errBody(429, rooms.ErrnoTooManyRequests, "Too many requests."), r.body)
						require.Equal(t, tc.retryAfter, r.hdr.Get("Retry-After"))
						require.Empty(t, r.hdr.Get("Hawk-Session-Token"))
					default:
						t.Fatalf("registration: %d %s", r.code, r.body)
					}
				}
				require.Equal(t, tc.wantOK, ok)
				require.Equal(t, float64(tc.flood-tc.wantOK), f.metric(refused, rooms.RefusedRegistrationRate))

				r := f.rawVia(other, http.MethodPost, "/registration", "", nil)
				require.Equal(t, http.StatusOK, r.code, "another source is served: %s", r.body)
				if tc.retryAfter == "" {
					return
				}
				wait, err := strconv.Atoi(tc.retryAfter)
				require.NoError(t, err)
				f.clk.Add(time.Duration(wait) * time.Second)
				require.Equal(t, http.StatusOK, f.rawVia(attacker, http.MethodPost, "/registration", "", nil).code, "refilled after Retry-After")
				require.Equal(t, http.StatusTooManyRequests, f.rawVia(attacker, http.MethodPost, "/registration", "", nil).code)
			})
		}
	})
}

// TestRequestRateLimitPerIdentity: each identity (Hawk session, teragate principal, link-clicker
// session) and each anonymous joiner's source has its own budget; a flood by one is refused with
// 429 errno 123 and Retry-After while another identity of the same source is served.
func TestRequestRateLimitPerIdentity(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		const burst = 5
		const create = `{"roomName":"UX","roomOwner":"A","maxSize":3}`
		const join = `{"action":"join","displayName":"G","clientMaxSize":10}`
		for _, tc := range []struct {
			name string
			// setup returns the flooding request and the other identity's request.
			setup func(f *fixture) (flood, other func() response)
		}{
			{"hawk create", func(f *fixture) (func() response, func() response) {
				a, b := f.register(), f.register()
				return func() response { return f.raw(http.MethodPost, "/rooms", create, f.hawk(a, 0, "")) },
					func() response { return f.raw(http.MethodPost, "/rooms", create, f.hawk(b, 0, "")) }
			}},
			{"hawk list (reads record nonces too)", func(f *fixture) (func() response, func() response) {
				a, b := f.register(), f.register()
				return func() response { return f.raw(http.MethodGet, "/rooms", "", f.hawk(a, 0, "")) },
					func() response { return f.raw(http.MethodGet, "/rooms", "", f.hawk(b, 0, "")) }
			}},
			{"teragate token create", func(f *fixture) (func() response, func() response) {
				return func() response { return f.raw(http.MethodPost, "/rooms", create, bearer("alice")) },
					func() response { return f.raw(http.MethodPost, "/rooms", create, bearer("bob")) }
			}},
			{"link-clicker refresh", func(f *fixture) (func() response, func() response) {
				room := f.createRoom(bearer("service"), 3)
				a, b := f.joinAnon(room, "A"), f.joinAnon(room, "B")
				refresh := `{"action":"refresh"}`
				return func() response { return f.raw(http.MethodPost, "/rooms/"+room, refresh, basic(a)) },
					func() response { return f.raw(http.MethodPost, "/rooms/"+room, refresh, basic(b)) }
			}},
			{"anonymous join per source", func(f *fixture) (func() response, func() response) {
				full, free := f.createRoom(bearer("service"), 3), f.createRoom(bearer("service"), 3)
				attacker, other := f.from("127.0.0.1"), f.from("127.0.0.2")
				return func() response { return f.rawVia(attacker, http.MethodPost, "/rooms/"+full, join, nil) },
					func() response { return f.rawVia(other, http.MethodPost, "/rooms/"+free, join, nil) }
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, sk, func(c *rooms.Config) { c.RequestBurst, c.RequestInterval = burst, time.Second })
				flood, other := tc.setup(f)
				for i := range burst {
					r := flood()
					require.NotEqual(t, http.StatusTooManyRequests, r.code, "request %d within the burst: %s", i, r.body)
				}
				for range 3 {
					r := flood()
					require.Equal(t, http.StatusTooManyRequests, r.code, r.body)
					require.Equal(t, errBody(429, rooms.ErrnoTooManyRequests, "Too many requests."), r.body)
					require.Equal(t, "1", r.hdr.Get("Retry-After"))
				}
				require.Equal(t, float64(3), f.metric(refused, rooms.RefusedRequestRate))
				r := other()
				require.Less(t, r.code, 300, "another identity is served: %d %s", r.code, r.body)
				f.clk.Add(time.Second)
				require.NotEqual(t, http.StatusTooManyRequests, flood().code, "one more after a second")
			})
		}
	})
}

// TestRefusedHawkRequestRecordsNoNonce: the identity limit is applied before the Hawk nonce is
// stored, so a refused flood leaves nothing behind and the same request is accepted once the
// budget refills.
func TestRefusedHawkRequestRecordsNoNonce(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, func(c *rooms.Config) { c.RequestBurst, c.RequestInterval = 1, 10*time.Second })
		owner := f.register()
		require.Equal(t, http.StatusOK, f.raw(http.MethodGet, "/rooms", "", f.hawk(owner, 0, "")).code)
		sign := f.hawk(owner, 0, "same-nonce")
		require.Equal(t, http.StatusTooManyRequests, f.raw(http.MethodGet, "/rooms", "", sign).code)
		f.clk.Add(10 * time.Second)
		r := f.raw(http.MethodGet, "/rooms", "", f.hawk(owner, -10*time.Second, "same-nonce"))
		require.Equal(t, http.StatusOK, r.code, "nonce of the refused request was not recorded: %s", r.body)
	})
}

// TestRoomsPerOwnerCap: an owner at MaxRoomsPerOwner live rooms gets 403 errno 205 and the room is
// not stored; other owners are unaffected; deletion and expiry free a place (before any sweep).
func TestRoomsPerOwnerCap(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		const limit = 3
		const create = `{"roomName":"UX","roomOwner":"A","maxSize":3,"expiresIn":1}`
		for _, tc := range []struct {
			name        string
			owner, peer func(f *fixture) cred
		}{
			{"hawk", freshHawk, freshHawk},
			{"teragate token", func(*fixture) cred { return bearer("alice") }, func(*fixture) cred { return bearer("bob") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, sk, func(c *rooms.Config) { c.MaxRoomsPerOwner = limit })
				owner, peer := tc.owner(f), tc.peer(f)
				var toks []string
				for range limit {
					code, body := f.do(http.MethodPost, "/rooms", create, owner)
					require.Equal(t, http.StatusCreated, code, body)
					toks = append(toks, jsonField(t, body, "roomToken").(string))
				}
				want := errBody(403, rooms.ErrnoTooManyRooms, "Too many rooms: an owner may have at most 3.")
				code, body := f.do(http.MethodPost, "/rooms", create, owner)
				require.Equal(t, http.StatusForbidden, code)
				require.Equal(t, want, body)
				require.Equal(t, float64(1), f.metric(refused, rooms.RefusedRoomsPerOwner))
				code, body = f.do(http.MethodGet, "/rooms", "", owner)
				require.Equal(t, http.StatusOK, code)
				var listed []any
				require.NoError(t, json.Unmarshal([]byte(body), &listed))
				require.Len(t, listed, limit, "the refused room was not stored")

				code, _ = f.do(http.MethodPost, "/rooms", create, peer)
				require.Equal(t, http.StatusCreated, code, "another owner is not affected")

				code, _ = f.do(http.MethodDelete, "/rooms/"+toks[0], "", owner)
				require.Equal(t, http.StatusNoContent, code)
				code, body = f.do(http.MethodPost, "/rooms", create, owner)
				require.Equal(t, http.StatusCreated, code, "a deletion frees a place: %s", body)
				code, _ = f.do(http.MethodPost, "/rooms", create, owner)
				require.Equal(t, http.StatusForbidden, code)

				f.clk.Add(time.Hour) // every room expires; no sweep has run
				for range limit {
					code, body = f.do(http.MethodPost, "/rooms", create, owner)
					require.Equal(t, http.StatusCreated, code, "expired rooms do not count: %s", body)
				}
				code, _ = f.do(http.MethodPost, "/rooms", create, owner)
				require.Equal(t, http.StatusForbidden, code)
				require.Equal(t, float64(3), f.metric(refused, rooms.RefusedRoomsPerOwner))
			})
		}
	})
}

// freshHawk registers a Hawk client and returns a signer with a fresh nonce per request.
func freshHawk(f *fixture) cred {
	c := f.register()
	return func(r *http.Request, b string) { f.hawk(c, 0, "")(r, b) }
}

// TestHawkSessionCap: with MaxHawkSessions live sessions, registration answers 503 errno 206 with
// Retry-After and evicts nothing (existing sessions keep working); unused sessions expire after
// HawkUnusedSessionTTL, used ones live HawkSessionTTL, and expired ones free places before any
// sweep.
func TestHawkSessionCap(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, func(c *rooms.Config) {
			c.MaxHawkSessions, c.HawkUnusedSessionTTL, c.HawkSessionTTL = 3, time.Hour, 10*time.Hour
		})
		used, usedOnce := f.register(), f.register()
		f.register() // never used
		refuse := func() {
			t.Helper()
			r := f.raw(http.MethodPost, "/registration", "", nil)
			require.Equal(t, http.StatusServiceUnavailable, r.code)
			require.Equal(t, errBody(503, rooms.ErrnoTooManySessions, "Too many sessions; retry later."), r.body)
			require.Equal(t, "30", r.hdr.Get("Retry-After"))
			require.Empty(t, r.hdr.Get("Hawk-Session-Token"))
		}
		refuse()
		require.Equal(t, float64(1), f.metric(refused, rooms.RefusedHawkSessions))
		for _, c := range []hawkCreds{used, usedOnce} {
			code, body := f.do(http.MethodGet, "/rooms", "", f.hawk(c, 0, ""))
			require.Equal(t, http.StatusOK, code, "nothing was evicted: %s", body)
		}
		// A session used now lives 10h from now; one never used after registration lives 1h.
		f.clk.Add(30 * time.Minute)
		require.Equal(t, http.StatusOK, f.raw(http.MethodGet, "/rooms", "", f.hawk(used, 0, "")).code)
		f.clk.Add(45 * time.Minute) // 75 min after registration: the third session (never used) expired
		f.register()
		refuse()
		require.Equal(t, http.StatusOK, f.raw(http.MethodGet, "/rooms", "", f.hawk(usedOnce, 0, "")).code,
			"a session used once lives HawkSessionTTL")
		require.Equal(t, float64(2), f.metric(refused, rooms.RefusedHawkSessions))
	})
}

// TestTokenBucket is the limiter on its own: burst, refill, independent keys, the key cap (a new
// key is refused while every bucket is draining, never an old bucket dropped) and Prune.
func TestTokenBucket(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name     string
		burst    int
		interval time.Duration
		at       []time.Duration // request times from t0, one key
		want     []time.Duration // wait answered
	}{
		{"burst 3", 3, time.Second, []time.Duration{0, 0, 0, 0, 500 * time.Millisecond, time.Second},
			[]time.Duration{0, 0, 0, time.Second, 500 * time.Millisecond, 0}},
		{"burst 1", 1, 2 * time.Second, []time.Duration{0, time.Second, 2 * time.Second, 2 * time.Second},
			[]time.Duration{0, time.Second, 0, 2 * time.Second}},
		{"refills to the burst, not beyond", 2, time.Second, []time.Duration{0, time.Hour, time.Hour, time.Hour},
			[]time.Duration{0, 0, 0, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := rooms.NewTokenBucket(tc.burst, tc.interval, 0)
			for i, at := range tc.at {
				wait, err := b.Allow(ctx, "k", t0.Add(at))
				require.NoError(t, err)
				require.Equal(t, tc.want[i], wait, "request %d at %s", i, at)
			}
		})
	}
	t.Run("key cap", func(t *testing.T) {
		b := rooms.NewTokenBucket(1, time.Minute, 2)
		for _, k := range []string{"a", "b"} {
			wait, _ := b.Allow(ctx, k, t0)
			require.Zero(t, wait)
		}
		wait, _ := b.Allow(ctx, "c", t0.Add(2*time.Second))
		require.Equal(t, time.Minute, wait, "a third key is refused while a and b drain")
		wait, _ = b.Allow(ctx, "a", t0.Add(2*time.Second))
		require.Equal(t, 58*time.Second, wait, "a's bucket was kept")
		wait, _ = b.Allow(ctx, "c", t0.Add(time.Minute))
		require.Zero(t, wait, "refilled buckets are dropped to make room")
		b.Prune(t0.Add(2 * time.Minute))
		require.Zero(t, b.Len())
	})
}
