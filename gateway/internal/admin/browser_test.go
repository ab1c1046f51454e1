package admin_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium for the test, or skips the test when it is not installed
// (fails instead with TERAGATE_REQUIRE_BROWSER=1, as CI sets it). It returns an allocator
// context: each chromedp.NewContext of it is a new tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	required := os.Getenv("TERAGATE_REQUIRE_BROWSER") == "1"
	if _, err := os.Stat(chromiumPath); err != nil {
		if required {
			t.Fatalf("TERAGATE_REQUIRE_BROWSER=1 but headless Chromium is missing at %s (apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("headless Chromium not installed at %s (apt-get install chromium); set TERAGATE_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
	}
	if testing.Short() && !required {
		t.Skip("browser test skipped with -short")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.UserDataDir(t.TempDir()),
		// The gateway's self-signed certificate (what `teragate serve` generates by default).
		chromedp.Flag("ignore-certificate-errors", true),
	)
	ctx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return ctx
}

// studioUUID is a station device added to the demo identities.
const studioUUID = "00000000-0000-4000-8000-000000000203"

const stationDevice = `
  - uuid: ` + studioUUID + `
    token: studio-a-test-token-not-a-secret-0123
    name: Studio A
    sites: [s1]
    participants: []
    onlineable: true
    station: true
`

// gw is a real gateway for the browser, with an HTTP client and websocket dialer trusting it.
type gw struct {
	t      *testing.T
	g      *gateway.Gateway
	base   string
	client *http.Client
	dialer *websocket.Dialer
}

// startGateway starts a gateway on a random port: TLS with a generated self-signed certificate
// unless insecure, the demo identities, and the scripted echo guest as the device filter plugin
// (delivering every event), so the plugin table has a row.
func startGateway(t *testing.T, insecure bool) *gw {
	t.Helper()
	return startGatewayWith(t, insecure, nil)
}

// startGatewayWith is startGateway with the config changed by mutate (when not nil) before New.
func startGatewayWith(t *testing.T, insecure bool, mutate func(*gateway.Config)) *gw {
	t.Helper()
	wasm, err := os.ReadFile("../pluginhost/testdata/echo.wasm")
	require.NoError(t, err)
	init, err := proto.Marshal(&pluginv1.InitResult{Name: "deliver-all"})
	require.NoError(t, err)
	first, err := proto.Marshal(&pluginv1.FilterResult{Result: &pluginv1.FilterResult_Rule{Rule: &pluginv1.Rule{AnyOf: []*pluginv1.Clause{{}}}}})
	require.NoError(t, err)
	pcfg := binary.LittleEndian.AppendUint32(nil, uint32(len(init)))
	pcfg = binary.LittleEndian.AppendUint32(pcfg, uint32(len(first)))
	pcfg = binary.LittleEndian.AppendUint32(pcfg, 0)
	pcfg = append(append(pcfg, init...), first...)
	plugins := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(plugins, "filter.device.wasm"), wasm, 0o644))
	ids := filepath.Join(t.TempDir(), "identities.yaml")
	require.NoError(t, os.WriteFile(ids, []byte(strings.Replace(string(directory.DemoYAML), "\nservices:", stationDevice+"\nservices:", 1)), 0o600))

	off := false
	cfg := gateway.Config{
		Listen:         "127.0.0.1:0",
		Insecure:       insecure,
		DataDir:        t.TempDir(),
		Plugins:        plugins,
		Identities:     ids,
		BuiltinPlugins: &off,
		PluginConfig:   map[string]gateway.PluginConfig{"filter.device": {Config: string(pcfg), Timeout: gateway.Duration(5 * time.Second)}},
		Logger:         hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr}),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := gateway.New(cfg)
	require.NoError(t, err)
	require.NoError(t, g.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	<-g.PluginsReady()
	e := &gw{t: t, g: g, base: g.URL(), client: &http.Client{Timeout: 10 * time.Second},
		dialer: &websocket.Dialer{HandshakeTimeout: 5 * time.Second}}
	if !insecure {
		pem, err := os.ReadFile(g.CertificatePath())
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem))
		tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		e.client.Transport = &http.Transport{TLSClientConfig: tc}
		e.dialer.TLSClientConfig = tc
	}
	return e
}

// do sends a request (authz is the whole Authorization header, or empty) and returns the status
// and body.
func (e *gw) do(method, path, authz, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, string(b)
}

// login logs a user in with a password (or a device with its token) and returns the reply.
func (e *gw) login(kind directory.Kind, cred, query string) map[string]any {
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
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	var out map[string]any
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// connect opens a websocket for the entity as an OpenTera client would.
func (e *gw) connect(kind directory.Kind, cred string) *websocket.Conn {
	e.t.Helper()
	url, _ := e.login(kind, cred, "?with_websocket=true")["websocket_url"].(string)
	require.NotEmpty(e.t, url)
	ws, resp, err := e.dialer.Dial(url, nil)
	if resp != nil {
		resp.Body.Close()
	}
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = ws.Close() })
	go func() { // read (and so answer pings) until closed
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return ws
}

// page is one browser tab on the admin page.
type page struct {
	t   *testing.T
	ctx context.Context
	tab context.Context // ctx without its bound, for the rare step that takes longer on purpose
}

func openPage(t *testing.T, alloc context.Context, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The first run starts the browser, which lives as long as ctx: no timeout on that one.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#login-form"))))
	bounded, cancel2 := context.WithTimeout(ctx, 90*time.Second) // a bound for a stuck browser, not a speed check
	t.Cleanup(cancel2)
	return &page{t: t, ctx: bounded, tab: ctx}
}

// signIn fills in the form and submits it.
func (p *page) signIn(user, pass string) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx,
		chromedp.SetValue(chromedp.CSS("#username"), user),
		chromedp.SetValue(chromedp.CSS("#password"), pass),
		chromedp.Click(chromedp.CSS("#login")),
	))
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	require.NoError(p.t, err, "evaluating %s", expr)
	return v
}

// waitFor polls a boolean JavaScript expression until it holds. On failure it shows the page's
// text, which says what the page did show.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	ok, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil || !ok {
		text, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		p.t.Fatalf("page never showed %s (%v); it shows:\n%s", what, err, text)
	}
}

// text is the JavaScript expression for the text of the first element matching a CSS selector
// ("" when there is none).
func text(selector string) string {
	return fmt.Sprintf(`((document.querySelector(%s) || {}).innerText || "")`, strconv.Quote(selector))
}

func row(table, uuid string) string { return fmt.Sprintf(`#%s tr[data-uuid=%q]`, table, uuid) }

// TestAdminPageInBrowser drives the admin page in headless Chromium against a real gateway on its
// default TLS: a wrong password and a non-admin are turned away (the latter with the admins-only
// message, no token kept); the admin signs in and sees the plugin list and the stations section;
// alice appears online when her websocket connects, busy when she joins a room created through the
// rooms API (which appears in the rooms table with her session state), and disappears when her
// websocket closes; robot1's status changes show up as they happen; the event log proves the
// changes came over the admin's websocket; signing out drops the token and revokes it.
func TestAdminPageInBrowser(t *testing.T) {
	alloc := browser(t)
	e := startGateway(t, false)
	require.True(t, strings.HasPrefix(e.base, "https://"))
	p := openPage(t, alloc, e.base+gateway.AdminPath)

	// A wrong password: Loop's 401 message, no browser password prompt in the way.
	p.signIn("admin", "not-the-password")
	p.waitFor("the refusal of a wrong password", text("#login-error")+`.includes("Sign-in refused")`)

	// A non-admin: the APIs answer 403, the page says so and keeps no token.
	p.signIn("alice", "alice-demo")
	p.waitFor("the admins-only message", text("#login-error")+`.includes("Admins only")`)
	require.Empty(t, eval[string](p, `sessionStorage.getItem("teragate.admin.token") || ""`), "a non-admin's token must not be kept")
	require.True(t, eval[bool](p, `document.getElementById("dash").hidden`))

	// The admin.
	p.signIn("admin", "admin-demo")
	p.waitFor("the dashboard", `!document.getElementById("dash").hidden`)
	stored := eval[string](p, `sessionStorage.getItem("teragate.admin.token") || ""`)
	require.NotEmpty(t, stored, "the admin's token is kept in sessionStorage")
	p.waitFor("the live badge", text("#live")+` === "live"`)
	// The admin's own websocket makes it online.
	p.waitFor("the admin online", text(row("users", directory.DemoAdminUUID)+" td.online")+` === "online"`)

	// Plugins: the row of the device filter with its version hash.
	code, body := e.do("GET", "/api/plugins", "OpenTera "+e.login(directory.KindUser, "admin:admin-demo", "")["user_token"].(string), "")
	require.Equal(t, http.StatusOK, code, body)
	var pl struct {
		Plugins []struct {
			ID   string `json:"id"`
			Hash string `json:"version_hash"`
		} `json:"plugins"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &pl))
	require.Len(t, pl.Plugins, 1)
	plug := `#plugins-table tr[data-id="filter.device"]`
	p.waitFor("the plugin row", text(plug+" td.hash")+fmt.Sprintf(` === %q`, pl.Plugins[0].Hash[:12]))
	plugRow := eval[string](p, text(plug))
	require.Contains(t, plugRow, "filter.device.wasm")
	require.Contains(t, plugRow, "active")

	// Stations: when the build has a station manager, a station with a stored config is listed,
	// and its role config is edited through the page; else the section says there is none.
	if code, _ := e.do("GET", "/api/stations", "OpenTera "+stored, ""); code == http.StatusNotFound {
		p.waitFor("the stations note", text("#stations-note")+` === "No station manager in this build."`)
	} else {
		code, body := e.do("PUT", "/api/stations/"+studioUUID+"/roles", "OpenTera "+stored, `{"heartbeat": {"cam-1": {"options": {"every": "1s"}}}}`)
		require.Equal(t, http.StatusAccepted, code, body) // stored for the offline station
		studio := row("stations-table", studioUUID)
		p.waitFor("the station row", text(studio+" td.roles")+` === "heartbeat ×1"`)
		require.Equal(t, "Studio A", eval[string](p, text(studio+" td.name")))
		require.Equal(t, "offline", eval[string](p, text(studio+" td.online")))
		require.NoError(t, chromedp.Do(p.ctx, chromedp.Click(chromedp.CSS(studio+" button.edit"))))
		p.waitFor("the role editor", `!document.getElementById("station-editor").hidden`)
		require.Contains(t, eval[string](p, `document.getElementById("station-edit-text").value`), `"every": "1s"`)
		require.NoError(t, chromedp.Do(p.ctx,
			chromedp.SetValue(chromedp.CSS("#station-edit-text"), `{"heartbeat": {"cam-1": {}, "cam-2": {"options": {"every": "5s"}}}, "recorder": {"r-1": {}}}`),
			chromedp.Click(chromedp.CSS("#station-save"))))
		p.waitFor("the save result", text("#station-edit-result")+`.startsWith("Stored")`)
		p.waitFor("the edited config", text(studio+" td.roles")+` === "heartbeat ×2, recorder ×1"`)
		code, body = e.do("GET", "/api/stations/"+studioUUID, "OpenTera "+stored, "")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"cam-2":{"timestamp":`)
		require.Contains(t, body, `"every":"5s"`)
	}

	// alice connects: she appears online, with her name, and the event log shows why.
	alice := e.connect(directory.KindUser, "alice:alice-demo")
	aliceRow := row("users", directory.DemoAliceUUID)
	p.waitFor("alice online", text(aliceRow+" td.online")+` === "online"`)
	require.Equal(t, "Alice Demo", eval[string](p, text(aliceRow+" td.name")))
	p.waitFor("alice's CONNECTED event in the log", text("#event-log")+`.includes("USER_CONNECTED Alice Demo")`)

	// A room created through the rooms API appears; alice joins it, becomes busy in its session,
	// and her reported state shows.
	bob := "OpenTera " + e.login(directory.KindUser, "bob:bob-demo", "")["user_token"].(string)
	code, body = e.do("POST", "/rooms", bob, `{"roomName":"Physio 3","roomOwner":"Bob","maxSize":3}`)
	require.Equal(t, http.StatusCreated, code, body)
	var created struct {
		RoomToken string `json:"roomToken"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	room := fmt.Sprintf(`#rooms-table tr[data-token=%q]`, created.RoomToken)
	p.waitFor("the new room", text(room+" td.name")+` === "Physio 3"`)

	aliceTok := "OpenTera " + e.login(directory.KindUser, "alice:alice-demo", "")["user_token"].(string)
	code, body = e.do("POST", "/rooms/"+created.RoomToken, aliceTok, `{"action":"join","displayName":"Alice","clientMaxSize":3}`)
	require.Equal(t, http.StatusOK, code, body)
	var joined struct {
		SessionID string `json:"sessionId"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &joined))
	require.NotEmpty(t, joined.SessionID)
	p.waitFor("alice busy in the room's session", text(aliceRow+" td.busy")+fmt.Sprintf(` === %q`, joined.SessionID))
	code, body = e.do("POST", "/rooms/"+created.RoomToken, aliceTok,
		`{"action":"status","event":"Session.connectionCreated","state":"waiting","connections":1,"sendStreams":0,"recvStreams":0}`)
	require.Equal(t, http.StatusNoContent, code, body)
	p.waitFor("alice's session state in the room", text(room+" td.states")+` === "Alice waiting"`)
	code, body = e.do("POST", "/rooms/"+created.RoomToken, aliceTok, `{"action":"leave"}`)
	require.Equal(t, http.StatusNoContent, code, body)
	p.waitFor("alice free again", text(aliceRow+" td.busy")+` === ""`)

	// alice's websocket closes: she disappears.
	require.NoError(t, alice.Close())
	p.waitFor("alice gone", fmt.Sprintf(`document.querySelector(%q) === null`, aliceRow))
	p.waitFor("alice's DISCONNECTED event in the log", text("#event-log")+`.includes("USER_DISCONNECTED Alice Demo")`)

	// robot1 connects and reports its status twice: each change shows.
	robotTok := "0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5"
	e.connect(directory.KindDevice, robotTok)
	robotRow := row("devices", directory.DemoRobot1UUID)
	p.waitFor("robot1 online", text(robotRow+" td.online")+` === "online"`)
	require.Equal(t, "robot1", eval[string](p, text(robotRow+" td.name")))
	for i, battery := range []string{"42.5", "17"} {
		code, body = e.do("POST", "/api/device/status", "OpenTera "+robotTok,
			fmt.Sprintf(`{"status": {"battery": %s}, "timestamp": %d}`, battery, 1732145425+i))
		require.Equal(t, http.StatusOK, code, body)
		p.waitFor("robot1's battery at "+battery, text(robotRow+" td.status")+fmt.Sprintf(`.includes(%q)`, `"battery": `+battery))
	}
	p.waitFor("the status events in the log", text("#event-log")+`.includes("DEVICE_STATUS_CHANGED")`)
	p.waitFor("the status time", text(robotRow+" td.status-time")+` === "2024-11-20 23:30:26Z"`)

	// Sign out: back to the form, the token dropped.
	require.NoError(t, chromedp.Do(p.ctx, chromedp.Click(chromedp.CSS("#signout"))))
	p.waitFor("the sign-in form", `!document.getElementById("signin").hidden`)
	require.Empty(t, eval[string](p, `sessionStorage.getItem("teragate.admin.token") || ""`))
	require.Eventually(t, func() bool { // the logout revoked it
		code, _ := e.do("GET", "/api/plugins", "OpenTera "+stored, "")
		return code == http.StatusUnauthorized
	}, 10*time.Second, 20*time.Millisecond, "the signed-out token still works")
}

// TestAdminPageInsecure: the page works over plain HTTP and ws:// (--insecure) too: the admin
// signs in, its websocket goes live, a participant who connects appears online, a reload keeps
// the session; with ?rows=1 a presence table shows one row and counts the others.
func TestAdminPageInsecure(t *testing.T) {
	alloc := browser(t)
	e := startGateway(t, true)
	require.True(t, strings.HasPrefix(e.base, "http://"))
	p := openPage(t, alloc, e.base+gateway.AdminPath+"?rows=1")
	p.signIn("admin", "admin-demo")
	p.waitFor("the live badge", text("#live")+` === "live"`)
	e.connect(directory.KindParticipant, "K90i9pJL7XNf6kqX3P5CSK_TV6PDVPGAWieMVjNz")
	pat := row("participants", directory.DemoPatUUID)
	p.waitFor("pat online", text(pat+" td.online")+` === "online"`)
	require.Equal(t, "Pat Demo", eval[string](p, text(pat+" td.name")))

	// A reload keeps the session (sessionStorage): no sign-in, live again.
	require.NoError(t, chromedp.Do(p.ctx, chromedp.Reload()))
	p.waitFor("the dashboard after a reload", `!document.getElementById("dash").hidden`)
	p.waitFor("the live badge after a reload", text("#live")+` === "live"`)
	p.waitFor("pat still online", text(pat+" td.online")+` === "online"`)

	e.connect(directory.KindParticipant, "paula:paula-demo")
	p.waitFor("one more participant counted", text("#participants td.empty")+` === "… and 1 more (the first 1 in connection order are shown)"`)
	require.Equal(t, 1, eval[int](p, `document.querySelectorAll("#participants tr[data-uuid]").length`))
	require.Equal(t, "online", eval[string](p, text(pat+" td.online")), "pat connected first")
}
