package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// roomsStore is where a test gateway keeps its rooms: in memory, or in the redis-server at
// redisURL.
type roomsStore struct{ redisURL string }

// with returns mutate preceded by the store's configuration.
func (st roomsStore) with(mutate func(*gateway.Config)) func(*gateway.Config) {
	return func(c *gateway.Config) {
		c.Redis = st.redisURL
		if mutate != nil {
			mutate(c)
		}
	}
}

// forRoomsStores runs a test on a gateway with its rooms in memory, then in Redis (a real
// redis-server started for the subtest).
func forRoomsStores(t *testing.T, run func(t *testing.T, st roomsStore)) {
	t.Run("memory", func(t *testing.T) { run(t, roomsStore{}) })
	t.Run("redis", func(t *testing.T) { run(t, roomsStore{redisURL: testutil.StartRedis(t).URL}) })
}

// userToken logs a demo user in and returns its token.
func (e *env) userToken(cred string) string {
	e.t.Helper()
	code, out := e.login(directory.KindUser, cred, "")
	require.Equal(e.t, http.StatusOK, code, "login: %v", out)
	return out["user_token"].(string)
}

// curl sends a JSON request like `curl -X method -H … -d body base+path` and returns the status
// and body.
func (e *env) curl(method, path, authz, body string) (int, string) {
	e.t.Helper()
	hdr := map[string]string{"Content-Type": "application/json", "Accept": "application/json"}
	if authz != "" {
		hdr["Authorization"] = authz
	}
	code, b := e.do(method, path, strings.NewReader(body), hdr)
	return code, strings.TrimSpace(string(b))
}

func basicAuth(sessionToken string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(sessionToken+":"))
}

func field(t *testing.T, body, key string) any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	return m[key]
}

// TestRoomsLinkClickerFlow is the whole link-clicker flow over real HTTP: a directory user
// creates a room, an anonymous link-clicker joins, reports its session states from waiting to
// sendrecv, refreshes, leaves, and its token is then refused.
func TestRoomsLinkClickerFlow(t *testing.T) {
	forRoomsStores(t, func(t *testing.T, st roomsStore) {
		e := startGateway(t, st.with(nil))
		owner := "OpenTera " + e.userToken("alice:alice-demo")

		code, body := e.curl("POST", "/rooms", owner, `{"roomName":"Rehab call","roomOwner":"Alice","maxSize":3}`)
		require.Equal(t, 201, code, body)
		room := field(t, body, "roomToken").(string)

		code, body = e.curl("GET", "/rooms/"+room, "", "")
		require.Equal(t, 200, code)
		require.Equal(t, `{"roomToken":"`+room+`","roomName":"Rehab call","context":null,"roomOwner":"Alice","roomUrl":"http://localhost:3000/`+room+`"}`, body)

		code, body = e.curl("POST", "/rooms/"+room, "", `{"action":"join","displayName":"Natalia","clientMaxSize":2}`)
		require.Equal(t, 200, code, body)
		require.Equal(t, "teragate", field(t, body, "apiKey"))
		require.EqualValues(t, 300, field(t, body, "expires"))
		clicker := basicAuth(field(t, body, "sessionToken").(string))

		for _, s := range []string{
			`{"action":"status","event":"Session.connectionCreated","state":"waiting","connections":1,"sendStreams":0,"recvStreams":0}`,
			`{"action":"status","event":"Session.connectionCreated","state":"starting","connections":2,"sendStreams":0,"recvStreams":0}`,
			`{"action":"status","event":"Publisher.streamCreated","state":"sending","connections":2,"sendStreams":1,"recvStreams":0}`,
			`{"action":"status","event":"Session.streamCreated","state":"sendrecv","connections":2,"sendStreams":1,"recvStreams":1}`,
		} {
			code, body = e.curl("POST", "/rooms/"+room, clicker, s)
			require.Equal(t, 204, code, body)
			require.Empty(t, body)
		}
		// The owner sees the session state; so does an admin.
		code, body = e.curl("GET", "/rooms/"+room, owner, "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"states":{"sendrecv":1}`)
		code, body = e.curl("GET", "/api/admin/rooms", "OpenTera "+serviceToken, "")
		require.Equal(t, 200, code, body)
		require.Contains(t, body, `"participants":1,"states":{"sendrecv":1}`)
		code, body = e.curl("GET", "/metrics", "", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `teragate_rooms_participants{state="sendrecv"} 1`)
		require.Contains(t, body, `teragate_rooms_status_updates_total{event="Session.connectionCreated"} 2`)

		code, body = e.curl("POST", "/rooms/"+room, clicker, `{"action":"refresh"}`)
		require.Equal(t, 200, code)
		require.Equal(t, `{"expires":300}`, body)
		code, body = e.curl("POST", "/rooms/"+room, clicker, `{"action":"leave"}`)
		require.Equal(t, 204, code, body)
		code, body = e.curl("POST", "/rooms/"+room, clicker, `{"action":"refresh"}`)
		require.Equal(t, 401, code)
		require.Equal(t, `{"code":401,"errno":110,"error":"Invalid token; it may have expired."}`, body)
		code, _ = e.curl("GET", "/rooms/"+room, clicker, "")
		require.Equal(t, 401, code)

		// The /v1 prefix serves the same API; malformed and oversized bodies are refused cleanly.
		code, _ = e.curl("GET", "/v1/rooms/"+room, "", "")
		require.Equal(t, 200, code)
		code, body = e.curl("POST", "/rooms/"+room, "", `{"action":`)
		require.Equal(t, 400, code)
		require.Equal(t, `{"code":400,"errno":106,"error":"Request body should be a JSON object."}`, body)
		code, body = e.curl("POST", "/rooms/"+room, "", `{"action":"join","displayName":"`+strings.Repeat("x", 300)+`","clientMaxSize":2}`)
		require.Equal(t, 400, code)
		require.Equal(t, `{"code":400,"errno":107,"error":"displayName should be shorter than 255 characters"}`, body)
		code, body = e.curl("POST", "/rooms/"+room, "", `{"pad":"`+strings.Repeat("x", 70<<10)+`"}`)
		require.Equal(t, 413, code)
		require.Equal(t, `{"code":413,"errno":113,"error":"Request body too large."}`, body)
	})
}

// TestRoomsPresenceBusy: a directory user who joins a room is busy in presence and her
// websocket sees the JoinSessionEvent and USER_JOINED_SESSION; leaving frees her
// (USER_LEFT_SESSION); expiry frees her; deleting the room stops the session.
func TestRoomsPresenceBusy(t *testing.T) {
	forRoomsStores(t, func(t *testing.T, st roomsStore) {
		e := startGateway(t, st.with(func(c *gateway.Config) { c.Rooms.ParticipantTTL = gateway.Duration(2 * time.Second) }))
		aliceTok := "OpenTera " + e.userToken("alice:alice-demo")
		bobTok := "OpenTera " + e.userToken("bob:bob-demo")
		ws := e.connect(directory.KindUser, "alice:alice-demo")

		code, body := e.curl("POST", "/rooms", bobTok, `{"roomName":"Team","roomOwner":"Bob","maxSize":3}`)
		require.Equal(t, 201, code, body)
		room := field(t, body, "roomToken").(string)

		join := func() string {
			code, body := e.curl("POST", "/rooms/"+room, aliceTok, `{"action":"join","displayName":"Alice","clientMaxSize":3}`)
			require.Equal(t, 200, code, body)
			return field(t, body, "sessionId").(string)
		}
		busy := func(want string) {
			t.Helper()
			require.Eventually(t, func() bool {
				s, ok := e.gw.RoomsBusy(directory.KindUser, alice)
				return (want == "" && !ok) || (ok && s == want)
			}, 5*time.Second, 5*time.Millisecond, "busy should be %q", want)
		}
		// waitAll reads alice's events until each matcher has matched one (in any order: the
		// direct event and presence's republished one race) and returns the first one's match.
		waitAll := func(what string, matchers ...func(map[string]any) bool) map[string]any {
			t.Helper()
			var first map[string]any
			done := make([]bool, len(matchers))
			left := len(matchers)
			for range 20 {
				ev := ws.event()
				for i, m := range matchers {
					if !done[i] && m(ev) {
						done[i], left = true, left-1
						if i == 0 {
							first = ev
						}
						break
					}
				}
				if left == 0 {
					return first
				}
			}
			t.Fatalf("missing events: %s", what)
			return nil
		}
		isType := func(typ string) func(map[string]any) bool {
			return func(ev map[string]any) bool { return ev["type"] == typ && ev["userUuid"] == alice }
		}

		session := join()
		busy(session)
		ev := waitAll("JoinSessionEvent, USER_JOINED_SESSION", func(ev map[string]any) bool {
			return ev["@type"] == "type.googleapis.com/opentera.protobuf.JoinSessionEvent"
		}, isType("USER_JOINED_SESSION"))
		require.Equal(t, session, ev["sessionUuid"])
		require.Equal(t, []any{alice}, ev["sessionUsers"])

		code, _ = e.curl("POST", "/rooms/"+room, aliceTok, `{"action":"leave"}`)
		require.Equal(t, 204, code)
		busy("")
		waitAll("USER_LEFT_SESSION", isType("USER_LEFT_SESSION"))

		// No refresh: the participation expires (2 s here) and she is freed.
		join()
		waitAll("USER_JOINED_SESSION, USER_LEFT_SESSION (expiry)", isType("USER_JOINED_SESSION"), isType("USER_LEFT_SESSION"))
		busy("")
		code, body = e.curl("POST", "/rooms/"+room, aliceTok, `{"action":"refresh"}`)
		require.Equal(t, 410, code)
		require.Equal(t, `{"code":410,"errno":111,"error":"Participation has expired."}`, body)

		// Deleting the room stops the session: StopSessionEvent and LEFT_SESSION.
		join()
		waitAll("USER_JOINED_SESSION", isType("USER_JOINED_SESSION"))
		busy(session)
		code, _ = e.curl("DELETE", "/rooms/"+room, bobTok, "")
		require.Equal(t, 204, code)
		busy("")
		waitAll("StopSessionEvent, USER_LEFT_SESSION (stop)", func(ev map[string]any) bool {
			return ev["@type"] == "type.googleapis.com/opentera.protobuf.StopSessionEvent" && ev["sessionUuid"] == session
		}, isType("USER_LEFT_SESSION"))
	})
}

// TestRoomsLimitsConfig: the rooms limit keys are read from the config file, get their defaults
// and are validated when the configuration is loaded.
func TestRoomsLimitsConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c gateway.RoomsConfig)
		wantErr string
	}{
		{"defaults", "listen: 127.0.0.1:0\n", func(t *testing.T, c gateway.RoomsConfig) {
			require.Equal(t, 200_000, c.MaxHawkSessions)
			require.Equal(t, 1000, c.MaxRoomsPerOwner)
			require.Equal(t, 20, c.RegistrationBurst)
			require.Equal(t, gateway.Duration(3*time.Second), c.RegistrationInterval)
			require.Equal(t, 60, c.RequestBurst)
			require.Equal(t, gateway.Duration(time.Second), c.RequestInterval)
			require.Equal(t, c.HawkSessionTTL, c.HawkUnusedSessionTTL)
		}, ""},
		{"set", "rooms:\n  max_hawk_sessions: 10\n  max_rooms_per_owner: -1\n  registration_burst: 2\n  registration_interval: 1m\n" +
			"  request_burst: -1\n  request_interval: 2s\n  hawk_unused_session_ttl: 1h\n", func(t *testing.T, c gateway.RoomsConfig) {
			require.Equal(t, 10, c.MaxHawkSessions)
			require.Equal(t, -1, c.MaxRoomsPerOwner)
			require.Equal(t, 2, c.RegistrationBurst)
			require.Equal(t, gateway.Duration(time.Minute), c.RegistrationInterval)
			require.Equal(t, -1, c.RequestBurst)
			require.Equal(t, gateway.Duration(time.Hour), c.HawkUnusedSessionTTL)
		}, ""},
		{"negative cap", "rooms:\n  max_hawk_sessions: -2\n", nil, "rooms.max_hawk_sessions must be positive, or -1"},
		{"negative burst", "rooms:\n  registration_burst: -5\n", nil, "rooms.registration_burst"},
		{"negative interval", "rooms:\n  request_interval: -1s\n", nil, "rooms.request_interval must be positive"},
		{"unused TTL above session TTL", "rooms:\n  hawk_session_ttl: 1h\n  hawk_unused_session_ttl: 2h\n", nil,
			"rooms.hawk_unused_session_ttl (2h0m0s) must not exceed rooms.hawk_session_ttl (1h0m0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/teragate.yaml"
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			c, err := gateway.LoadConfig(path)
			require.NoError(t, err)
			c = c.WithDefaults()
			err = c.Validate()
			if tc.wantErr != "" {
				require.ErrorIs(t, err, gateway.ErrInvalidConfig)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c.Rooms)
		})
	}
}

// TestRoomsRegistrationFlood: an anonymous flood of POST /registration from one source over one
// keep-alive connection is bounded by the configured burst and answered 429 with Retry-After and
// a Loop error body, while another source registers; the refusals show on /metrics.
func TestRoomsRegistrationFlood(t *testing.T) {
	forRoomsStores(t, func(t *testing.T, st roomsStore) {
		e := startGateway(t, st.with(func(c *gateway.Config) {
			c.Rooms.RegistrationBurst, c.Rooms.RegistrationInterval = 3, gateway.Duration(time.Hour)
		}))
		register := func(client *http.Client) (int, http.Header, string) {
			req, err := http.NewRequest(http.MethodPost, e.base+"/registration", nil)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header, strings.TrimSpace(string(b))
		}
		ok := 0
		for range 200 {
			code, hdr, body := register(e.client)
			if code == http.StatusOK {
				ok++
				continue
			}
			require.Equal(t, http.StatusTooManyRequests, code, body)
			require.Equal(t, `{"code":429,"errno":123,"error":"Too many requests."}`, body)
			wait, err := strconv.Atoi(hdr.Get("Retry-After"))
			require.NoError(t, err)
			require.InDelta(t, 3600, wait, 60, "the wait for the next token")
			require.Empty(t, hdr.Get("Hawk-Session-Token"))
		}
		require.Equal(t, 3, ok, "only the burst is served")

		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		other := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
		code, hdr, body := register(other)
		require.Equal(t, http.StatusOK, code, body)
		require.Len(t, hdr.Get("Hawk-Session-Token"), 64)

		require.Equal(t, `teragate_rooms_refused_total{reason="registration_rate"} 197`, metricLine(t, e, `teragate_rooms_refused_total{reason="registration_rate"}`))
	})
}
