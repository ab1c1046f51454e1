package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

// env is a running gateway on a random loopback port with its clients.
type env struct {
	t      *testing.T
	gw     *gateway.Gateway
	base   string
	client *http.Client
	dialer *websocket.Dialer
}

func demoToken(kind directory.Kind, uuid string) string {
	for _, l := range directory.DemoLogins {
		if l.Kind == kind && l.UUID == uuid {
			return l.Token
		}
	}
	panic("no demo token for " + uuid)
}

var serviceToken = demoToken(directory.KindService, directory.DemoServiceUUID)

func startGateway(t *testing.T, mutate func(*gateway.Config)) *env {
	t.Helper()
	cfg := gatewaytest.Config(t)
	if mutate != nil {
		mutate(&cfg)
	}
	gw := gatewaytest.Start(t, func(c *gateway.Config) { *c = cfg })
	e := &env{t: t, gw: gw, base: gw.URL(), client: &http.Client{Timeout: 10 * time.Second}, dialer: &websocket.Dialer{HandshakeTimeout: 5 * time.Second}}
	if !cfg.Insecure {
		certPath := gw.CertificatePath()
		if certPath == "" {
			certPath = cfg.TLSCert
		}
		pem, err := os.ReadFile(certPath)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem))
		tcfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		e.client.Transport = &http.Transport{TLSClientConfig: tcfg}
		e.dialer.TLSClientConfig = tcfg
	}
	return e
}

// do sends a request and returns the status and body.
func (e *env) do(method, path string, body io.Reader, hdr map[string]string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, body)
	require.NoError(e.t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, b
}

// login logs in and returns the decoded JSON response. cred is "user:password" for Basic or a
// token.
func (e *env) login(kind directory.Kind, cred string, query string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+"/api/"+kind.String()+"/login"+query, nil)
	require.NoError(e.t, err)
	if u, p, ok := strings.Cut(cred, ":"); ok {
		req.SetBasicAuth(u, p)
	} else {
		req.Header.Set("Authorization", "OpenTera "+cred)
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		out = map[string]any{"_raw": string(b)}
	}
	return resp.StatusCode, out
}

// wsURL logs in with_websocket and returns the websocket_url.
func (e *env) wsURL(kind directory.Kind, cred string) string {
	e.t.Helper()
	code, out := e.login(kind, cred, "?with_websocket=true")
	require.Equal(e.t, http.StatusOK, code, "login: %v", out)
	u, ok := out["websocket_url"].(string)
	require.True(e.t, ok, "no websocket_url in %v", out)
	return u
}

// sock is a websocket client of the gateway.
type sock struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *env) dial(url string) *sock {
	e.t.Helper()
	ws, resp, err := e.dialer.Dial(url, nil)
	if resp != nil {
		resp.Body.Close()
	}
	require.NoError(e.t, err)
	s := &sock{t: e.t, ws: ws}
	e.t.Cleanup(func() { _ = ws.Close() })
	return s
}

// connect logs in and opens a websocket, then waits for the client's own CONNECTED event.
func (e *env) connect(kind directory.Kind, cred string) *sock {
	e.t.Helper()
	s := e.dial(e.wsURL(kind, cred))
	s.expectType("CONNECTED")
	return s
}

// next returns the next frame's JSON (TeraMessage). The 15 s bound only ends a test whose frame
// never comes (several gateways compiling plugins under -race on 2 cores can take seconds).
func (s *sock) next() map[string]any {
	s.t.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	mt, data, err := s.ws.ReadMessage()
	require.NoError(s.t, err)
	require.Equal(s.t, websocket.TextMessage, mt)
	var m map[string]any
	require.NoError(s.t, json.Unmarshal(data, &m), "frame %s", data)
	return m
}

// event returns the single event of the next frame.
func (s *sock) event() map[string]any {
	s.t.Helper()
	evs := s.frameEvents()
	require.Len(s.t, evs, 1)
	return evs[0]
}

// frameEvents returns the events of the next frame (one frame per TeraEvent: a multi-event
// TeraEvent arrives as one frame with the events the client may see).
func (s *sock) frameEvents() []map[string]any {
	s.t.Helper()
	m := s.next()
	msg := m["message"].(map[string]any)
	require.Equal(s.t, "type.googleapis.com/opentera.protobuf.TeraEvent", msg["@type"])
	var out []map[string]any
	for _, ev := range msg["events"].([]any) {
		out = append(out, ev.(map[string]any))
	}
	return out
}

// expectType reads the next event and checks that its "type" ends with suffix.
func (s *sock) expectType(suffix string) map[string]any {
	s.t.Helper()
	ev := s.event()
	typ, _ := ev["type"].(string)
	require.True(s.t, strings.HasSuffix(typ, suffix), "want a %s event, got %v", suffix, ev)
	return ev
}

// expectClose reads until the connection closes and checks the close code.
func (s *sock) expectClose(code int) {
	s.t.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := s.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.True(s.t, errors.As(err, &ce), "want close %d, got %v", code, err)
		require.Equal(s.t, code, ce.Code)
		return
	}
}

func anyOf(t *testing.T, m proto.Message) *anypb.Any {
	a, err := opentera.NewAny(m)
	require.NoError(t, err)
	return a
}

// publish posts a TeraEvent with the given events on topic as a service, in JSON.
func (e *env) publish(topic string, events ...proto.Message) {
	e.t.Helper()
	te := &opentera.TeraEvent{Header: &opentera.TeraEvent_Header{Version: 1, Time: 1, Topic: topic}}
	for _, m := range events {
		te.Events = append(te.Events, anyOf(e.t, m))
	}
	body, err := protojson.Marshal(te)
	require.NoError(e.t, err)
	code, out := e.do(http.MethodPost, "/api/events", strings.NewReader(string(body)),
		map[string]string{"Authorization": "OpenTera " + serviceToken, "Content-Type": "application/json"})
	require.Equal(e.t, http.StatusAccepted, code, "publish: %s", out)
}

const umEvents = "module.TeraServer.UserManagerModule.events"

// marker publishes a StopSessionEvent (everyone receives it) with a unique session uuid and
// returns it: reading it proves nothing else was queued before it.
func (e *env) marker(name string) string {
	e.t.Helper()
	id := fmt.Sprintf("marker-%s-%d", name, time.Now().UnixNano())
	e.publish(umEvents, &opentera.StopSessionEvent{SessionUuid: id})
	return id
}

func (s *sock) expectMarker(id string) {
	s.t.Helper()
	ev := s.event()
	require.Equal(s.t, id, ev["sessionUuid"], "expected the marker, got %v", ev)
}
