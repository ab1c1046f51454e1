package gateway_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
)

// clientFrom returns an HTTP client whose connections leave from the loopback address ip, so a
// test can log in from two source addresses.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// TestLoginThrottleOverHTTP runs the password throttle through a real server: a guesser at one
// address locks a username for that address only, an unknown username is answered exactly like a
// known one at every step, the owner at another address still logs in, and locks are counted.
func TestLoginThrottleOverHTTP(t *testing.T) {
	e := startGateway(t, func(c *gateway.Config) { c.MaxFailedLogins = 3 })
	attacker, owner := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.1")
	type answer struct {
		code       int
		body       string
		retryAfter string
	}
	login := func(c *http.Client, user, pass string) answer {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.base+"/api/user/login", nil)
		require.NoError(t, err)
		req.SetBasicAuth(user, pass)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return answer{code: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After")}
	}

	steps := []struct {
		name      string
		pass      string
		wantCode  int
		wantRetry bool
	}{
		{"first wrong password", "wrong", http.StatusUnauthorized, false},
		{"second wrong password", "wrong", http.StatusUnauthorized, false},
		{"third wrong password locks", "wrong", http.StatusUnauthorized, false},
		{"locked, right password refused", "alice-demo", http.StatusUnauthorized, true},
		{"locked, wrong password refused", "wrong", http.StatusUnauthorized, true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			known, unknown := login(attacker, "alice", s.pass), login(attacker, "nobody-here", s.pass)
			require.Equal(t, s.wantCode, known.code, known.body)
			require.Equal(t, known.code, unknown.code, "a known and an unknown username get the same answer")
			require.Equal(t, known.body, unknown.body, "a known and an unknown username get the same answer")
			// Both locks last as long; the seconds left may differ by the time between them.
			require.Equal(t, s.wantRetry, known.retryAfter != "", "Retry-After %q", known.retryAfter)
			require.Equal(t, s.wantRetry, unknown.retryAfter != "", "Retry-After %q", unknown.retryAfter)
		})
	}
	require.Contains(t, login(attacker, "alice", "alice-demo").body, "Too many failed login attempts")

	// The owner, from another address, is not locked out, and the guesser still is.
	require.Equal(t, http.StatusOK, login(owner, "alice", "alice-demo").code)
	require.Equal(t, http.StatusUnauthorized, login(attacker, "alice", "alice-demo").code)

	code, body := e.do(http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `teragate_login_throttle_events_total{event="locked",kind="user"} 2`)
}
