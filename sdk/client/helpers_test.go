package client_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
)

// Demo identities of the embedded directory (gateway/internal/directory/demo.yaml).
const (
	aliceUUID    = "00000000-0000-4000-8000-000000000002"
	patUUID      = "00000000-0000-4000-8000-000000000101"
	paulaUUID    = "00000000-0000-4000-8000-000000000102"
	robot1UUID   = "00000000-0000-4000-8000-000000000201"
	robot1Token  = "0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5"
	serviceToken = "dbY8gNftvqx3C65aRU36iwtMjBsJM68-T2TZfpLn"
)

// startGateway runs a gateway with the demo identities on a random loopback port (plain HTTP).
func startGateway(t *testing.T) *gateway.Gateway {
	t.Helper()
	gw, err := gateway.New(gateway.Config{
		Listen: "127.0.0.1:0", Insecure: true, DataDir: t.TempDir(),
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn}),
	})
	require.NoError(t, err)
	require.NoError(t, gw.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	return gw
}

// proxy is a TCP proxy in front of the gateway whose connections can be cut, to simulate a
// network drop.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
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
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

// cut closes every proxied connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
