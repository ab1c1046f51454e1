package rooms

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Hawk verification errors. [HawkMessage] gives the message sent on the wire (the Hawk
// library's wording, in Loop's 401 errno 110 body).
var (
	ErrHawkBadHeader     = errors.New("rooms: hawk: bad header format")
	ErrHawkMissingAttrs  = errors.New("rooms: hawk: missing attributes")
	ErrHawkBadAttrValue  = errors.New("rooms: hawk: bad attribute value")
	ErrHawkDuplicateAttr = errors.New("rooms: hawk: duplicate attribute")
	ErrHawkUnknownAttr   = errors.New("rooms: hawk: unknown attribute")
	ErrHawkUnknownCreds  = errors.New("rooms: hawk: unknown credentials")
	ErrHawkBadMAC        = errors.New("rooms: hawk: bad mac")
	ErrHawkBadPayload    = errors.New("rooms: hawk: bad payload hash")
	ErrHawkStale         = errors.New("rooms: hawk: stale timestamp")
	ErrHawkInvalidNonce  = errors.New("rooms: hawk: invalid nonce")
)

var hawkMessages = map[error]string{
	ErrHawkBadHeader: "Bad header format", ErrHawkMissingAttrs: "Missing attributes",
	ErrHawkBadAttrValue: "Bad attribute value", ErrHawkDuplicateAttr: "Duplicate attribute",
	ErrHawkUnknownAttr: "Unknown attribute", ErrHawkUnknownCreds: "Unknown credentials",
	ErrHawkBadMAC: "Bad mac", ErrHawkBadPayload: "Bad payload hash",
	ErrHawkStale: "Stale timestamp", ErrHawkInvalidNonce: "Invalid nonce",
}

// HawkMessage returns the wire message of a Hawk error ("Bad mac", "Stale timestamp", …).
func HawkMessage(err error) string {
	if m, ok := hawkMessages[err]; ok {
		return m
	}
	return "Unauthorized"
}

// HawkSessionInfo is the HKDF info string of Loop's Hawk credential derivation.
const HawkSessionInfo = "identity.mozilla.com/picl/v1/sessionToken"

// maxHawkHeader bounds the Authorization header the parser accepts.
const maxHawkHeader = 4096

// HawkAttrs are the attributes of a Hawk Authorization header.
type HawkAttrs struct {
	ID, TS, Nonce, MAC, Hash, Ext, App, Dlg string
}

// ParseHawkHeader parses `Hawk id="…", ts="…", nonce="…", mac="…"[, hash="…"][, ext="…"]…`.
// Values may not contain `"` or `\`; id, ts, nonce and mac are required.
func ParseHawkHeader(h string) (HawkAttrs, error) {
	var a HawkAttrs
	if len(h) > maxHawkHeader {
		return a, ErrHawkBadHeader
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "hawk") {
		return a, ErrHawkBadHeader
	}
	seen := map[string]bool{}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return a, ErrHawkBadHeader
		}
		name := strings.TrimSpace(rest[:eq])
		rest = rest[eq+1:]
		if len(rest) == 0 || rest[0] != '"' {
			return a, ErrHawkBadHeader
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return a, ErrHawkBadHeader
		}
		val := rest[1 : 1+end]
		rest = strings.TrimSpace(rest[2+end:])
		if rest != "" {
			if rest[0] != ',' {
				return a, ErrHawkBadHeader
			}
			rest = strings.TrimSpace(rest[1:])
		}
		if strings.ContainsAny(val, "\\\"") || !printable(val) {
			return a, ErrHawkBadAttrValue
		}
		if seen[name] {
			return a, ErrHawkDuplicateAttr
		}
		seen[name] = true
		switch name {
		case "id":
			a.ID = val
		case "ts":
			a.TS = val
		case "nonce":
			a.Nonce = val
		case "mac":
			a.MAC = val
		case "hash":
			a.Hash = val
		case "ext":
			a.Ext = val
		case "app":
			a.App = val
		case "dlg":
			a.Dlg = val
		default:
			return a, ErrHawkUnknownAttr
		}
	}
	if a.ID == "" || a.TS == "" || a.Nonce == "" || a.MAC == "" {
		return a, ErrHawkMissingAttrs
	}
	return a, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// HawkRequest is what a Hawk MAC covers.
type HawkRequest struct {
	Method   string
	Resource string // path and query, as sent
	Host     string // lowercase host without port
	Port     string
}

// HawkRequestOf returns the covered fields of an incoming request.
func HawkRequestOf(r *http.Request) HawkRequest {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	return HawkRequest{Method: strings.ToUpper(r.Method), Resource: r.URL.RequestURI(), Host: strings.ToLower(host), Port: port}
}

// HawkMAC computes the base64 HMAC-SHA256 of Hawk's normalized "header" string.
func HawkMAC(key string, req HawkRequest, a HawkAttrs) string {
	var b strings.Builder
	b.WriteString("hawk.1.header\n")
	for _, s := range []string{a.TS, a.Nonce, req.Method, req.Resource, req.Host, req.Port, a.Hash, a.Ext} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	if a.App != "" {
		b.WriteString(a.App + "\n" + a.Dlg + "\n")
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// HawkPayloadHash is Hawk's payload hash: base64 SHA-256 of
// "hawk.1.payload\n<content type without parameters, lowercase>\n<payload>\n".
func HawkPayloadHash(contentType string, payload []byte) string {
	ct, _, _ := strings.Cut(contentType, ";")
	h := sha256.New()
	h.Write([]byte("hawk.1.payload\n" + strings.ToLower(strings.TrimSpace(ct)) + "\n"))
	h.Write(payload)
	h.Write([]byte("\n"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// HawkTimestampMAC is the tsm of a stale-timestamp answer.
func HawkTimestampMAC(key string, ts int64) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("hawk.1.ts\n" + strconv.FormatInt(ts, 10) + "\n"))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// HawkHeader builds a client Authorization header (used by tests, examples and tools).
func HawkHeader(id, key string, req HawkRequest, ts time.Time, nonce, hash string) string {
	a := HawkAttrs{ID: id, TS: strconv.FormatInt(ts.Unix(), 10), Nonce: nonce, Hash: hash}
	a.MAC = HawkMAC(key, req, a)
	h := `Hawk id="` + a.ID + `", ts="` + a.TS + `", nonce="` + a.Nonce + `"`
	if hash != "" {
		h += `, hash="` + hash + `"`
	}
	return h + `, mac="` + a.MAC + `"`
}

// DeriveHawkCredentials derives the Hawk id and key from a Hawk-Session-Token (64 hex chars) as
// Loop's clients do: HKDF-SHA256, no salt, info [HawkSessionInfo], 64 bytes; id is the hex of
// the first 32, key the hex of the last 32.
func DeriveHawkCredentials(sessionToken string) (id, key string, err error) {
	raw, err := hex.DecodeString(sessionToken)
	if err != nil {
		return "", "", err
	}
	out, err := hkdf.Key(sha256.New, raw, nil, HawkSessionInfo, 64)
	if err != nil {
		return "", "", err
	}
	return hex.EncodeToString(out[:32]), hex.EncodeToString(out[32:]), nil
}
