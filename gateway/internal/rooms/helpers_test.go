package rooms_test

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rooms"
	"github.com/teragate/teragate/gateway/internal/testutil"
	"github.com/teragate/teragate/proto/opentera"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// published is one presence message the service sent.
type published struct {
	channel string
	msg     proto.Message
}

// fixture is a rooms service behind a real HTTP server, with a fake clock, fake teragate tokens
// and a recording publisher.
type fixture struct {
	t     *testing.T
	svc   *rooms.Service
	srv   *httptest.Server
	clk   *clock
	reg   *prometheus.Registry
	mu    sync.Mutex
	pubs  []published
	nonce int
}

// Fake teragate tokens: "Bearer <name>".
var principals = map[string]auth.Principal{
	"alice":   {Kind: directory.KindUser, UUID: "u-alice"},
	"bob":     {Kind: directory.KindUser, UUID: "u-bob"},
	"pat":     {Kind: directory.KindParticipant, UUID: "p-pat"},
	"admin":   {Kind: directory.KindUser, UUID: "u-admin", Admin: true},
	"service": {Kind: directory.KindService, UUID: "s-1", Admin: true},
}

// storeKind names a rooms store the suites run against.
type storeKind string

const (
	memoryStore storeKind = "memory"
	redisStore  storeKind = "redis"
)

// forStores runs a test once per store: the in-memory store and the Redis store on a real
// redis-server.
func forStores(t *testing.T, run func(t *testing.T, st storeKind)) {
	for _, st := range []storeKind{memoryStore, redisStore} {
		t.Run(string(st), func(t *testing.T) { run(t, st) })
	}
}

// newStore returns a new, empty store of kind st for the test (nil: the service's default
// memory store).
func newStore(t testing.TB, st storeKind) rooms.Store {
	if st != redisStore {
		return nil
	}
	return rooms.NewRedisStore(rooms.RedisStoreConfig{Client: redisClient(t, testutil.StartRedis(t))})
}

// redisClient returns a client of srv closed at the end of the test.
func redisClient(t testing.TB, srv *testutil.RedisServer) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newFixture(t *testing.T, st storeKind, mutate func(*rooms.Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, newStore(t, st), &clock{t: time.Unix(1_700_000_000, 0)}, mutate)
}

// newFixtureOn is newFixture on a given store (nil: a memory store) and clock: several
// fixtures on one Redis store act as several nodes.
func newFixtureOn(t *testing.T, store rooms.Store, clk *clock, mutate func(*rooms.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: clk, reg: prometheus.NewRegistry()}
	cfg := rooms.Config{
		MaxRoomNameSize: 15, MaxRoomOwnerSize: 10, MaxTTL: 10 * time.Hour, MaxSize: 3, // Loop's config/test.json
		ParticipantTTL: 5 * time.Minute, Now: f.clk.Now, Registerer: f.reg, Secret: []byte("test-secret"),
		Authenticate: func(r *http.Request) (auth.Principal, error) {
			_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			p, ok := principals[tok]
			if !ok {
				return auth.Principal{}, auth.ErrInvalidToken
			}
			return p, nil
		},
		Publish: func(_ context.Context, channel string, payload []byte) error {
			var m proto.Message
			if strings.HasPrefix(channel, "module.") {
				var mm opentera.TeraModuleMessage
				if err := proto.Unmarshal(payload, &mm); err != nil {
					return err
				}
				m, _ = mm.GetData()[0].UnmarshalNew()
			} else {
				var te opentera.TeraEvent
				if err := proto.Unmarshal(payload, &te); err != nil {
					return err
				}
				m, _ = te.GetEvents()[0].UnmarshalNew()
			}
			f.mu.Lock()
			f.pubs = append(f.pubs, published{channel, m})
			f.mu.Unlock()
			return nil
		},
	}
	cfg.Store = store
	if mutate != nil {
		mutate(&cfg)
	}
	f.svc = rooms.New(cfg)
	f.srv = httptest.NewServer(f.svc.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) published() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.pubs
	f.pubs = nil
	return out
}

// cred signs a request.
type cred func(r *http.Request, body string)

func bearer(name string) cred {
	return func(r *http.Request, _ string) { r.Header.Set("Authorization", "Bearer "+name) }
}

func basic(token string) cred {
	return func(r *http.Request, _ string) {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(token+":")))
	}
}

func header(v string) cred {
	return func(r *http.Request, _ string) { r.Header.Set("Authorization", v) }
}

// hawkCreds are a registered Hawk client's credentials.
type hawkCreds struct{ id, key string }

func (f *fixture) register() hawkCreds {
	f.t.Helper()
	resp := f.raw(http.MethodPost, "/registration", "", nil)
	require.Equal(f.t, http.StatusOK, resp.code)
	tok := resp.hdr.Get("Hawk-Session-Token")
	require.Len(f.t, tok, 64)
	id, key, err := rooms.DeriveHawkCredentials(tok)
	require.NoError(f.t, err)
	return hawkCreds{id, key}
}

// hawk signs with the fixture clock's time plus skew and a fresh nonce (or the given one).
func (f *fixture) hawk(c hawkCreds, skew time.Duration, nonce string) cred {
	return func(r *http.Request, body string) {
		if nonce == "" {
			f.nonce++
			nonce = "n" + strconv.Itoa(f.nonce)
		}
		host, port, _ := net.SplitHostPort(r.URL.Host)
		req := rooms.HawkRequest{Method: r.Method, Resource: r.URL.RequestURI(), Host: host, Port: port}
		hash := ""
		if body != "" {
			hash = rooms.HawkPayloadHash("application/json", []byte(body))
		}
		r.Header.Set("Authorization", rooms.HawkHeader(c.id, c.key, req, f.clk.Now().Add(skew), nonce, hash))
	}
}

type response struct {
	code int
	hdr  http.Header
	body string
}

func (f *fixture) raw(method, path, body string, c cred, extra ...string) response {
	f.t.Helper()
	return f.rawVia(http.DefaultClient, method, path, body, c, extra...)
}

// from returns a keep-alive client whose connections leave from the loopback address ip (any
// 127.0.0.0/8 address on Linux): a second TCP source for the per-source limits.
func (f *fixture) from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// rawVia is raw with a given client.
func (f *fixture) rawVia(client *http.Client, method, path, body string, c cred, extra ...string) response {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	require.NoError(f.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	if c != nil {
		c(req, body)
	}
	resp, err := client.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return response{resp.StatusCode, resp.Header, strings.TrimSpace(string(b))}
}

// do returns the status and the trimmed body.
func (f *fixture) do(method, path, body string, c cred) (int, string) {
	f.t.Helper()
	r := f.raw(method, path, body, c)
	return r.code, r.body
}

// createRoom creates a room owned by c and returns its token.
func (f *fixture) createRoom(c cred, maxSize int) string {
	f.t.Helper()
	code, body := f.do(http.MethodPost, "/rooms", `{"roomName":"UX","roomOwner":"Alexis","maxSize":`+strconv.Itoa(maxSize)+`}`, c)
	require.Equal(f.t, http.StatusCreated, code, body)
	return jsonField(f.t, body, "roomToken").(string)
}

// joinAnon joins without credentials and returns the session token.
func (f *fixture) joinAnon(token, name string) string {
	f.t.Helper()
	code, body := f.do(http.MethodPost, "/rooms/"+token, `{"action":"join","displayName":"`+name+`","clientMaxSize":10}`, nil)
	require.Equal(f.t, http.StatusOK, code, body)
	return jsonField(f.t, body, "sessionToken").(string)
}

func errBody(code, errno int, msg string) string {
	return `{"code":` + strconv.Itoa(code) + `,"errno":` + strconv.Itoa(errno) + `,"error":` + strconv.Quote(msg) + `}`
}

// metric returns the value of a gauge or counter with the given label value ("" for none).
func (f *fixture) metric(name, label string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(f.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	f.t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}
