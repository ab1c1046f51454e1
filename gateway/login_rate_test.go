package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestLoginRateLimitsATightLoop: a device logging in and opening its websocket in a tight loop
// (no backoff) gets its burst, then 429s with Retry-After, counted in the metrics; meanwhile the
// other entities (another device, a participant, a user by password) still log in and connect.
func TestLoginRateLimitsATightLoop(t *testing.T) {
	const burst, attempts = 10, 200
	e := startGateway(t, func(c *gateway.Config) { c.LoginRate = 2; c.LoginBurst = burst })
	robot1 := demoToken(directory.KindDevice, directory.DemoRobot1UUID)
	robot2 := demoToken(directory.KindDevice, directory.DemoRobot2UUID)
	pat := demoToken(directory.KindParticipant, directory.DemoPatUUID)

	var ok, limited int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the hammering client
		defer wg.Done()
		for range attempts {
			req, err := http.NewRequest(http.MethodGet, e.base+"/api/device/login?with_websocket=true", nil)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "OpenTera "+robot1)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				ok++
				var out struct {
					URL string `json:"websocket_url"`
				}
				if err := json.Unmarshal(body, &out); err != nil {
					t.Error(err)
					return
				}
				ws, r, err := e.dialer.Dial(out.URL, nil)
				if r != nil {
					r.Body.Close()
				}
				if err != nil {
					t.Error(err)
					return
				}
				_ = ws.Close() // and at once again: no backoff
			case http.StatusTooManyRequests:
				limited++
				secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || secs < 1 {
					t.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
				}
				if !strings.Contains(string(body), "Too many logins") {
					t.Errorf("429 body %q", body)
				}
			default:
				t.Errorf("hammering login: %d %s", resp.StatusCode, body)
				return
			}
		}
	}()
	// The others, while the loop runs.
	others := []struct {
		kind directory.Kind
		cred string
	}{
		{directory.KindDevice, robot2},
		{directory.KindParticipant, pat},
		{directory.KindUser, "alice:alice-demo"},
	}
	var socks []*websocket.Conn
	for range 3 {
		for _, o := range others {
			s := e.connect(o.kind, o.cred)
			socks = append(socks, s.ws)
		}
	}
	wg.Wait()
	require.GreaterOrEqual(t, ok, burst, "the burst is let through")
	// A few more may pass as the bucket refills at 2/s while the loop runs; most are refused.
	require.Less(t, ok, attempts/2)
	require.Equal(t, attempts, ok+limited)
	require.Len(t, socks, 3*len(others))

	_, b := e.do(http.MethodGet, "/metrics", nil, nil)
	want := fmt.Sprintf(`teragate_logins_total{kind="device",result="rate_limited"} %d`, limited)
	require.Contains(t, string(b), want)
}
