package loadtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/teragate/teragate/gateway"
)

// stormGateway is a real gateway in this process that a storm can restart:
// the new one listens on the same address with the same identities and data
// directory.
type stormGateway struct {
	t   *testing.T
	cfg gateway.Config

	mu       sync.Mutex
	gw       *gateway.Gateway
	restarts int
}

func startStormGateway(t *testing.T, dir *Directory) *stormGateway {
	path := filepath.Join(t.TempDir(), "identities.yaml")
	require.NoError(t, dir.WriteFile(path))
	builtins := false
	g := &stormGateway{t: t, cfg: gateway.Config{
		Listen: "127.0.0.1:0", Insecure: true, DataDir: t.TempDir(), Identities: path,
		BuiltinPlugins: &builtins, Logger: hclog.NewNullLogger(),
	}}
	require.NoError(t, g.start())
	g.cfg.Listen = g.gw.Addr().String()
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.stop()
	})
	return g
}

func (g *stormGateway) start() error {
	gw, err := gateway.New(g.cfg)
	if err != nil {
		return err
	}
	if err := gw.Start(context.Background()); err != nil {
		return err
	}
	g.gw = gw
	return nil
}

func (g *stormGateway) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.gw.Shutdown(ctx)
}

// restart is a StormConfig.Restart: the gateway's state (sockets, presence,
// tickets) goes with it; this process is the server.
func (g *stormGateway) restart(context.Context) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stop()
	g.restarts++
	return os.Getpid(), g.start()
}

func (g *stormGateway) url() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gw.URL()
}

// TestRunStorm: 45 devices and 5 sockets of one user are broken at once
// (dropped by the clients, or the gateway restarted); every client comes
// back by logging in again, none is refused, the gateway's online lists
// match the sockets, and events reached the live sockets.
func TestRunStorm(t *testing.T) {
	for _, mode := range []StormMode{StormDrop, StormRestart} {
		t.Run(string(mode), func(t *testing.T) {
			dir, err := StormDirectory(45)
			require.NoError(t, err)
			g := startStormGateway(t, dir)
			var progress bytes.Buffer
			rep, err := Run(context.Background(), Config{
				BaseURL: g.url(), Dir: dir, Clients: Mix{Users: 5, Devices: 45},
				Deliveries: 2000, Settle: 300 * time.Millisecond, ConnectConcurrency: 8,
				ServerPID: os.Getpid(), Progress: &syncWriter{w: &progress},
				Storm: &StormConfig{
					Mode: mode, Restart: g.restart, Before: 500 * time.Millisecond, After: 500 * time.Millisecond,
					Timeout: 60 * time.Second, BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second,
				},
			})
			require.NoError(t, err)
			sr := rep.Storm
			require.NotNil(t, sr)
			require.Equal(t, 50, rep.Connected, "errors: %v", rep.Errors)
			require.Equal(t, 50, sr.Clients)
			require.True(t, sr.AllBack, "back %d, errors: %v", sr.Back, rep.Errors)
			require.Equal(t, 50, sr.Back)
			require.Zero(t, sr.LoginsRefused, "refused: %v", sr.Refused)
			require.Empty(t, sr.Refused)
			require.GreaterOrEqual(t, sr.Attempts, sr.Reconnects)
			require.GreaterOrEqual(t, sr.Reconnects, int64(50))
			require.True(t, sr.PresenceConsistent, "online: %v", sr.Online)
			require.Equal(t, [2]int{1, 1}, sr.Online["user"])
			require.Equal(t, [2]int{45, 45}, sr.Online["device"])
			require.Positive(t, sr.ReceivedDeliveries)
			require.Nil(t, sr.Resume, "resume figures only with StormConfig.Resume")
			require.LessOrEqual(t, sr.ReceivedDeliveries, sr.ExpectedDeliveries, "a socket received an event published while it was not live")
			require.GreaterOrEqual(t, sr.LostOnBroken, int64(0))
			require.LessOrEqual(t, sr.LostOnBroken, sr.LostDeliveries)
			require.Positive(t, sr.FirstKSeconds)
			require.LessOrEqual(t, sr.FirstKSeconds, sr.BackSeconds)
			require.NotEmpty(t, rep.Series)
			if mode == StormRestart {
				require.Equal(t, 1, g.restarts)
				require.Positive(t, sr.RestartSeconds)
			}

			var text strings.Builder
			require.NoError(t, rep.WriteText(&text))
			require.Contains(t, text.String(), "back          50/50 in")
			require.Contains(t, text.String(), "refused       0 logins, 0 answers 429; no refusal")
			require.Contains(t, text.String(), "presence      consistent")
			require.Contains(t, progress.String(), "back=")
		})
	}
}

// TestRunStormResume: with Resume, every client resumes after the drop: each
// receives every event published from its first socket on, once, in JSON and
// binary frames. After a restart (the in-memory history is gone) every client
// is told ResumeFailed.
func TestRunStormResume(t *testing.T) {
	for _, tc := range []struct {
		mode   StormMode
		format Format
	}{{StormDrop, FormatJSON}, {StormDrop, FormatProto}, {StormRestart, FormatJSON}} {
		t.Run(string(tc.mode)+"/"+string(tc.format), func(t *testing.T) {
			dir, err := StormDirectory(18)
			require.NoError(t, err)
			g := startStormGateway(t, dir)
			rep, err := Run(context.Background(), Config{
				BaseURL: g.url(), Dir: dir, Clients: Mix{Users: 2, Devices: 18}, Format: tc.format,
				Deliveries: 1000, Settle: 300 * time.Millisecond, ConnectConcurrency: 8,
				ServerPID: os.Getpid(),
				Storm: &StormConfig{
					Mode: tc.mode, Restart: g.restart, Before: 500 * time.Millisecond, After: 500 * time.Millisecond,
					Timeout: 60 * time.Second, BackoffMin: 200 * time.Millisecond, BackoffMax: time.Second, Resume: true,
				},
			})
			require.NoError(t, err)
			sr := rep.Storm
			require.True(t, sr.AllBack, "back %d, errors: %v", sr.Back, rep.Errors)
			r := sr.Resume
			require.NotNil(t, r)
			require.Positive(t, r.Expected)
			require.Zero(t, r.Duplicates)
			if tc.mode == StormRestart {
				require.Equal(t, int64(20), r.ResumeFailed, "every client is told")
				return
			}
			require.Zero(t, r.ResumeFailed)
			require.Equal(t, r.Expected, r.Delivered, "errors: %v", rep.Errors)
			require.Zero(t, r.Missing)
			var text strings.Builder
			require.NoError(t, rep.WriteText(&text))
			require.Contains(t, text.String(), "missing 0, duplicates 0, ResumeFailed 0")
		})
	}
}

func TestFramePosition(t *testing.T) {
	require.Equal(t, "ab12-7", framePosition([]byte(`{"message":{"@type":"x", "header":{"time":1}},"position":"ab12-7"}`), false))
	require.Equal(t, "ab12-8", framePosition([]byte(`{"message":{"@type":"type.googleapis.com/teragate.v1.ResumeFailed", "reason":"unknown", "position" : "ab12-8"}}`), false))
	require.Empty(t, framePosition([]byte(`{"message":{}}`), false))
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{0x0a, 0x00})
	require.Empty(t, framePosition(b, true))
	b = protowire.AppendTag(b, positionField, protowire.BytesType)
	b = protowire.AppendString(b, "ab12-9")
	require.Equal(t, "ab12-9", framePosition(b, true))
}

func TestStormConfigErrors(t *testing.T) {
	dir, err := StormDirectory(2)
	require.NoError(t, err)
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "bare target", cfg: Config{Target: TargetBare, Storm: &StormConfig{}}},
		{name: "unknown mode", cfg: Config{Dir: dir, Storm: &StormConfig{Mode: "flood"}}},
		{name: "restart without restart", cfg: Config{Dir: dir, Storm: &StormConfig{Mode: StormRestart}}},
		{name: "backoff max below min", cfg: Config{Dir: dir, Storm: &StormConfig{BackoffMin: time.Second, BackoffMax: time.Millisecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.BaseURL, tt.cfg.Clients, tt.cfg.Rate = "http://127.0.0.1:1", Mix{Devices: 1}, 1
			_, err := Run(context.Background(), tt.cfg)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

// TestBackoff: sdk/client's policy — each wait is between half and all of
// the delay, which doubles up to the maximum.
func TestBackoff(t *testing.T) {
	tests := []struct {
		delay, max, next time.Duration
	}{
		{delay: 250 * time.Millisecond, max: 30 * time.Second, next: 500 * time.Millisecond},
		{delay: 20 * time.Second, max: 30 * time.Second, next: 30 * time.Second},
		{delay: 30 * time.Second, max: 30 * time.Second, next: 30 * time.Second},
		{delay: 1, max: 1, next: 1},
	}
	for _, tt := range tests {
		for range 100 {
			wait, next := backoff(tt.delay, tt.max)
			require.GreaterOrEqual(t, wait, tt.delay/2)
			require.LessOrEqual(t, wait, tt.delay)
			require.Equal(t, tt.next, next)
		}
	}
}

// TestSameSet: the presence check refuses a missing, extra or repeated uuid.
func TestSameSet(t *testing.T) {
	set := map[string]bool{"a": true, "b": true}
	tests := []struct {
		list []string
		want bool
	}{
		{list: []string{"b", "a"}, want: true},
		{list: []string{"a"}, want: false},
		{list: []string{"a", "b", "c"}, want: false},
		{list: []string{"a", "a"}, want: false},
		{list: []string{"a", "c"}, want: false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, sameSet(tt.list, set), "%v", tt.list)
	}
	require.True(t, sameSet(nil, map[string]bool{}))
}

// TestStormDirectory: one user whose project holds nobody else, devices
// linked to participants of other projects.
func TestStormDirectory(t *testing.T) {
	d, err := StormDirectory(250)
	require.NoError(t, err)
	require.Len(t, d.Users, 1)
	require.Len(t, d.Devices, 250)
	require.NotEmpty(t, d.AdminServiceToken())
	userProject := d.Users[0].Projects[0]
	for _, p := range d.Participants {
		require.NotEqual(t, userProject, p.Project)
	}
	a := newAudience(d)
	for p := range d.Participants {
		require.Empty(t, a.usersByProject[a.projectOfParticipant[p]], "participant %d's project has the user", p)
	}
}
