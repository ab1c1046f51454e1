package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rooms"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// roomsNodes starts n gateways on srv, sharing the JWT key (nodes behind one load balancer),
// with mutate applied to each configuration.
func roomsNodes(t *testing.T, srv *testutil.RedisServer, n int, mutate func(*gateway.Config)) []*env {
	t.Helper()
	out := make([]*env, n)
	for i := range out {
		out[i] = startGateway(t, func(c *gateway.Config) {
			c.Redis = srv.URL
			c.JWTKey = "two-node-test-key"
			c.RedisNodeTTL = gateway.Duration(1500 * time.Millisecond)
			if mutate != nil {
				mutate(c)
			}
		})
	}
	return out
}

// lbHost is the Host every node sees behind the load balancer (Hawk MACs cover it).
const lbHost, lbPort = "rooms.example", "443"

// hawkClient is a registered Hawk client of the cluster.
type hawkClient struct{ id, key string }

// register creates a Hawk session through e.
func register(t *testing.T, e *env) hawkClient {
	t.Helper()
	resp, err := e.client.Post(e.base+"/registration", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	id, key, err := rooms.DeriveHawkCredentials(resp.Header.Get("Hawk-Session-Token"))
	require.NoError(t, err)
	return hawkClient{id, key}
}

// sign returns a Hawk Authorization header for a request as the load balancer forwards it.
func (h hawkClient) sign(method, path, body, nonce string) string {
	hash := ""
	if body != "" {
		hash = rooms.HawkPayloadHash("application/json", []byte(body))
	}
	return rooms.HawkHeader(h.id, h.key, rooms.HawkRequest{Method: method, Resource: path, Host: lbHost, Port: lbPort}, time.Now(), nonce, hash)
}

// viaLB sends a request to node e with the load balancer's Host header.
func viaLB(t *testing.T, e *env, method, path, authz, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Host = lbHost + ":" + lbPort
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", authz)
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestRoomsRedisTwoNodes: with two nodes on one Redis, a room created through node A is read,
// joined, updated, listed and deleted through node B, a link-clicker's credential works on both,
// both nodes' gauges count the cluster's rooms, and a Hawk request replayed on the other node is
// refused while the session registered on A authenticates on B.
func TestRoomsRedisTwoNodes(t *testing.T) {
	nodes := roomsNodes(t, testutil.StartRedis(t), 2, nil)
	a, b := nodes[0], nodes[1]
	alice := "OpenTera " + a.userToken("alice:alice-demo")
	bob := "OpenTera " + b.userToken("bob:bob-demo")

	code, body := a.curl("POST", "/rooms", alice, `{"roomName":"Rehab call","roomOwner":"Alice","maxSize":3}`)
	require.Equal(t, 201, code, body)
	room := field(t, body, "roomToken").(string)
	code, body = b.curl("GET", "/rooms/"+room, "", "")
	require.Equal(t, 200, code, "the room created on A exists on B: %s", body)
	require.Equal(t, "Rehab call", field(t, body, "roomName"))

	code, body = b.curl("POST", "/rooms/"+room, "", `{"action":"join","displayName":"Natalia","clientMaxSize":3}`)
	require.Equal(t, 200, code, body)
	clicker := basicAuth(field(t, body, "sessionToken").(string))
	code, body = a.curl("POST", "/rooms/"+room, clicker, `{"action":"status","event":"Session.connectionCreated","state":"waiting","connections":1,"sendStreams":0,"recvStreams":0}`)
	require.Equal(t, 204, code, "B's link-clicker reports through A: %s", body)
	code, body = b.curl("POST", "/rooms/"+room, clicker, `{"action":"refresh"}`)
	require.Equal(t, 200, code, body)

	code, body = b.curl("PATCH", "/rooms/"+room, alice, `{"roomName":"Renamed"}`)
	require.Equal(t, 200, code, body)
	code, _ = b.curl("PATCH", "/rooms/"+room, bob, `{"roomName":"Stolen"}`)
	require.Equal(t, 403, code)
	code, body = a.curl("GET", "/rooms/"+room, alice, "")
	require.Equal(t, 200, code)
	require.Equal(t, "Renamed", field(t, body, "roomName"))
	require.Contains(t, body, `"states":{"waiting":1}`)
	code, body = b.curl("GET", "/rooms", alice, "")
	require.Equal(t, 200, code)
	require.Contains(t, body, room)
	for _, n := range nodes {
		require.Equal(t, "teragate_rooms_rooms 1", metricLine(t, n, "teragate_rooms_rooms"))
		require.Equal(t, `teragate_rooms_participants{state="waiting"} 1`, metricLine(t, n, `teragate_rooms_participants{state="waiting"}`))
	}

	// Hawk: registered on A, used on B; a replayed request is refused on the other node.
	owner := register(t, a)
	const create = `{"roomName":"Hawk room","roomOwner":"H","maxSize":2}`
	h := owner.sign("POST", "/rooms", create, "nonce-1")
	code, body = viaLB(t, b, "POST", "/rooms", h, create)
	require.Equal(t, 201, code, body)
	hawkRoom := field(t, body, "roomToken").(string)
	code, body = viaLB(t, a, "POST", "/rooms", h, create)
	require.Equal(t, 401, code)
	require.Equal(t, `{"code":401,"errno":110,"error":"Invalid nonce"}`, body)
	code, body = viaLB(t, a, "GET", "/rooms", owner.sign("GET", "/rooms", "", "nonce-2"), "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, hawkRoom)

	// Leave through B, delete through B: gone on A, with a tombstone on A's listing.
	code, _ = b.curl("POST", "/rooms/"+room, clicker, `{"action":"leave"}`)
	require.Equal(t, 204, code)
	code, _ = a.curl("POST", "/rooms/"+room, clicker, `{"action":"refresh"}`)
	require.Equal(t, 401, code)
	code, _ = b.curl("DELETE", "/rooms/"+room, alice, "")
	require.Equal(t, 204, code)
	code, _ = a.curl("GET", "/rooms/"+room, "", "")
	require.Equal(t, 404, code)
	code, body = a.curl("GET", "/rooms?version=1", alice, "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `[{"roomToken":"`+room+`","deleted":true}]`, body)
	for _, n := range nodes {
		require.Equal(t, "teragate_rooms_rooms 1", metricLine(t, n, "teragate_rooms_rooms"), "the Hawk room")
	}
}

// TestRoomsRedisJoinRace: in every round eight link-clickers join one room at once, half
// through each node; exactly the room's capacity get in (maxSize 3, a seat kept for the owner:
// 2) and the others are told the room is full.
func TestRoomsRedisJoinRace(t *testing.T) {
	nodes := roomsNodes(t, testutil.StartRedis(t), 2, func(c *gateway.Config) { c.Rooms.RequestBurst = -1 })
	alice := "OpenTera " + nodes[0].userToken("alice:alice-demo")
	const rounds, joiners = 30, 8
	for round := range rounds {
		code, body := nodes[round%2].curl("POST", "/rooms", alice, `{"roomName":"Race","roomOwner":"Alice","maxSize":3}`)
		require.Equal(t, 201, code, body)
		room := field(t, body, "roomToken").(string)
		start := make(chan struct{})
		var mu sync.Mutex
		admitted, full := 0, 0
		var wg sync.WaitGroup
		for i := range joiners {
			n := nodes[i%2]
			wg.Go(func() {
				<-start
				req, _ := http.NewRequest("POST", n.base+"/rooms/"+room, strings.NewReader(`{"action":"join","displayName":"g`+strconv.Itoa(i)+`","clientMaxSize":10}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := n.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case resp.StatusCode == 200:
					admitted++
				case resp.StatusCode == 400 && strings.Contains(string(b), `"errno":202`):
					full++
				default:
					t.Errorf("round %d: %d %s", round, resp.StatusCode, b)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, 2, admitted, "round %d: admitted", round)
		require.Equal(t, joiners-2, full, "round %d: refused as full", round)
		_, body = nodes[(round+1)%2].curl("GET", "/rooms/"+room, alice, "")
		require.Len(t, field(t, body, "participants"), 2, "round %d", round)
	}
}

// TestRoomsRedisRestart: every node stops and new ones start on the same Redis: the rooms, their
// participants and session states, the link-clickers' credentials and the Hawk sessions are
// all still there.
func TestRoomsRedisRestart(t *testing.T) {
	srv := testutil.StartRedis(t)
	old := roomsNodes(t, srv, 2, nil)
	alice := "OpenTera " + old[0].userToken("alice:alice-demo")
	code, body := old[0].curl("POST", "/rooms", alice, `{"roomName":"Kept","roomOwner":"Alice","maxSize":3}`)
	require.Equal(t, 201, code, body)
	room := field(t, body, "roomToken").(string)
	code, body = old[1].curl("POST", "/rooms/"+room, "", `{"action":"join","displayName":"Natalia","clientMaxSize":3}`)
	require.Equal(t, 200, code, body)
	clicker := basicAuth(field(t, body, "sessionToken").(string))
	code, _ = old[1].curl("POST", "/rooms/"+room, clicker, `{"action":"status","event":"Session.streamCreated","state":"sendrecv","connections":2,"sendStreams":1,"recvStreams":1}`)
	require.Equal(t, 204, code)
	owner := register(t, old[1])
	const create = `{"roomName":"Hawk room","roomOwner":"H","maxSize":2}`
	code, body = viaLB(t, old[0], "POST", "/rooms", owner.sign("POST", "/rooms", create, "before"), create)
	require.Equal(t, 201, code, body)
	hawkRoom := field(t, body, "roomToken").(string)

	for _, n := range old {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, n.gw.Shutdown(ctx))
		cancel()
	}
	fresh := roomsNodes(t, srv, 2, nil)
	a, b := fresh[0], fresh[1]
	code, body = a.curl("GET", "/rooms/"+room, alice, "")
	require.Equal(t, 200, code, "the room outlived every node: %s", body)
	require.Contains(t, body, `"states":{"sendrecv":1}`)
	require.Len(t, field(t, body, "participants"), 1)
	code, body = b.curl("POST", "/rooms/"+room, clicker, `{"action":"refresh"}`)
	require.Equal(t, 200, code, "the link-clicker's credential still works: %s", body)
	code, body = viaLB(t, b, "GET", "/rooms", owner.sign("GET", "/rooms", "", "after"), "")
	require.Equal(t, 200, code, "the Hawk session still works: %s", body)
	require.Contains(t, body, hawkRoom)
	code, body = viaLB(t, a, "POST", "/rooms", owner.sign("POST", "/rooms", create, "before"), create)
	require.Equal(t, 401, code, "the nonces outlived the nodes too")
	require.Equal(t, `{"code":401,"errno":110,"error":"Invalid nonce"}`, body)
	require.Equal(t, "teragate_rooms_rooms 2", metricLine(t, a, "teragate_rooms_rooms"))
}

// TestRoomsRedisExpiry: the records carry Redis expiries (deadline plus the grace), and a
// participant that does not refresh expires for the whole cluster: swept once, its presence
// freed on every node, its key gone from Redis.
func TestRoomsRedisExpiry(t *testing.T) {
	srv := testutil.StartRedis(t)
	// The rooms service sweeps every grace/4 (250 ms): a record Redis deleted before any sweep
	// read it would expire unreported. With a 300 ms grace and sweeps every 375 ms (before that
	// bound), CI saw exactly that once.
	const participantTTL, grace = 1500 * time.Millisecond, time.Second
	nodes := roomsNodes(t, srv, 2, func(c *gateway.Config) {
		c.Rooms.ParticipantTTL = gateway.Duration(participantTTL)
		c.Rooms.RedisExpiryGrace = gateway.Duration(grace)
		c.Rooms.DeletedTTL = gateway.Duration(time.Minute)
	})
	a, b := nodes[0], nodes[1]
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	ctx := t.Context()
	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := client.PTTL(ctx, key).Result()
		require.NoError(t, err)
		return d
	}

	bob := "OpenTera " + a.userToken("bob:bob-demo")
	alice := "OpenTera " + b.userToken("alice:alice-demo")
	code, body := a.curl("POST", "/rooms", bob, `{"roomName":"Team","roomOwner":"Bob","maxSize":3,"expiresIn":2}`)
	require.Equal(t, 201, code, body)
	room := field(t, body, "roomToken").(string)
	d := pttl(rooms.RedisPrefix + "room:" + room)
	require.Greater(t, d, time.Hour, "room key: expiresIn 2 h plus the grace")
	require.LessOrEqual(t, d, 2*time.Hour+grace)

	code, body = b.curl("POST", "/rooms/"+room, alice, `{"action":"join","displayName":"Alice","clientMaxSize":3}`)
	require.Equal(t, 200, code, body)
	partKey := rooms.RedisPrefix + "part:" + room + ":tg:user:" + directory.DemoAliceUUID
	d = pttl(partKey)
	require.Positive(t, d)
	require.LessOrEqual(t, d, participantTTL+grace)
	require.Eventually(t, func() bool { _, ok := a.gw.RoomsBusy(directory.KindUser, directory.DemoAliceUUID); return ok },
		5*time.Second, 10*time.Millisecond, "node A sees alice busy")

	// No refresh: the participation ends on both nodes, and she is freed on both.
	require.Eventually(t, func() bool {
		_, body := a.curl("GET", "/rooms/"+room, bob, "")
		return strings.Contains(body, `"participants":[]`)
	}, 10*time.Second, 50*time.Millisecond)
	code, body = a.curl("POST", "/rooms/"+room, alice, `{"action":"refresh"}`)
	require.Equal(t, 410, code, body)
	require.Eventually(t, func() bool { return client.Exists(ctx, partKey).Val() == 0 }, 10*time.Second, 20*time.Millisecond)
	expired := func() float64 {
		sum := 0.0
		for _, n := range nodes {
			l := metricLine(t, n, `teragate_rooms_participant_changes_total{change="expire"}`)
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			require.NoError(t, err, l)
			sum += v
		}
		return sum
	}
	// The sweeping node deletes the keys, then counts: wait for the count, then check that no
	// other node swept it as well.
	require.Eventually(t, func() bool { return expired() >= 1 }, 10*time.Second, 20*time.Millisecond, "the expiry is swept")

	for i, n := range nodes {
		if !assert.Eventually(t, func() bool { _, ok := n.gw.RoomsBusy(directory.KindUser, directory.DemoAliceUUID); return !ok },
			10*time.Second, 10*time.Millisecond, "freed on every node") {
			keys, _ := client.Keys(ctx, "teragate:rooms:*").Result()
			for _, k := range keys {
				t.Logf("%s %s %v %s", k, client.Type(ctx, k).Val(), client.ZRangeWithScores(ctx, k, 0, -1).Val(), client.Get(ctx, k).Val())
			}
			s, _ := n.gw.RoomsBusy(directory.KindUser, directory.DemoAliceUUID)
			for _, n := range nodes {
				t.Logf("%s", metricLine(t, n, `teragate_redis_reconnects_total{kind="bus"}`))
			}
			t.Fatalf("node %d busy in %s; now %d", i, s, time.Now().UnixMilli())
		}
	}
	require.Equal(t, 1.0, expired(), "the expiry is swept by one node")

	// A tombstone lives deleted_ttl.
	code, _ = b.curl("DELETE", "/rooms/"+room, bob, "")
	require.Equal(t, 204, code)
	d = pttl(rooms.RedisPrefix + "tombs:tg:user:" + directory.DemoBobUUID)
	require.Positive(t, d)
	require.LessOrEqual(t, d, time.Minute)
}

// TestRoomsRedisSharedLimits: the rooms rate limits hold for the cluster: a registration flood
// from one source spread over both nodes gets one burst in total.
func TestRoomsRedisSharedLimits(t *testing.T) {
	nodes := roomsNodes(t, testutil.StartRedis(t), 2, func(c *gateway.Config) {
		c.Rooms.RegistrationBurst, c.Rooms.RegistrationInterval = 3, gateway.Duration(time.Hour)
	})
	ok := 0
	for i := range 20 {
		resp, err := nodes[i%2].client.Post(nodes[i%2].base+"/registration", "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	}
	require.Equal(t, 3, ok, "one burst for the whole cluster")
	refused := 0.0
	for _, n := range nodes {
		l := metricLine(t, n, `teragate_rooms_refused_total{reason="registration_rate"}`)
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		require.NoError(t, err, l)
		refused += v
	}
	require.Equal(t, 17.0, refused)
}
