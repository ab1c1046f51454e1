package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/loadtest"
)

// BenchmarkTokenLoginOpen measures "token login + websocket open": one op is a
// GET /api/<kind>/login?with_websocket=true with a token (a device's or participant's static
// token, a user's JWT from an earlier password login) followed by the websocket handshake on the
// returned URL, on plain HTTP over loopback, with the client in the same process (allocations
// and CPU are the client's and the server's together). Sockets stay open until the sub-benchmark
// ends, as in a connect storm, and receive the CONNECTED events of their projects; the timer
// stops once the presence registry has seen the last open. opens/s is the rate with 4 clients
// per GOMAXPROCS in flight.
//
// Keep b.N at most perKind (every op holds a socket; beyond, entities hold several and the
// CONNECTED fan-out grows): go test -run ^$ -bench TokenLoginOpen -benchtime 2000x.
func BenchmarkTokenLoginOpen(b *testing.B) {
	// About 100 entities per project, as `teragate bench` generates; up to perKind opens each
	// entity holds one socket.
	d, err := loadtest.GenerateDirectory(loadtest.GenerateOptions{Users: perKind, Participants: perKind, Devices: perKind, Projects: 3 * perKind / 100})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "identities.yaml")
	if err := d.WriteFile(path); err != nil {
		b.Fatal(err)
	}
	builtins := false
	gw, err := gateway.New(gateway.Config{
		Listen: "127.0.0.1:0", Insecure: true, DataDir: b.TempDir(), Identities: path,
		BuiltinPlugins: &builtins, Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)
	dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, WriteBufferPool: &sync.Pool{}}

	// Users log in by password once, outside the measurement, for their JWT.
	userTokens := make([]string, perKind)
	for i, u := range d.Users {
		req, _ := http.NewRequest(http.MethodGet, gw.URL()+"/api/user/login", nil)
		req.SetBasicAuth(u.Username, d.Password)
		var out struct {
			UserToken string `json:"user_token"`
		}
		if err := getJSON(client, req, &out); err != nil || out.UserToken == "" {
			b.Fatalf("user password login: %v %q", err, out.UserToken)
		}
		userTokens[i] = out.UserToken
	}

	cases := []struct {
		kind  directory.Kind
		uuid  func(i int) string
		token func(i int) string
	}{
		{directory.KindDevice, func(i int) string { return d.Devices[i].UUID }, func(i int) string { return d.Devices[i].Token }},
		{directory.KindParticipant, func(i int) string { return d.Participants[i].UUID }, func(i int) string { return d.Participants[i].Token }},
		{directory.KindUser, func(i int) string { return d.Users[i].UUID }, func(i int) string { return userTokens[i] }},
	}
	for _, c := range cases {
		b.Run(c.kind.String(), func(b *testing.B) {
			loginURL := gw.URL() + "/api/" + c.kind.String() + "/login?with_websocket=true"
			var (
				next, lastIdx atomic.Int64
				mu            sync.Mutex
				socks         []*websocket.Conn
				readers       sync.WaitGroup
			)
			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1)-1) % perKind
					req, _ := http.NewRequest(http.MethodGet, loginURL, nil)
					req.Header.Set("Authorization", "OpenTera "+c.token(i))
					var out struct {
						WebsocketURL string `json:"websocket_url"`
					}
					if err := getJSON(client, req, &out); err != nil || out.WebsocketURL == "" {
						b.Errorf("login: %v", err)
						return
					}
					ws, resp, err := dialer.Dial(out.WebsocketURL, nil)
					if err != nil {
						b.Errorf("websocket: %v", err)
						return
					}
					_ = resp.Body.Close()
					lastIdx.Store(int64(i))
					mu.Lock()
					socks = append(socks, ws)
					mu.Unlock()
					readers.Add(1)
					go func() {
						defer readers.Done()
						for {
							if _, _, err := ws.NextReader(); err != nil {
								return
							}
						}
					}()
				}
			})
			// Drain: presence handles the CONNECTED messages in order, so the last open's entity
			// being online means every open was handled.
			for !gw.Online(c.kind.String(), c.uuid(int(lastIdx.Load()))) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "opens/s")
			for _, ws := range socks {
				_ = ws.Close()
			}
			readers.Wait()
			// Let the DISCONNECTED traffic pass before the next kind.
			for !offline(gw, c.kind, c.uuid) {
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// perKind is how many entities of each kind BenchmarkTokenLoginOpen generates.
const perKind = 2000

// offline reports whether no entity of kind is online.
func offline(gw *gateway.Gateway, kind directory.Kind, uuid func(int) string) bool {
	for i := 0; i < perKind; i++ {
		if gw.Online(kind.String(), uuid(i)) {
			return false
		}
	}
	return true
}

// getJSON sends req and decodes a 200 reply into out.
func getJSON(c *http.Client, req *http.Request, out any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}
