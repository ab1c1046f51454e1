package client_test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
)

// Demo identities of the embedded directory.
const (
	aliceUUID    = gatewaytest.AliceUUID
	patUUID      = gatewaytest.PatUUID
	paulaUUID    = gatewaytest.PaulaUUID
	robot1UUID   = gatewaytest.Robot1UUID
	robot1Token  = gatewaytest.Robot1Token
	serviceToken = gatewaytest.ServiceToken
)

// startGateway runs a gateway with the demo identities on a random loopback port (plain HTTP).
func startGateway(t *testing.T) *gateway.Gateway {
	t.Helper()
	return gatewaytest.Start(t, nil)
}

// proxy is a TCP proxy in front of the gateway whose connections can be cut, to simulate a
// network drop.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, ln net.Listener, target string) *proxy {
	t.Helper()
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
