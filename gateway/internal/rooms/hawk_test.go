package rooms_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/rooms"
)

func TestParseHawkHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     rooms.HawkAttrs
		wantErr  error
	}{
		{"full", `Hawk id="dh37", ts="1353832234", nonce="j4h3g2", hash="Yi9L", ext="some-app-ext-data", mac="6R4r"`,
			rooms.HawkAttrs{ID: "dh37", TS: "1353832234", Nonce: "j4h3g2", Hash: "Yi9L", Ext: "some-app-ext-data", MAC: "6R4r"}, nil},
		{"lowercase scheme", `hawk id="a", ts="1", nonce="n", mac="m"`, rooms.HawkAttrs{ID: "a", TS: "1", Nonce: "n", MAC: "m"}, nil},
		{"app and dlg", `Hawk id="a", ts="1", nonce="n", mac="m", app="x", dlg="y"`, rooms.HawkAttrs{ID: "a", TS: "1", Nonce: "n", MAC: "m", App: "x", Dlg: "y"}, nil},
		{"missing mac", `Hawk id="a", ts="1", nonce="n"`, rooms.HawkAttrs{}, rooms.ErrHawkMissingAttrs},
		{"not hawk", `Basic abc`, rooms.HawkAttrs{}, rooms.ErrHawkBadHeader},
		{"unquoted", `Hawk id=a`, rooms.HawkAttrs{}, rooms.ErrHawkBadHeader},
		{"unterminated", `Hawk id="a`, rooms.HawkAttrs{}, rooms.ErrHawkBadHeader},
		{"no comma", `Hawk id="a" ts="1"`, rooms.HawkAttrs{}, rooms.ErrHawkBadHeader},
		{"duplicate", `Hawk id="a", id="b", ts="1", nonce="n", mac="m"`, rooms.HawkAttrs{}, rooms.ErrHawkDuplicateAttr},
		{"unknown attribute", `Hawk id="a", ts="1", nonce="n", mac="m", foo="x"`, rooms.HawkAttrs{}, rooms.ErrHawkUnknownAttr},
		{"control char", "Hawk id=\"a\x01\", ts=\"1\", nonce=\"n\", mac=\"m\"", rooms.HawkAttrs{}, rooms.ErrHawkBadAttrValue},
		{"too long", `Hawk id="` + strings.Repeat("a", 5000) + `"`, rooms.HawkAttrs{}, rooms.ErrHawkBadHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rooms.ParseHawkHeader(tc.in)
			if tc.wantErr != nil {
				require.True(t, errors.Is(err, tc.wantErr), "got %v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestHawkOwnerFlow: register, create and manage a room with Hawk; a replayed nonce, a stale
// timestamp, a bad MAC, unknown credentials and a tampered payload are all 401 errno 110.
func TestHawkOwnerFlow(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner := f.register()
		body := `{"roomName":"UX","roomOwner":"Alexis","maxSize":2}`

		r := f.raw(http.MethodPost, "/rooms", body, f.hawk(owner, 0, "nonce-1"))
		require.Equal(t, http.StatusCreated, r.code, r.body)
		tok := jsonField(t, r.body, "roomToken").(string)

		// The same nonce again: replay.
		r = f.raw(http.MethodPost, "/rooms", body, f.hawk(owner, 0, "nonce-1"))
		require.Equal(t, 401, r.code)
		require.Equal(t, errBody(401, 110, "Invalid nonce"), r.body)
		require.Equal(t, `Hawk error="Invalid nonce"`, r.hdr.Get("WWW-Authenticate"))
		require.NotEmpty(t, r.hdr.Get("Timestamp"))

		// Clock skew beyond 60 s either way; within it is fine.
		for _, skew := range []time.Duration{-61 * time.Second, 2 * time.Minute} {
			r = f.raw(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, skew, ""))
			require.Equal(t, 401, r.code)
			require.Equal(t, errBody(401, 110, "Stale timestamp"), r.body)
			now := f.clk.Now().Unix()
			require.Equal(t, `Hawk ts="`+itoa64(now)+`", tsm="`+rooms.HawkTimestampMAC(owner.key, now)+`", error="Stale timestamp"`, r.hdr.Get("WWW-Authenticate"))
		}
		code, _ := f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, 50*time.Second, ""))
		require.Equal(t, 200, code)

		// A MAC made with the wrong key, an unknown id, a payload that does not match its hash.
		code, out := f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(hawkCreds{owner.id, "wrong"}, 0, ""))
		require.Equal(t, 401, code)
		require.Equal(t, errBody(401, 110, "Bad mac"), out)
		code, out = f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(hawkCreds{"nobody", owner.key}, 0, ""))
		require.Equal(t, 401, code)
		require.Equal(t, errBody(401, 110, "Unknown credentials"), out)
		tampered := func(r *http.Request, _ string) { f.hawk(owner, 0, "")(r, `{"roomName":"other"}`) }
		code, out = f.do(http.MethodPatch, "/rooms/"+tok, `{"roomName":"mine"}`, tampered)
		require.Equal(t, 401, code)
		require.Equal(t, errBody(401, 110, "Bad payload hash"), out)
		code, out = f.do(http.MethodGet, "/rooms/"+tok, "", header(`Hawk id="x"`))
		require.Equal(t, 401, code)
		require.Equal(t, errBody(401, 110, "Missing attributes"), out)

		// The owner joins (moderator seat), reports status, refreshes, leaves, deletes.
		code, out = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Alexis","clientMaxSize":2}`, f.hawk(owner, 0, ""))
		require.Equal(t, 200, code, out)
		code, out = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"refresh"}`, f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		require.Equal(t, `{"expires":300}`, out)
		code, _ = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"leave"}`, f.hawk(owner, 0, ""))
		require.Equal(t, 204, code)
		code, _ = f.do(http.MethodDelete, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		require.Equal(t, 204, code)

		// Registration with Hawk credentials re-validates them; other schemes are unsupported.
		code, _ = f.do(http.MethodPost, "/registration", "", f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		r = f.raw(http.MethodPost, "/registration", "", bearer("alice"))
		require.Equal(t, 401, r.code)
		require.Equal(t, errBody(401, 110, "Unsupported"), r.body)

		// Hawk sessions slide: 30 days idle and they are gone.
		f.clk.Add(721 * time.Hour)
		code, out = f.do(http.MethodGet, "/rooms", "", f.hawk(owner, 0, ""))
		require.Equal(t, 401, code)
		require.Equal(t, errBody(401, 110, "Unknown credentials"), out)
	})
}

func TestDeriveHawkCredentials(t *testing.T) {
	id, key, err := rooms.DeriveHawkCredentials(strings.Repeat("ab", 32))
	require.NoError(t, err)
	require.Len(t, id, 64)
	require.Len(t, key, 64)
	require.NotEqual(t, id, key)
	_, _, err = rooms.DeriveHawkCredentials("not hex")
	require.Error(t, err)
}
