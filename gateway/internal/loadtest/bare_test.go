package loadtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestBareServerPingsAndClose(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  BareConfig
	}{
		{name: "prepared", cfg: BareConfig{Mode: BarePrepared}},
		{name: "batched", cfg: BareConfig{Mode: BareBatched}},
		{name: "batched lazy", cfg: BareConfig{Mode: BareBatched, LazyWriter: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.PingInterval = 50 * time.Millisecond
			bs, err := NewBareServer(tt.cfg)
			require.NoError(t, err)
			srv := httptest.NewServer(bs)
			defer srv.Close()

			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
			require.NoError(t, err)
			defer func() { _ = ws.Close() }()
			var pings atomic.Int32
			ws.SetPingHandler(func(string) error { pings.Add(1); return nil })
			readErr := make(chan error, 1)
			go func() {
				for {
					if _, _, err := ws.NextReader(); err != nil {
						readErr <- err
						return
					}
				}
			}()
			require.Eventually(t, func() bool { return pings.Load() >= 2 }, 5*time.Second, 10*time.Millisecond)
			require.Equal(t, int64(1), bs.Stats().Conns)

			bs.Close()
			select {
			case err := <-readErr:
				require.Error(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("connection not closed by Close")
			}
			require.Equal(t, int64(0), bs.Stats().Conns)

			// After Close, new websockets are refused.
			ws2, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
			if err == nil {
				_, _, err = ws2.ReadMessage()
				_ = ws2.Close()
			}
			require.Error(t, err)
		})
	}
}

func TestBareServerHTTP(t *testing.T) {
	bs, err := NewBareServer(BareConfig{})
	require.NoError(t, err)
	defer bs.Close()
	srv := httptest.NewServer(bs)
	defer srv.Close()
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/stats", http.StatusOK},
		{http.MethodGet, "/api/events", http.StatusMethodNotAllowed},
		{http.MethodPost, "/api/events", http.StatusNoContent},
		{http.MethodGet, "/nope", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("x"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, tt.want, resp.StatusCode, "%s %s", tt.method, tt.path)
	}
	require.Equal(t, int64(1), bs.Stats().Published)

	_, err = NewBareServer(BareConfig{Mode: "fast"})
	require.ErrorIs(t, err, ErrBareMode)
}

func TestAppendFrame(t *testing.T) {
	for _, tt := range []struct {
		n          int
		wantHeader []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{70000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
	} {
		f := appendFrame(nil, websocket.TextMessage, make([]byte, tt.n))
		require.Equal(t, tt.wantHeader, f[:len(tt.wantHeader)])
		require.Len(t, f, len(tt.wantHeader)+tt.n)
	}
}
