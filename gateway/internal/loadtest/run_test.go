package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/proto/opentera"
)

func newBareHTTP(t *testing.T, mode BareMode, lazy bool) (*BareServer, *httptest.Server) {
	t.Helper()
	bs, err := NewBareServer(BareConfig{Mode: mode, LazyWriter: lazy})
	require.NoError(t, err)
	srv := httptest.NewServer(bs)
	t.Cleanup(func() {
		bs.Close()
		srv.Close()
	})
	return bs, srv
}

func TestRunBare(t *testing.T) {
	tests := []struct {
		name   string
		mode   BareMode
		lazy   bool
		format Format
		event  EventKind
	}{
		{name: "prepared json", mode: BarePrepared, format: FormatJSON, event: EventStop},
		{name: "batched json", mode: BareBatched, format: FormatJSON, event: EventStop},
		{name: "batched proto participant", mode: BareBatched, format: FormatProto, event: EventParticipant},
		{name: "prepared lazy writer", mode: BarePrepared, lazy: true, format: FormatJSON, event: EventStop},
		{name: "batched lazy writer proto", mode: BareBatched, lazy: true, format: FormatProto, event: EventStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, srv := newBareHTTP(t, tt.mode, tt.lazy)
			var progress bytes.Buffer
			rep, err := Run(context.Background(), Config{
				Target: TargetBare, BaseURL: srv.URL, BareMode: tt.mode,
				Clients: Mix{Users: 20, Participants: 15, Devices: 15}, Format: tt.format, Event: tt.event,
				Rate: 400, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond,
				Settle: 50 * time.Millisecond, ServerPID: os.Getpid(), Progress: &syncWriter{w: &progress},
			})
			require.NoError(t, err)
			require.Equal(t, 50, rep.Connected)
			require.Zero(t, rep.ConnectErrors)
			require.Zero(t, rep.PublishErrors)
			require.Positive(t, rep.PublishedEvents)
			require.Equal(t, rep.PublishedEvents*50, rep.ExpectedDeliveries)
			require.Equal(t, rep.ExpectedDeliveries, rep.ReceivedDeliveries)
			require.Zero(t, rep.LostDeliveries)
			require.Zero(t, rep.Disconnected)
			require.Equal(t, 50.0, rep.RecipientsPerEvent)
			require.Positive(t, rep.FrameBytes)
			require.Positive(t, rep.LatencyMaxms)
			require.LessOrEqual(t, rep.LatencyP50ms, rep.LatencyP99ms)
			require.LessOrEqual(t, rep.LatencyP99ms, rep.LatencyMaxms)
			require.Positive(t, rep.ServerRSSMiB)
			require.Zero(t, bs.Stats().Dropped)
			require.GreaterOrEqual(t, bs.Stats().Written, rep.ReceivedDeliveries)

			var text, js bytes.Buffer
			require.NoError(t, rep.WriteText(&text))
			require.Contains(t, text.String(), "target        bare ("+string(tt.mode)+")")
			require.Contains(t, text.String(), "lost 0")
			require.NoError(t, rep.WriteJSON(&js))
			back := &Report{}
			require.NoError(t, json.Unmarshal(js.Bytes(), back))
			require.Equal(t, rep.ReceivedDeliveries, back.ReceivedDeliveries)
		})
	}
}

func TestRunBareDeliveriesAndIdle(t *testing.T) {
	_, srv := newBareHTTP(t, BarePrepared, false)
	rep, err := Run(context.Background(), Config{
		Target: TargetBare, BaseURL: srv.URL, Clients: Mix{Devices: 40},
		Deliveries: 8000, Duration: 500 * time.Millisecond, Settle: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	require.InDelta(t, 200, rep.OfferedEventsPerSec, 0.001)
	require.Equal(t, rep.ExpectedDeliveries, rep.ReceivedDeliveries)
	require.Zero(t, rep.ServerRSSMiB, "no pid, no server figures")

	rep, err = Run(context.Background(), Config{
		Target: TargetBare, BaseURL: srv.URL, Clients: Mix{Devices: 30}, Idle: true,
		IdleWait: 100 * time.Millisecond, ServerPID: os.Getpid(),
	})
	require.NoError(t, err)
	require.True(t, rep.Idle)
	require.Equal(t, 30, rep.Connected)
	require.Positive(t, rep.ServerRSSMiB)
	// Two steps: every tenth client first, then the rest.
	require.Equal(t, 3, rep.IdleWarmClients)
	require.Positive(t, rep.ServerRSSWarmMiB)
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "KiB/conn")
	require.Contains(t, text.String(), "after the first 3 clients")
}

func TestRunConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no url", cfg: Config{Target: TargetBare, Clients: Mix{Users: 1}, Rate: 1}},
		{name: "no clients", cfg: Config{Target: TargetBare, BaseURL: "http://x", Rate: 1}},
		{name: "no rate", cfg: Config{Target: TargetBare, BaseURL: "http://x", Clients: Mix{Users: 1}}},
		{name: "gateway without identities", cfg: Config{BaseURL: "http://x", Clients: Mix{Users: 1}, Rate: 1}},
		{name: "bad format", cfg: Config{Target: TargetBare, BaseURL: "http://x", Clients: Mix{Users: 1}, Rate: 1, Format: "xml"}},
		{name: "bad target", cfg: Config{Target: "nginx", BaseURL: "http://x", Clients: Mix{Users: 1}, Rate: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

// fakeGateway implements the part of the gateway contract the bench uses:
// the three login endpoints, /wss/<type>?id=<ticket>, POST /api/events with
// a service token (binary TeraEvent), OpenTera's filtering of
// ParticipantEvents and StopSessionEvents, and a presence event to every
// socket when one connects.
type fakeGateway struct {
	t   *testing.T
	dir *Directory
	srv *httptest.Server
	a   *audience

	mu      sync.Mutex
	tickets map[string]fakeIdentity
	conns   map[*fakeConn]bool
	// passwordLogins counts user logins by password without a websocket.
	passwordLogins int
}

func TestRunConnectOnlyTokenLogin(t *testing.T) {
	dir, err := GenerateDirectory(GenerateOptions{Users: 5, Participants: 4, Devices: 4, Projects: 2})
	require.NoError(t, err)
	g := newFakeGateway(t, dir)
	rep, err := Run(context.Background(), Config{
		Target: TargetGateway, BaseURL: g.srv.URL, Dir: dir, ConnectOnly: true, UserLogin: UserLoginToken,
		Clients: Mix{Users: 10, Participants: 4, Devices: 4}, ConnectConcurrency: 4, ConnectRate: -1,
		Settle: 400 * time.Millisecond, ServerPID: os.Getpid(),
	})
	require.NoError(t, err)
	require.Equal(t, 18, rep.Connected, "errors: %v", rep.Errors)
	require.Equal(t, "token", rep.UserLogin)
	require.False(t, rep.TLS)
	require.Zero(t, rep.PublishedEvents)
	g.mu.Lock()
	require.Equal(t, 5, g.passwordLogins, "one password login per user entity, before the clock")
	g.mu.Unlock()
	var out strings.Builder
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "users by token (JWT)")
	require.Contains(t, out.String(), "connect only")
	require.Contains(t, out.String(), "µs/open")
}

type fakeIdentity struct {
	kind   Kind
	entity int
}

type fakeConn struct {
	id fakeIdentity
	mu sync.Mutex
	ws *websocket.Conn
}

func newFakeGateway(t *testing.T, dir *Directory) *fakeGateway {
	g := &fakeGateway{t: t, dir: dir, a: newAudience(dir), tickets: map[string]fakeIdentity{}, conns: map[*fakeConn]bool{}}
	g.srv = httptest.NewServer(g)
	t.Cleanup(func() {
		g.mu.Lock()
		for c := range g.conns {
			_ = c.ws.Close()
		}
		g.mu.Unlock()
		g.srv.Close()
	})
	return g
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "OpenTera ")
	switch {
	case r.URL.Path == "/api/user/login":
		name, pw, basic := r.BasicAuth()
		for i, u := range g.dir.Users {
			userTok := "user-token-" + u.Username
			switch {
			case basic && (u.Username != name || pw != g.dir.Password), !basic && tok != userTok:
				continue
			case r.URL.Query().Get("with_websocket") == "true":
				g.login(w, "user", fakeIdentity{KindUser, i})
			default: // a password login without websocket: the user's token
				g.mu.Lock()
				g.passwordLogins++
				g.mu.Unlock()
				_ = json.NewEncoder(w).Encode(map[string]any{"user_token": userTok})
			}
			return
		}
	case r.URL.Path == "/api/participant/login":
		for i, p := range g.dir.Participants {
			if p.Token == tok {
				g.login(w, "participant", fakeIdentity{KindParticipant, i})
				return
			}
		}
	case r.URL.Path == "/api/device/login":
		for i, d := range g.dir.Devices {
			if d.Token == tok {
				g.login(w, "device", fakeIdentity{KindDevice, i})
				return
			}
		}
	case strings.HasPrefix(r.URL.Path, "/wss/"):
		g.mu.Lock()
		id, ok := g.tickets[r.URL.Query().Get("id")]
		delete(g.tickets, r.URL.Query().Get("id"))
		g.mu.Unlock()
		if !ok || id.kind.String() != strings.TrimPrefix(r.URL.Path, "/wss/") {
			http.Error(w, "bad ticket", http.StatusForbidden)
			return
		}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &fakeConn{id: id, ws: ws}
		g.mu.Lock()
		g.conns[c] = true
		g.mu.Unlock()
		go func() {
			for {
				if _, _, err := ws.NextReader(); err != nil {
					g.mu.Lock()
					delete(g.conns, c)
					g.mu.Unlock()
					return
				}
			}
		}()
		// A presence event for everyone: not a bench event.
		g.send(func(*fakeConn) bool { return true }, &opentera.TeraEvent{
			Header: &opentera.TeraEvent_Header{Version: 1, Time: unixSeconds(time.Now()), Topic: UserManagerTopic},
			Events: []*anypb.Any{mustAny(g.t, &opentera.UserEvent{UserUuid: "x", Type: opentera.UserEvent_USER_CONNECTED})},
		})
		return
	case r.URL.Path == "/api/events" && r.Method == http.MethodPost:
		if tok != g.dir.AdminServiceToken() {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		ev := &opentera.TeraEvent{}
		if r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, ev) != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		inner, err := ev.GetEvents()[0].UnmarshalNew()
		require.NoError(g.t, err)
		switch e := inner.(type) {
		case *opentera.StopSessionEvent:
			g.send(func(*fakeConn) bool { return true }, ev)
		case *opentera.ParticipantEvent:
			p := g.a.participantIndex[e.GetParticipantUuid()]
			g.send(func(c *fakeConn) bool {
				switch c.id.kind {
				case KindUser:
					for _, u := range g.a.usersByProject[g.a.projectOfParticipant[p]] {
						if u == c.id.entity {
							return true
						}
					}
					return false
				case KindParticipant:
					return c.id.entity == p
				default:
					for _, d := range g.a.devicesByParticipant[p] {
						if d == c.id.entity {
							return true
						}
					}
					return false
				}
			}, ev)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Error(w, "not found", http.StatusNotFound)
}

func (g *fakeGateway) login(w http.ResponseWriter, kind string, id fakeIdentity) {
	ticket := newToken()
	g.mu.Lock()
	g.tickets[ticket] = id
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"websocket_url": "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/wss/" + kind + "?id=" + ticket,
	})
}

func (g *fakeGateway) send(to func(*fakeConn) bool, ev *opentera.TeraEvent) {
	frame, err := encodeFrame(ev, FormatJSON)
	require.NoError(g.t, err)
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		if to(c) {
			c.mu.Lock()
			_ = c.ws.WriteMessage(websocket.TextMessage, frame)
			c.mu.Unlock()
		}
	}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	a, err := opentera.NewAny(m)
	require.NoError(t, err)
	return a
}

func TestRunGatewayContract(t *testing.T) {
	dir, err := GenerateDirectory(GenerateOptions{Users: 12, Participants: 6, Devices: 9, Projects: 3})
	require.NoError(t, err)
	g := newFakeGateway(t, dir)
	for _, ev := range []EventKind{EventStop, EventParticipant} {
		t.Run(string(ev), func(t *testing.T) {
			rep, err := Run(context.Background(), Config{
				Target: TargetGateway, BaseURL: g.srv.URL, Dir: dir, Event: ev,
				Clients: Mix{Users: 12, Participants: 6, Devices: 9}, ConnectConcurrency: 8,
				Rate: 300, Duration: 400 * time.Millisecond, Warmup: 100 * time.Millisecond, Settle: 600 * time.Millisecond,
			})
			require.NoError(t, err)
			require.Equal(t, 27, rep.Connected, "errors: %v", rep.Errors)
			require.Zero(t, rep.PublishErrors, "errors: %v", rep.Errors)
			require.Positive(t, rep.ExpectedDeliveries)
			require.Equal(t, rep.ExpectedDeliveries, rep.ReceivedDeliveries)
			if ev == EventParticipant {
				// Per participant: 4 users of its project, itself, and its
				// 1 or 2 linked devices (9 devices over 6 participants).
				require.InDelta(t, 4+1+1.5, rep.RecipientsPerEvent, 0.001)
			} else {
				require.Equal(t, 27.0, rep.RecipientsPerEvent)
			}
		})
	}
}

// syncWriter serialises writes for a buffer shared with the progress loop.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestPaceEnds: the pace of the first and last thousand opens, from their completion times.
func TestPaceEnds(t *testing.T) {
	start := time.Unix(100, 0)
	ms := func(d int) int64 { return start.Add(time.Duration(d) * time.Millisecond).UnixNano() }
	tests := []struct {
		name        string
		at          []int64
		first, last float64
	}{
		{name: "too few", at: []int64{ms(1), ms(2)}},
		{name: "steady", at: []int64{ms(1), ms(2), ms(3), ms(4)}, first: 1000, last: 1000},
		{name: "slows down, unordered", at: []int64{ms(2), ms(1), ms(20), ms(10)}, first: 1000, last: 2 / 0.018},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, last := paceEnds(tt.at, start, 2)
			require.InDelta(t, tt.first, first, 1e-6)
			require.InDelta(t, tt.last, last, 1e-6)
		})
	}
}
