// Package gatewaytest starts a real teragate gateway for tests: in process, on a free loopback
// port, plain HTTP, with the embedded demo identities, an in-memory bus and a temporary data
// directory, shut down when the test ends. It is what the examples and the gateway's own tests
// use; use it to test a client, a service or a plugin against the real thing.
//
//	gw := gatewaytest.Start(t, nil)
//	s, err := client.Login(ctx, gw.URL(), client.KindUser, client.Basic(gatewaytest.AliceUser, gatewaytest.AlicePassword))
//
// The demo credentials are public (they are printed by `teragate serve`); never use them outside
// tests and demos.
package gatewaytest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// The demo logins (the embedded demo identity file). Users and participants log in with a
// username and password; participants may also use their static token; devices and services
// use their token.
const (
	AdminUser       = "admin" // superadmin: sees everyone
	AdminPassword   = "admin-demo"
	AdminUUID       = directory.DemoAdminUUID
	AliceUser       = "alice" // project p1 (Rehab, site s1): sees pat and robot1
	AlicePassword   = "alice-demo"
	AliceUUID       = directory.DemoAliceUUID
	BobUser         = "bob" // project p3 (Robotics, site s2): sees paula and robot2
	BobPassword     = "bob-demo"
	BobUUID         = directory.DemoBobUUID
	PatUser         = "pat" // participant of p1, linked to robot1
	PatPassword     = "pat-demo"
	PatToken        = "K90i9pJL7XNf6kqX3P5CSK_TV6PDVPGAWieMVjNz"
	PatUUID         = directory.DemoPatUUID
	PaulaUser       = "paula" // participant of p3, linked to robot2
	PaulaPassword   = "paula-demo"
	PaulaToken      = "2PQi5Wsf0AOzVHX5BRdr6cTur6j1vvwxO-PxzPEx"
	PaulaUUID       = directory.DemoPaulaUUID
	Robot1Token     = "0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5" // device on site s1, linked to pat
	Robot1UUID      = directory.DemoRobot1UUID
	Robot2Token     = "m_EpU1iaIxG7Qyy4h-Tl_Cphm0Jr_rdRjClwySuD" // device on site s2, linked to paula
	Robot2UUID      = directory.DemoRobot2UUID
	ServiceToken    = "dbY8gNftvqx3C65aRU36iwtMjBsJM68-T2TZfpLn" // VideoRehabService, an admin service
	ServiceUUID     = directory.DemoServiceUUID
	ShutdownTimeout = 10 * time.Second
)

// Config returns the configuration Start uses before mutate: loopback port 0, plain HTTP, a
// temporary data directory, a 10-minute pong timeout, warnings and errors logged to stderr
// (TERAGATE_TEST_LOG=debug, info… logs more, to follow a failing test).
func Config(t testing.TB) gateway.Config {
	level := hclog.Warn
	if v := os.Getenv("TERAGATE_TEST_LOG"); v != "" {
		level = hclog.LevelFromString(v)
	}
	return gateway.Config{
		Listen:   "127.0.0.1:0",
		Insecure: true,
		DataDir:  t.TempDir(),
		Logger:   hclog.New(&hclog.LoggerOptions{Name: "teragate", Level: level, Output: os.Stderr}),
		// A test's websocket client reads only when the test expects a frame, and answers the
		// gateway's pings only while it reads: on a loaded machine a long step between two reads
		// outlasted the default 30 s and the gateway closed the socket (a "broken pipe" later).
		PongTimeout: gateway.Duration(10 * time.Minute),
	}
}

// Start builds and starts a gateway with [Config], changed by mutate when it is not nil, and
// shuts it down (within [ShutdownTimeout]) when the test ends. It fails the test if the gateway
// does not start.
func Start(t testing.TB, mutate func(*gateway.Config)) *gateway.Gateway {
	t.Helper()
	cfg := Config(t)
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("gatewaytest: new gateway: %v", err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatalf("gatewaytest: start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Logf("gatewaytest: shutdown: %v", err)
		}
	})
	return gw
}
