package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

// resumeLogin logs alice in on base and opens her websocket with resume=1 (and since unless "").
func resumeLogin(t *testing.T, base, since string) *websocket.Conn {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/user/login?with_websocket=true", nil)
	require.NoError(t, err)
	req.SetBasicAuth("alice", "alice-demo")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		URL string `json:"websocket_url"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	u := out.URL + "&resume=1"
	if since != "" {
		u += "&since=" + since
	}
	ws, r, err := websocket.DefaultDialer.Dial(u, nil)
	if r != nil {
		r.Body.Close()
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// posFrame is a JSON frame of a resume=1 socket.
type posFrame struct {
	Position string `json:"position"`
	Message  struct {
		Type   string           `json:"@type"`
		Reason string           `json:"reason"`
		Events []map[string]any `json:"events"`
	} `json:"message"`
}

func readPosFrame(t *testing.T, ws *websocket.Conn) posFrame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	var f posFrame
	require.NoError(t, json.Unmarshal(data, &f), "%s", data)
	return f
}

// publishStop posts a StopSessionEvent (every user may see it) on base as the demo service.
func publishStop(base, session string) error {
	body := `{"header": {"version": 1, "time": 1, "topic": "module.TeraServer.UserManagerModule.events"}, "events": [{"@type": "type.googleapis.com/opentera.protobuf.StopSessionEvent", "sessionUuid": "` + session + `"}]}`
	req, err := http.NewRequest(http.MethodPost, base+"/api/events", strings.NewReader(body))
	if err != nil {
		return err
	}
	for _, l := range directory.DemoLogins {
		if l.Kind == directory.KindService {
			req.Header.Set("Authorization", "OpenTera "+l.Token)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("publish: status %d", resp.StatusCode)
	}
	return nil
}

// TestRedisResumeKilledNode runs two nodes on one redis-server: node A in process, node B the real
// binary. alice's resume=1 socket is on B; node A publishes a numbered stream; B is killed with
// SIGKILL half-way (alice's socket just breaks). alice resumes on A from the last position she
// processed and gets the rest of the stream — including what was published while she had no
// socket — once each, in order.
func TestRedisResumeKilledNode(t *testing.T) {
	bin := buildBinary(t)
	srv := testutil.StartRedis(t)
	cmdB, baseB, _ := startServe(t, bin, "--insecure", "--redis", srv.URL)
	a, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Insecure: true, DataDir: t.TempDir(), Redis: srv.URL,
		Logger: hclog.NewNullLogger()})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})

	ws := resumeLogin(t, baseB, "")
	waitEvent(t, ws, "USER_CONNECTED", directory.DemoAliceUUID)

	const n = 120
	id := func(i int) string { return fmt.Sprintf("seq-%03d", i) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if err := publishStop(a.URL(), id(i)); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var got []string
	last := ""
	killed := false
	for len(got) < n {
		if !killed && len(got) == n/3 {
			killed = true
			require.NoError(t, cmdB.Process.Signal(syscall.SIGKILL))
			_ = cmdB.Wait()
			ws = resumeLogin(t, a.URL(), last)
		}
		f := readPosFrame(t, ws)
		require.NotEqual(t, "type.googleapis.com/teragate.v1.ResumeFailed", f.Message.Type, "reason %q", f.Message.Reason)
		if f.Position != "" {
			last = f.Position
		}
		for _, ev := range f.Message.Events {
			if s, _ := ev["sessionUuid"].(string); strings.HasPrefix(s, "seq-") {
				got = append(got, s)
			}
		}
	}
	wg.Wait()
	want := make([]string, n)
	for i := range want {
		want[i] = id(i)
	}
	require.Equal(t, want, got)
}
