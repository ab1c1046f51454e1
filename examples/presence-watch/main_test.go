package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/gatewaytest"
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

func Test_main(t *testing.T) {
	gw := gatewaytest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--url", gw.URL(), "--user", gatewaytest.AliceUser, "--password", gatewaytest.AlicePassword, "--count", "4"}, &out)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "USER_CONNECTED") }, 10*time.Second, 10*time.Millisecond)

	// pat (alice's project) and robot1 (her site) come online; robot1 reports its battery.
	pat, err := client.Login(ctx, gw.URL(), client.KindParticipant, client.Basic(gatewaytest.PatUser, gatewaytest.PatPassword))
	require.NoError(t, err)
	pc, err := pat.Dial(ctx)
	require.NoError(t, err)
	defer pc.Close()
	// The gateway publishes CONNECTED once the socket is registered, which may be just after the
	// handshake returns here: wait for it, so that pat's event comes before robot1's.
	require.Eventually(t, func() bool { return gw.Online("participant", pat.UUID()) }, 10*time.Second, 10*time.Millisecond)
	robot, err := client.Login(ctx, gw.URL(), client.KindDevice, client.Token(gatewaytest.Robot1Token))
	require.NoError(t, err)
	rc, err := robot.Dial(ctx)
	require.NoError(t, err)
	defer rc.Close()
	require.Eventually(t, func() bool { return gw.Online("device", robot.UUID()) }, 10*time.Second, 10*time.Millisecond)
	_, err = robot.UpdateDeviceStatus(ctx, map[string]any{"battery": 80}, 1732145425.5)
	require.NoError(t, err)

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatalf("presence-watch did not see 4 changes; output:\n%s", out.String())
	}
	require.Equal(t, `watching presence as user 00000000-0000-4000-8000-000000000002
USER_CONNECTED               user        00000000-0000-4000-8000-000000000002 "Alice Demo"
PARTICIPANT_CONNECTED        participant 00000000-0000-4000-8000-000000000101 "Pat Demo" (Rehab, Montreal)
DEVICE_CONNECTED             device      00000000-0000-4000-8000-000000000201 "robot1"
DEVICE_STATUS_CHANGED        device      00000000-0000-4000-8000-000000000201 "robot1" {"status": "{\"battery\": 80}", "timestamp": 1732145425.5}
`, out.String())
}
