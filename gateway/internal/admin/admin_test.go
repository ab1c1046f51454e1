package admin_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/admin"
	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// fixture is the admin handler on a mux, with the real authenticator over the demo directory.
type fixture struct {
	t     *testing.T
	mux   *http.ServeMux
	authn *auth.Authenticator
}

func newFixture(t *testing.T, publicHost string) *fixture {
	t.Helper()
	store := directory.NewStore(directory.Demo())
	a, err := auth.New(auth.Config{JWTKey: []byte("admin-test-key-0123456789abcdef")}, store)
	require.NoError(t, err)
	h, err := admin.New(admin.Config{
		Authenticate: func(r *http.Request) (auth.Principal, error) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "OpenTera ")
			if !ok {
				return auth.Principal{}, auth.ErrBadCredentials
			}
			return a.Any(r.Context(), tok)
		},
		Directory:  store,
		PublicHost: publicHost,
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	h.Mount(func(pattern, _ string, hf http.HandlerFunc) { mux.HandleFunc(pattern, hf) })
	return &fixture{t: t, mux: mux, authn: a}
}

// userToken issues a user JWT as the login endpoint would.
func (f *fixture) userToken(uuid string) string {
	f.t.Helper()
	snap := directory.Demo()
	u, ok := snap.User(uuid)
	require.True(f.t, ok)
	tok, err := f.authn.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: uuid, Admin: u.Superadmin})
	require.NoError(f.t, err)
	return tok
}

func (f *fixture) serve(req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func demoToken(kind directory.Kind, uuid string) string {
	for _, l := range directory.DemoLogins {
		if l.Kind == kind && l.UUID == uuid {
			return l.Token
		}
	}
	panic("no demo token for " + uuid)
}

func TestNames(t *testing.T) {
	f := newFixture(t, "")
	adminTok := f.userToken(directory.DemoAdminUUID)
	service := demoToken(directory.KindService, directory.DemoServiceUUID)
	all := `{"uuids":["` + directory.DemoAliceUUID + `","` + directory.DemoPatUUID + `","` + directory.DemoRobot1UUID + `","` +
		directory.DemoServiceUUID + `","no-such-uuid","` + directory.DemoAliceUUID + `",""]}`
	allNames := map[string]admin.Name{
		directory.DemoAliceUUID:   {Kind: "user", Name: "Alice Demo"},
		directory.DemoPatUUID:     {Kind: "participant", Name: "Pat Demo"},
		directory.DemoRobot1UUID:  {Kind: "device", Name: "robot1"},
		directory.DemoServiceUUID: {Kind: "service", Name: "VideoRehabService"},
	}
	many := `{"uuids":[` + strings.TrimSuffix(strings.Repeat(`"x",`, admin.MaxNames+1), ",") + `]}`

	tests := []struct {
		name      string
		token     string
		body      string
		wantCode  int
		wantNames map[string]admin.Name
		wantError string
	}{
		{name: "superadmin user", token: adminTok, body: all, wantCode: http.StatusOK, wantNames: allNames},
		{name: "admin service", token: service, body: all, wantCode: http.StatusOK, wantNames: allNames},
		{name: "none known", token: adminTok, body: `{"uuids":["a","b"]}`, wantCode: http.StatusOK, wantNames: map[string]admin.Name{}},
		{name: "empty list", token: adminTok, body: `{"uuids":[]}`, wantCode: http.StatusOK, wantNames: map[string]admin.Name{}},
		{name: "no token", body: all, wantCode: http.StatusUnauthorized, wantError: "Unauthorized"},
		{name: "bad token", token: "not-a-token", body: all, wantCode: http.StatusUnauthorized, wantError: "Unauthorized"},
		{name: "non-admin user", token: f.userToken(directory.DemoAliceUUID), body: all, wantCode: http.StatusForbidden, wantError: "Forbidden: admin only"},
		{name: "device", token: demoToken(directory.KindDevice, directory.DemoRobot1UUID), body: all, wantCode: http.StatusForbidden, wantError: "Forbidden: admin only"},
		{name: "not JSON", token: adminTok, body: `uuids=a`, wantCode: http.StatusBadRequest, wantError: `Body must be {"uuids": ["…", …]}.`},
		{name: "wrong shape", token: adminTok, body: `{"uuids":"a"}`, wantCode: http.StatusBadRequest, wantError: `Body must be {"uuids": ["…", …]}.`},
		{name: "too many uuids", token: adminTok, body: many, wantCode: http.StatusRequestEntityTooLarge, wantError: "At most 10000 uuids per request."},
		{name: "body too large", token: adminTok, body: `{"uuids":["` + strings.Repeat("x", 1<<20) + `"]}`, wantCode: http.StatusRequestEntityTooLarge, wantError: "Request body too large."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/api/admin/names", strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "OpenTera "+tc.token)
			}
			resp := f.serve(req)
			got := body(t, resp)
			require.Equal(t, tc.wantCode, resp.StatusCode, got)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			if tc.wantError != "" {
				var msg string
				require.NoError(t, json.Unmarshal([]byte(got), &msg), got)
				require.Equal(t, tc.wantError, msg)
				return
			}
			var out struct {
				Names map[string]admin.Name `json:"names"`
			}
			require.NoError(t, json.Unmarshal([]byte(got), &out), got)
			require.Equal(t, tc.wantNames, out.Names)
		})
	}
}

func TestPage(t *testing.T) {
	f := newFixture(t, "gw.example.org:443")
	index, err := fs.ReadFile(os.DirFS("static"), "index.html")
	require.NoError(t, err)

	tests := []struct {
		name        string
		path        string
		host        string
		header      map[string]string
		wantCode    int
		wantType    string
		wantBody    string // a substring
		wantConnect string // the CSP's connect-src
	}{
		{name: "page", path: "/admin", host: "127.0.0.1:4040", wantCode: http.StatusOK, wantType: "text/html; charset=utf-8",
			wantBody: "<title>teragate admin</title>", wantConnect: "'self' ws://127.0.0.1:4040 wss://127.0.0.1:4040 ws://gw.example.org:443 wss://gw.example.org:443"},
		{name: "page with slash", path: "/admin/", host: "[::1]:4040", wantCode: http.StatusOK, wantType: "text/html; charset=utf-8",
			wantBody: string(index), wantConnect: "'self' ws://[::1]:4040 wss://[::1]:4040 ws://gw.example.org:443 wss://gw.example.org:443"},
		{name: "script", path: "/admin/app.js", host: "localhost", wantCode: http.StatusOK, wantType: "text/javascript; charset=utf-8",
			wantBody: "'use strict';", wantConnect: "'self' ws://localhost wss://localhost ws://gw.example.org:443 wss://gw.example.org:443"},
		{name: "chart module", path: "/admin/chart.js", host: "localhost", wantCode: http.StatusOK, wantType: "text/javascript; charset=utf-8",
			wantBody: "window.TeragateChart", wantConnect: "'self' ws://localhost wss://localhost ws://gw.example.org:443 wss://gw.example.org:443"},
		{name: "style sheet", path: "/admin/app.css", host: "localhost", wantCode: http.StatusOK, wantType: "text/css; charset=utf-8",
			wantBody: "font:", wantConnect: "'self' ws://localhost wss://localhost ws://gw.example.org:443 wss://gw.example.org:443"},
		{name: "odd host kept out of the policy", path: "/admin", host: "evil;script-src", wantCode: http.StatusOK, wantType: "text/html; charset=utf-8",
			wantBody: "<title>", wantConnect: "'self' ws://gw.example.org:443 wss://gw.example.org:443"},
		{name: "unknown file", path: "/admin/secret.txt", host: "localhost", wantCode: http.StatusNotFound, wantType: "application/json",
			wantBody: `"Not found: GET /admin/secret.txt"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			req.Host = tc.host
			resp := f.serve(req)
			got := body(t, resp)
			require.Equal(t, tc.wantCode, resp.StatusCode, got)
			require.Equal(t, tc.wantType, resp.Header.Get("Content-Type"))
			require.Contains(t, got, tc.wantBody)
			if tc.wantCode != http.StatusOK {
				return
			}
			csp := resp.Header.Get("Content-Security-Policy")
			require.Contains(t, csp, "default-src 'none'; script-src 'self'; style-src 'self';")
			require.Contains(t, csp, "; connect-src "+tc.wantConnect+"; ")
			require.Contains(t, csp, "frame-ancestors 'none'")
			require.NotContains(t, csp, "unsafe")
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
			require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			require.NotEmpty(t, resp.Header.Get("ETag"))

			// The ETag revalidates.
			again := httptest.NewRequest(http.MethodGet, tc.path, nil)
			again.Host = tc.host
			again.Header.Set("If-None-Match", resp.Header.Get("ETag"))
			require.Equal(t, http.StatusNotModified, f.serve(again).StatusCode)
		})
	}
}

// TestPageHasNoInlineCodeOrSecrets: the CSP forbids inline scripts, inline styles and event
// handler attributes, so the page must not need any; and nothing embedded carries a credential.
func TestPageHasNoInlineCodeOrSecrets(t *testing.T) {
	files, err := fs.Glob(os.DirFS("static"), "*")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"index.html", "app.js", "app.css", "chart.js"}, files)
	index, err := os.ReadFile("static/index.html")
	require.NoError(t, err)
	tags := regexp.MustCompile(`<script[^>]*>`).FindAll(index, -1)
	require.NotEmpty(t, tags)
	for _, tag := range tags {
		require.Contains(t, string(tag), ` src="/admin/`, "every script is a file of the page")
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`<script[^>]*>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`javascript:`),
	} {
		require.Nil(t, re.Find(index), "index.html has inline code matching %s", re)
	}
	for _, name := range files {
		b, err := os.ReadFile("static/" + name)
		require.NoError(t, err)
		for _, l := range directory.DemoLogins {
			for _, secret := range []string{l.Password, l.Token} {
				if secret != "" {
					require.NotContains(t, string(b), secret, "%s embeds a demo credential", name)
				}
			}
		}
		require.NotContains(t, string(b), "innerHTML", "%s: build the DOM with textContent", name)
	}
}
