package rooms_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/rooms"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/proto/opentera"
)

// redisNodes returns n services (each with its own Redis client and HTTP server) on one
// redis-server, sharing a clock and the HMAC secret: n nodes of one cluster.
func redisNodes(t *testing.T, n int, mutate func(*rooms.Config)) ([]*fixture, *redis.Client) {
	t.Helper()
	srv := testutil.StartRedis(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	out := make([]*fixture, n)
	for i := range out {
		out[i] = newFixtureOn(t, rooms.NewRedisStore(rooms.RedisStoreConfig{Client: redisClient(t, srv)}), clk, mutate)
	}
	return out, redisClient(t, srv)
}

// TestRedisNodesShareRooms: a room created through node A is read, joined, updated, listed and
// deleted through node B, and the gauges of both nodes count it.
func TestRedisNodesShareRooms(t *testing.T) {
	nodes, _ := redisNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	tok := a.createRoom(bearer("alice"), 3)
	code, body := b.do(http.MethodGet, "/rooms/"+tok, "", nil)
	require.Equal(t, 200, code, body)
	require.Equal(t, "UX", jsonField(t, body, "roomName"))

	st := b.joinAnon(tok, "Natalia")
	code, body = a.do(http.MethodPost, "/rooms/"+tok, `{"action":"status","event":"Session.connectionCreated","state":"waiting","connections":1,"sendStreams":0,"recvStreams":0}`, basic(st))
	require.Equal(t, 204, code, body)
	code, body = b.do(http.MethodPatch, "/rooms/"+tok, `{"roomName":"Renamed"}`, bearer("alice"))
	require.Equal(t, 200, code, body)
	code, body = b.do(http.MethodPatch, "/rooms/"+tok, `{"roomName":"Stolen"}`, bearer("bob"))
	require.Equal(t, 403, code, body)
	code, body = a.do(http.MethodGet, "/rooms/"+tok, "", bearer("alice"))
	require.Equal(t, 200, code, body)
	m := decode(t, body)
	require.Equal(t, "Renamed", m["roomName"])
	require.Len(t, m["participants"], 1)
	require.Equal(t, map[string]any{"waiting": 1.0}, m["sessionState"].(map[string]any)["states"])
	for _, n := range nodes {
		require.EqualValues(t, 1, n.metric("teragate_rooms_rooms", ""))
		require.EqualValues(t, 1, n.metric("teragate_rooms_participants", "waiting"))
	}
	code, body = b.do(http.MethodGet, "/rooms", "", bearer("alice"))
	require.Equal(t, 200, code)
	require.Contains(t, body, tok)

	code, _ = b.do(http.MethodPost, "/rooms/"+tok, `{"action":"leave"}`, basic(st))
	require.Equal(t, 204, code)
	code, _ = a.do(http.MethodPost, "/rooms/"+tok, `{"action":"refresh"}`, basic(st))
	require.Equal(t, 401, code, "the credential left with the participant, on every node")
	code, _ = b.do(http.MethodDelete, "/rooms/"+tok, "", bearer("alice"))
	require.Equal(t, 204, code)
	code, _ = a.do(http.MethodGet, "/rooms/"+tok, "", nil)
	require.Equal(t, 404, code)
	code, body = a.do(http.MethodGet, "/rooms?version=1", "", bearer("alice"))
	require.Equal(t, 200, code)
	require.JSONEq(t, `[{"roomToken":"`+tok+`","deleted":true}]`, body)
	for _, n := range nodes {
		require.EqualValues(t, 0, n.metric("teragate_rooms_rooms", ""))
	}
}

// TestRedisConcurrentJoinsAtCapacity: in every round, eight link-clickers join one room at the
// same moment, half through each node; exactly the room's capacity get in (maxSize 3 with a seat
// kept for the owner: 2), the others get 202 "The room is full.".
func TestRedisConcurrentJoinsAtCapacity(t *testing.T) {
	nodes, _ := redisNodes(t, 2, func(c *rooms.Config) { c.RequestBurst = -1 })
	const rounds, joiners = 100, 8
	for round := range rounds {
		tok := nodes[0].createRoom(bearer("alice"), 3)
		start := make(chan struct{})
		codes := make(chan response, joiners)
		var wg sync.WaitGroup
		for i := range joiners {
			n := nodes[i%2]
			wg.Go(func() {
				<-start
				codes <- n.raw(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"g`+strconv.Itoa(i)+`","clientMaxSize":10}`, nil)
			})
		}
		close(start)
		wg.Wait()
		close(codes)
		ok := 0
		for r := range codes {
			if r.code == 200 {
				ok++
				continue
			}
			require.Equal(t, errBody(400, 202, "The room is full."), r.body, "round %d", round)
		}
		require.Equal(t, 2, ok, "round %d: joins admitted", round)
		_, body := nodes[1].do(http.MethodGet, "/rooms/"+tok, "", bearer("alice"))
		require.Len(t, decode(t, body)["participants"], 2, "round %d", round)
	}
}

// TestRedisHawkReplayAcrossNodes: behind a load balancer both nodes see the same Host, so a Hawk
// request is valid on either; replaying it (same nonce) on the other node is refused, and a
// session registered on one node authenticates on the other.
func TestRedisHawkReplayAcrossNodes(t *testing.T) {
	nodes, _ := redisNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	owner := a.register()
	const host, port = "rooms.example", "443"
	const body = `{"roomName":"UX","roomOwner":"A","maxSize":2}`
	send := func(f *fixture, authz string) response {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/rooms", strings.NewReader(body))
		require.NoError(t, err)
		req.Host = host + ":" + port
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", authz)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, strings.TrimSpace(string(out))}
	}
	sign := func(nonce string) string {
		return rooms.HawkHeader(owner.id, owner.key, rooms.HawkRequest{Method: "POST", Resource: "/rooms", Host: host, Port: port},
			a.clk.Now(), nonce, rooms.HawkPayloadHash("application/json", []byte(body)))
	}
	for _, order := range [][2]*fixture{{a, b}, {b, a}} {
		h := sign("replay-" + order[0].srv.URL)
		r := send(order[0], h)
		require.Equal(t, 201, r.code, r.body)
		r = send(order[1], h)
		require.Equal(t, 401, r.code)
		require.Equal(t, errBody(401, 110, "Invalid nonce"), r.body)
	}
	r := send(b, sign("fresh"))
	require.Equal(t, 201, r.code, "the session registered on A works on B: %s", r.body)
}

// TestRedisSweepOnce: when both nodes sweep at the same moment, each expiry is reported (and its
// presence event published) by exactly one of them.
func TestRedisSweepOnce(t *testing.T) {
	nodes, _ := redisNodes(t, 2, func(c *rooms.Config) { c.ParticipantTTL = time.Second })
	a, b := nodes[0], nodes[1]
	sweepBoth := func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { require.NoError(t, n.svc.Sweep(t.Context())) })
		}
		wg.Wait()
	}
	count := func(match func(published) bool) int {
		n := 0
		for _, f := range nodes {
			for _, p := range f.published() {
				if match(p) {
					n++
				}
			}
		}
		return n
	}
	tok := a.createRoom(bearer("bob"), 3)
	for round := range 20 {
		code, body := nodes[round%2].do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Alice","clientMaxSize":3}`, bearer("alice"))
		require.Equal(t, 200, code, body)
		a.published()
		b.published()
		a.clk.Add(2 * time.Second)
		sweepBoth()
		require.Equal(t, 1, count(func(p published) bool { _, ok := p.msg.(*opentera.LeaveSessionEvent); return ok }), "round %d", round)
	}
	require.EqualValues(t, 20, a.metric("teragate_rooms_participant_changes_total", "expire")+b.metric("teragate_rooms_participant_changes_total", "expire"))

	code, _ := b.do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Alice","clientMaxSize":3}`, bearer("alice"))
	require.Equal(t, 200, code)
	a.published()
	b.published()
	a.clk.Add(1345 * time.Hour)
	sweepBoth()
	require.Equal(t, 1, count(func(p published) bool {
		_, ok := p.msg.(*opentera.StopSessionEvent)
		return ok && p.channel == "module.TeraServer.UserManagerModule.messages"
	}))
}

// globalIndex reports whether key is one of the store's cluster-wide indexes (no expiry of its
// own: trimmed by the sweep) or the shared secret.
func globalIndex(key string) bool {
	return key == rooms.RedisPrefix+"rooms" || key == rooms.RedisPrefix+"hawks" || key == rooms.RedisPrefix+"secret" ||
		strings.HasPrefix(key, rooms.RedisPrefix+"state:")
}

// TestRedisKeysExpire: every record is a key with its own expiry, and Redis deletes it with
// nobody sweeping: rooms, participants, their set, the owner index, tombstones, Hawk sessions and
// nonces. The sweep then drops the index entries left behind, leaving an empty database.
func TestRedisKeysExpire(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := redisClient(t, srv)
	const grace = 100 * time.Millisecond
	st := rooms.NewRedisStore(rooms.RedisStoreConfig{Client: c, Grace: grace})
	ctx := t.Context()
	now := time.Now()
	short := 300 * time.Millisecond

	room := rooms.Room{Token: "tok1", OwnerID: "o1", Owner: "O", MaxSize: 3, ExpiresAt: now.Unix() + 2, SessionID: "s1"}
	require.NoError(t, st.CreateRoom(ctx, room, now, 10))
	require.ErrorIs(t, st.CreateRoom(ctx, room, now, 10), rooms.ErrExists)
	_, _, err := st.Join(ctx, "tok1", now, func(*rooms.Room, []rooms.Participant) (rooms.Participant, error) {
		return rooms.Participant{ID: "p1", ConnectionID: "c1", ClientMaxSize: 3, JoinedAt: now, ExpiresAt: now.Add(short)}, nil
	})
	require.NoError(t, err)
	gone := room
	gone.Token = "tok2"
	require.NoError(t, st.CreateRoom(ctx, gone, now, 10))
	_, _, err = st.DeleteRoom(ctx, "tok2", now, now.Add(short))
	require.NoError(t, err)
	require.NoError(t, st.PutHawkSession(ctx, "h1", "key", now, now.Add(short), 10))
	fresh, err := st.UseNonce(ctx, "h1:n1", now, now.Add(short))
	require.NoError(t, err)
	require.True(t, fresh)

	keys, err := c.Keys(ctx, rooms.RedisPrefix+"*").Result()
	require.NoError(t, err)
	var records []string
	for _, k := range keys {
		if globalIndex(k) {
			continue
		}
		records = append(records, k)
		pttl, err := c.PTTL(ctx, k).Result()
		require.NoError(t, err)
		require.Positive(t, pttl, "%s has an expiry", k)
		require.LessOrEqual(t, pttl, 2*time.Second+grace, "%s lives at most its deadline plus the grace", k)
	}
	slices.Sort(records)
	require.Equal(t, []string{
		rooms.RedisPrefix + "hawk:h1", rooms.RedisPrefix + "nonce:h1:n1", rooms.RedisPrefix + "owner:o1",
		rooms.RedisPrefix + "part:tok1:p1", rooms.RedisPrefix + "parts:tok1", rooms.RedisPrefix + "room:tok1",
		rooms.RedisPrefix + "tombs:o1",
	}, records)
	pttl, err := c.PTTL(ctx, rooms.RedisPrefix+"part:tok1:p1").Result()
	require.NoError(t, err)
	require.LessOrEqual(t, pttl, short+grace)

	require.Eventually(t, func() bool {
		left, err := c.Keys(ctx, rooms.RedisPrefix+"*").Result()
		require.NoError(t, err)
		return !slices.ContainsFunc(left, func(k string) bool { return !globalIndex(k) })
	}, 10*time.Second, 20*time.Millisecond, "Redis deletes every record by itself")

	later := now.Add(time.Hour)
	exp, err := st.Sweep(ctx, later)
	require.NoError(t, err)
	require.Empty(t, exp.Rooms, "nothing left to report: Redis deleted the records")
	left, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.Empty(t, left, "the sweep dropped the index entries")
	_, err = st.Room(ctx, "tok1", now)
	require.ErrorIs(t, err, rooms.ErrNotFound)
}

// TestRedisSharedSecret: every node on one Redis gets the same secret, and keeps it.
func TestRedisSharedSecret(t *testing.T) {
	srv := testutil.StartRedis(t)
	s1, err := rooms.NewRedisStore(rooms.RedisStoreConfig{Client: redisClient(t, srv)}).SharedSecret(context.Background())
	require.NoError(t, err)
	require.Len(t, s1, 32)
	s2, err := rooms.NewRedisStore(rooms.RedisStoreConfig{Client: redisClient(t, srv)}).SharedSecret(context.Background())
	require.NoError(t, err)
	require.Equal(t, s1, s2)
}

// TestRedisRateLimitAcrossNodes: with the Redis store the rate limits are the cluster's: a
// registration flood spread over two nodes gets one burst in total, and the limiter's key expires
// when its bucket is full again.
func TestRedisRateLimitAcrossNodes(t *testing.T) {
	nodes, c := redisNodes(t, 2, func(cfg *rooms.Config) { cfg.RegistrationBurst, cfg.RegistrationInterval = 3, time.Hour })
	ok := 0
	for i := range 10 {
		r := nodes[i%2].raw(http.MethodPost, "/registration", "", nil)
		if r.code == http.StatusOK {
			ok++
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, r.code, r.body)
	}
	require.Equal(t, 3, ok, "one burst for the cluster")
	keys, err := c.Keys(t.Context(), rooms.RedisPrefix+"limit:registration:*").Result()
	require.NoError(t, err)
	require.Equal(t, []string{rooms.RedisPrefix + "limit:registration:src:127.0.0.1"}, keys)
	pttl, err := c.PTTL(t.Context(), keys[0]).Result()
	require.NoError(t, err)
	require.Greater(t, pttl, 2*time.Hour, "three tokens taken: full again in three intervals")
	require.LessOrEqual(t, pttl, 3*time.Hour)
}
