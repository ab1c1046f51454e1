package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/client"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxy is a TCP proxy in front of the gateway: cut closes every connection through it, and
// while it is down it refuses new ones (the client can neither log in nor reconnect).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
}

func startProxy(t *testing.T, ln net.Listener, target string) *proxy {
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut(false) })
	return p
}

// cut closes every proxied connection and sets whether new ones are refused.
func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// publish publishes StopSessionEvents (every user sees them) as the demo service.
func publish(t *testing.T, svc *client.Client, sessions ...string) {
	t.Helper()
	for _, s := range sessions {
		a, err := anypb.New(&opentera.StopSessionEvent{SessionUuid: s})
		require.NoError(t, err)
		require.NoError(t, svc.PublishEvent(context.Background(), &opentera.TeraEvent{
			Header: &opentera.TeraEvent_Header{Version: 1, Topic: "module.TeraServer.UserManagerModule.events"},
			Events: []*anypb.Any{a},
		}))
	}
}

// stops returns the sessions of the StopSessionEvent lines in out, in order, checking each has
// a position.
func stops(t *testing.T, out string) []string {
	var got []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == "StopSessionEvent" {
			require.NotEqual(t, "-", f[0], "no position: %s", line)
			got = append(got, f[2])
		}
	}
	return got
}

func Test_main(t *testing.T) {
	for _, format := range []string{"json", "proto"} {
		t.Run(format, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			// The websocket_url the login returns points at the proxy too.
			gw := gatewaytest.Start(t, func(c *gateway.Config) { c.PublicHost = ln.Addr().String() })
			px := startProxy(t, ln, gw.Addr().String())
			svc, err := client.New(gw.URL(), client.WithToken(gatewaytest.ServiceToken))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			var out syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"--url", "http://" + ln.Addr().String(), "--user", gatewaytest.AliceUser,
					"--password", gatewaytest.AlicePassword, "--format", format, "--backoff", "100ms"}, &out)
			}()
			waitFor := func(s string) {
				t.Helper()
				require.Eventually(t, func() bool { return strings.Contains(out.String(), s) }, 20*time.Second, 10*time.Millisecond,
					"waiting for %q; output:\n%s", s, out.String())
			}
			waitFor("USER_CONNECTED " + gatewaytest.AliceUUID)
			publish(t, svc, "r-0", "r-1", "r-2")
			waitFor("StopSessionEvent r-2")

			// The network drops and stays down while the service publishes.
			px.cut(true)
			waitFor("connection lost")
			publish(t, svc, "r-3", "r-4", "r-5", "r-6")
			px.up()
			waitFor("StopSessionEvent r-6")
			publish(t, svc, "r-7", "r-8")
			waitFor("StopSessionEvent r-8")

			// A second drop, this time with events published while it reconnects.
			px.cut(false)
			publish(t, svc, "r-9", "r-10")
			waitFor("StopSessionEvent r-10")
			publish(t, svc, "r-11")
			waitFor("StopSessionEvent r-11")
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the example did not stop")
			}

			var want []string
			for i := range 12 {
				want = append(want, fmt.Sprintf("r-%d", i))
			}
			require.Equal(t, want, stops(t, out.String()), "every event once, in order; output:\n%s", out.String())
			require.NotContains(t, out.String(), "resume failed")
			require.Contains(t, out.String(), "last position ")
		})
	}
}
