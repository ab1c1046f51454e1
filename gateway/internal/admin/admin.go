package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/api"
	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// MaxNames is the largest number of uuids one POST /api/admin/names may ask about.
const MaxNames = 10_000

// maxNamesBody bounds the names request body: MaxNames uuids of 36 characters, quoted, with commas.
const maxNamesBody = MaxNames*40 + 1024

//go:embed static
var static embed.FS

// Config is what the admin page needs from the gateway.
type Config struct {
	// Authenticate resolves a request's token to a principal. Required.
	Authenticate func(r *http.Request) (auth.Principal, error)
	// Directory is the identity directory names are read from. Required.
	Directory *directory.Store
	// PublicHost is the gateway's public host[:port] when it differs from the one clients
	// address (the host websocket_url uses); the page's Content-Security-Policy allows websockets
	// to it. Empty means the request's Host only.
	PublicHost string
	// Logger receives the page's few log lines. Nil means none.
	Logger hclog.Logger
}

// asset is one embedded file, read once.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the admin page and its names endpoint.
type Handler struct {
	cfg    Config
	log    hclog.Logger
	assets map[string]asset // by name: "index.html", "app.js", "app.css"
}

// New reads the embedded files and returns the handler; mount it with [Handler.Mount].
func New(cfg Config) (*Handler, error) {
	if cfg.Authenticate == nil || cfg.Directory == nil {
		return nil, errors.New("admin: Authenticate and Directory are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, assets: map[string]asset{}}
	entries, err := static.ReadDir("static")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		h.assets[e.Name()] = asset{body: b, ctype: contentType(e.Name()), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	if _, ok := h.assets["index.html"]; !ok {
		return nil, errors.New("admin: index.html is not embedded")
	}
	return h, nil
}

// Mount registers the routes with handle (the API's Handle: net/http patterns, a metrics name):
//
//	GET  /admin, /admin/       the page
//	GET  /admin/{file}         its script and style sheet
//	POST /api/admin/names      display names of uuids (admin principals)
func (h *Handler) Mount(handle func(pattern, name string, hf http.HandlerFunc)) {
	handle("GET /admin", "admin_page", h.page)
	handle("GET /admin/{$}", "admin_page", h.page)
	handle("GET /admin/{file}", "admin_page", h.page)
	handle("POST /api/admin/names", "admin_names", api.AdminOnly(h.cfg.Authenticate, h.names))
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "application/octet-stream"
}

// page serves index.html for /admin and /admin/, and the named asset otherwise.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		api.WriteError(w, http.StatusNotFound, "Not found: "+r.Method+" "+r.URL.Path)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp(r))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

// csp returns the page's Content-Security-Policy: everything from the gateway's own origin, and
// websockets to the host the request addressed (and the configured public host).
func (h *Handler) csp(r *http.Request) string {
	connect := "'self'"
	for _, host := range []string{r.Host, h.cfg.PublicHost} {
		if validHost(host) {
			connect += " ws://" + host + " wss://" + host
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src " + connect +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// validHost reports whether s is a plain host[:port] (letters, digits, '.', '-', ':' and the
// brackets of an IPv6 literal), safe to put in a header.
func validHost(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// Name is one entry of the names reply.
type Name struct {
	// Kind is "user", "participant", "device" or "service".
	Kind string `json:"kind"`
	// Name is the display name: a user's fullname (its username when empty), a participant's,
	// device's or service's name.
	Name string `json:"name"`
}

// namesRequest is the body of POST /api/admin/names.
type namesRequest struct {
	UUIDs []string `json:"uuids"`
}

// namesReply is its answer: the known uuids only.
type namesReply struct {
	Names map[string]Name `json:"names"`
}

var entityKinds = []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice, directory.KindService}

// names serves POST /api/admin/names: {"uuids": [...]} → {"names": {uuid: {kind, name}}}, for
// admin principals (superadmin users, admin services). Unknown uuids are left out.
func (h *Handler) names(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNamesBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			api.WriteError(w, http.StatusRequestEntityTooLarge, "Request body too large.")
			return
		}
		api.WriteError(w, http.StatusBadRequest, "Could not read the request body.")
		return
	}
	var req namesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, `Body must be {"uuids": ["…", …]}.`)
		return
	}
	if len(req.UUIDs) > MaxNames {
		api.WriteError(w, http.StatusRequestEntityTooLarge, "At most 10000 uuids per request.")
		return
	}
	snap := h.cfg.Directory.Current()
	out := namesReply{Names: make(map[string]Name, len(req.UUIDs))}
	for _, u := range req.UUIDs {
		if _, dup := out.Names[u]; dup || strings.TrimSpace(u) == "" {
			continue
		}
		for _, k := range entityKinds {
			if n, ok := snap.Entity(k, u); ok {
				out.Names[u] = Name{Kind: k.String(), Name: n}
				break
			}
		}
	}
	api.WriteJSON(w, http.StatusOK, out)
}
