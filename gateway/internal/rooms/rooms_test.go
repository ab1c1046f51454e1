package rooms_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/rooms"
	"github.com/teragate/teragate/proto/opentera"
)

func jsonField(t *testing.T, body, key string) any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	return m[key]
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	return m
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{11}$`)

func TestCreateRoom(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner := f.register()
		now := f.clk.Now().Unix()

		t.Run("roomName", func(t *testing.T) {
			r := f.raw(http.MethodPost, "/rooms", `{"roomName":"UX Discussion","roomOwner":"Alexis","maxSize":2,"expiresIn":5}`, f.hawk(owner, 0, ""))
			require.Equal(t, http.StatusCreated, r.code, r.body)
			require.Equal(t, "The roomName parameter has been deprecated, you should use context.", r.hdr.Get("Alert"))
			m := decode(t, r.body)
			require.Regexp(t, tokenRE, m["roomToken"])
			require.Equal(t, "http://localhost:3000/"+m["roomToken"].(string), m["roomUrl"])
			require.EqualValues(t, now+5*3600, m["expiresAt"])
			require.Empty(t, r.hdr.Get("Timestamp"), "201 has no Timestamp header")
		})
		t.Run("context", func(t *testing.T) {
			code, body := f.do(http.MethodPost, "/rooms", `{"context":{"value":"v","alg":"a","wrappedKey":"k"},"roomOwner":"Alexis","maxSize":2}`, f.hawk(owner, 0, ""))
			require.Equal(t, http.StatusCreated, code, body)
			require.EqualValues(t, now+1344*3600, jsonField(t, body, "expiresAt"), "defaultTTL when expiresIn is omitted")
		})
	})
}

func TestCreateRoomErrors(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner := f.register()
		big := `{"roomName":"` + strings.Repeat("x", 70<<10) + `","roomOwner":"A","maxSize":2}`
		for _, tc := range []struct {
			name, body string
			cred       cred
			hdr        []string
			code       int
			want       string
		}{
			{"all missing", `{}`, nil, nil, 400, errBody(400, 108, "Missing: context,roomName, roomOwner, maxSize")},
			{"roomOwner missing", `{"roomName":"UX","maxSize":2}`, nil, nil, 400, errBody(400, 108, "Missing: roomOwner")},
			{"maxSize missing", `{"roomName":"UX","roomOwner":"A"}`, nil, nil, 400, errBody(400, 108, "Missing: maxSize")},
			{"roomName too long", `{"roomName":"0123456789abcdef","roomOwner":"A","maxSize":2}`, nil, nil, 400, errBody(400, 107, "roomName should be shorter than 15 characters")},
			{"context and roomName", `{"roomName":"UX","context":{"value":"v","alg":"a","wrappedKey":"k"},"roomOwner":"A","maxSize":2}`, nil, nil, 400,
				errBody(400, 107, "roomName has been deprecated, please store it encrypted inside the context.")},
			{"context shape", `{"context":{"value":"v"},"roomOwner":"A","maxSize":2}`, nil, nil, 400,
				errBody(400, 107, "context should be an object containing `value`, `alg` and `wrappedKey` properties.")},
			{"context null", `{"context":null,"roomOwner":"A","maxSize":2}`, nil, nil, 400,
				errBody(400, 107, "context should be an object containing `value`, `alg` and `wrappedKey` properties.")},
			{"roomOwner too long", `{"roomName":"UX","roomOwner":"01234567890","maxSize":2}`, nil, nil, 400, errBody(400, 107, "roomOwner should be shorter than 10 characters")},
			{"expiresIn NaN", `{"roomName":"UX","roomOwner":"A","maxSize":2,"expiresIn":"soon"}`, nil, nil, 400, errBody(400, 107, "expiresIn should be a valid number")},
			{"expiresIn too big", `{"roomName":"UX","roomOwner":"A","maxSize":2,"expiresIn":11}`, nil, nil, 400, errBody(400, 107, "expiresIn cannot be greater than 10")},
			{"maxSize too big", `{"roomName":"UX","roomOwner":"A","maxSize":4}`, nil, nil, 400, errBody(400, 107, "maxSize cannot be greater than 3")},
			{"maxSize NaN", `{"roomName":"UX","roomOwner":"A","maxSize":"big"}`, nil, nil, 400, errBody(400, 107, "maxSize should be a valid number")},
			{"malformed JSON", `{"roomName":`, nil, nil, 400, errBody(400, 106, "Request body should be a JSON object.")},
			{"not an object", `["roomName"]`, nil, nil, 400, errBody(400, 106, "Request body should be a JSON object.")},
			{"body too large", big, nil, nil, 413, errBody(413, 113, "Request body too large.")},
			{"not accepting JSON", `{}`, nil, []string{"Accept", "text/html"}, 406, errBody(406, 106, "Request body should be defined as application/json")},
			{"no credentials", `{}`, header(""), nil, 401, errBody(401, 110, "Unauthorized")},
			{"basic not allowed", `{}`, basic("x"), nil, 401, errBody(401, 110, "Unsupported")},
			{"bad teragate token", `{}`, bearer("mallory"), nil, 401, errBody(401, 110, "Invalid token; it may have expired.")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := tc.cred
				if c == nil {
					c = f.hawk(owner, 0, "")
				}
				r := f.raw(http.MethodPost, "/rooms", tc.body, c, tc.hdr...)
				require.Equal(t, tc.code, r.code)
				require.Equal(t, tc.want, r.body)
				if tc.code == 401 {
					require.NotEmpty(t, r.hdr.Get("Timestamp"))
					require.NotEmpty(t, r.hdr.Get("WWW-Authenticate"))
				}
			})
		}
	})
}

func TestRoomInfo(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner, other := f.register(), f.register()
		tok := f.createRoom(f.hawk(owner, 0, ""), 3)
		now := f.clk.Now().Unix()

		// Anonymous: public view, exact body.
		r := f.raw(http.MethodGet, "/rooms/"+tok, "", nil)
		require.Equal(t, 200, r.code)
		require.Equal(t, `{"roomToken":"`+tok+`","roomName":"UX","context":null,"roomOwner":"Alexis","roomUrl":"http://localhost:3000/`+tok+`"}`, r.body)
		require.NotEmpty(t, r.hdr.Get("Timestamp"))

		code, body := f.do(http.MethodGet, "/rooms/unknownTok1", "", nil)
		require.Equal(t, 404, code)
		require.Equal(t, errBody(404, 105, "Token not found."), body)

		// A stranger with Hawk credentials.
		code, body = f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(other, 0, ""))
		require.Equal(t, 403, code)
		require.Equal(t, errBody(403, 999, "Authenticated user is neither a participant of the room nor the room owner."), body)
		// A Basic token that was never issued.
		r = f.raw(http.MethodGet, "/rooms/"+tok, "", basic("nope"))
		require.Equal(t, 401, r.code)
		require.Equal(t, errBody(401, 110, "Invalid token; it may have expired."), r.body)
		require.Equal(t, `Basic error="Invalid token; it may have expired."`, r.hdr.Get("WWW-Authenticate"))
		r = f.raw(http.MethodGet, "/rooms/"+tok, "", header("Digest foo"))
		require.Equal(t, 401, r.code)
		require.Equal(t, `Basic,Hawk error="Unsupported"`, r.hdr.Get("WWW-Authenticate"))

		// A link-clicker joins: it sees the full view, without the session state.
		st := f.joinAnon(tok, "Natalia")
		code, body = f.do(http.MethodGet, "/rooms/"+tok, "", basic(st))
		require.Equal(t, 200, code)
		m := decode(t, body)
		require.NotContains(t, m, "sessionState")
		parts := m["participants"].([]any)
		require.Len(t, parts, 1)
		p := parts[0].(map[string]any)
		require.Regexp(t, `^[0-9a-f-]{36}$`, p["roomConnectionId"])
		delete(p, "roomConnectionId")
		require.Equal(t, map[string]any{"displayName": "Natalia", "owner": false}, p)
		delete(m, "participants")
		require.Equal(t, map[string]any{
			"roomUrl": "http://localhost:3000/" + tok, "roomName": "UX", "context": nil, "roomOwner": "Alexis", "maxSize": 3.0,
			"clientMaxSize": 3.0, "creationTime": float64(now), "expiresAt": float64(now + 1344*3600), "ctime": float64(now), "roomToken": tok,
		}, m)

		// The owner gets the session state too.
		code, body = f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		ss := decode(t, body)["sessionState"].(map[string]any)
		require.Equal(t, map[string]any{"none": 1.0}, ss["states"])
	})
}

func TestPatchDeleteListRooms(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner, other := f.register(), f.register()
		tok := f.createRoom(f.hawk(owner, 0, ""), 3)

		code, body := f.do(http.MethodPatch, "/rooms/"+tok, `{"roomName":"New"}`, f.hawk(other, 0, ""))
		require.Equal(t, 403, code)
		require.Equal(t, errBody(403, 999, "Authenticated user is not the owner of this room."), body)
		code, body = f.do(http.MethodPatch, "/rooms/nope", `{}`, f.hawk(owner, 0, ""))
		require.Equal(t, 404, code)
		require.Equal(t, errBody(404, 105, "Token not found."), body)
		code, body = f.do(http.MethodPatch, "/rooms/"+tok, `{"context":null}`, f.hawk(owner, 0, ""))
		require.Equal(t, 400, code)
		require.Equal(t, errBody(400, 107, "context should be an object containing `value`, `alg` and `wrappedKey` properties."), body)

		f.clk.Add(time.Minute)
		now := f.clk.Now().Unix()
		code, body = f.do(http.MethodPatch, "/rooms/"+tok, `{}`, f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		require.Equal(t, `{"expiresAt":`+itoa64(now-60+1344*3600)+`}`, body, "no values: nothing overwritten, lifetime kept")
		code, body = f.do(http.MethodPatch, "/rooms/"+tok, `{"roomName":"New","maxSize":2,"expiresIn":2}`, f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		require.Equal(t, `{"expiresAt":`+itoa64(now+2*3600)+`}`, body)
		_, body = f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		m := decode(t, body)
		require.Equal(t, "New", m["roomName"])
		require.EqualValues(t, 2, m["maxSize"])
		require.EqualValues(t, now, m["ctime"])

		// Listing: one room; with version after its ctime: none.
		tok2 := f.createRoom(f.hawk(owner, 0, ""), 2)
		code, body = f.do(http.MethodGet, "/rooms", "", f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		require.Len(t, list, 2)
		code, body = f.do(http.MethodGet, "/rooms", "", f.hawk(other, 0, ""))
		require.Equal(t, 200, code)
		require.Equal(t, `[]`, body)

		// Delete: 403 for others, 204 for the owner, then 404, and a tombstone.
		code, body = f.do(http.MethodDelete, "/rooms/"+tok, "", f.hawk(other, 0, ""))
		require.Equal(t, 403, code, body)
		f.clk.Add(time.Minute)
		delAt := f.clk.Now().Unix()
		r := f.raw(http.MethodDelete, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		require.Equal(t, 204, r.code)
		require.Empty(t, r.body)
		code, _ = f.do(http.MethodGet, "/rooms/"+tok, "", nil)
		require.Equal(t, 404, code)
		code, body = f.do(http.MethodGet, "/rooms?version="+itoa64(delAt), "", f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		require.Equal(t, `[{"deleted":true,"roomToken":"`+tok+`"}]`, body)
		code, body = f.do(http.MethodGet, "/rooms", "", f.hawk(owner, 0, ""))
		require.Equal(t, 200, code)
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		require.Len(t, list, 1, "without version, deleted rooms are not listed")
		require.Equal(t, tok2, list[0]["roomToken"])
		// Tombstones expire after deletedTTL (27 min).
		f.clk.Add(28 * time.Minute)
		require.NoError(t, f.svc.Sweep(t.Context()))
		_, body = f.do(http.MethodGet, "/rooms?version="+itoa64(delAt), "", f.hawk(owner, 0, ""))
		require.Equal(t, `[]`, body)
	})
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestBulkDelete(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner, other := f.register(), f.register()
		a := f.createRoom(f.hawk(owner, 0, ""), 2)
		b := f.createRoom(f.hawk(other, 0, ""), 2)
		for _, tc := range []struct {
			name, body string
			code       int
			want       string
		}{
			{"missing", `{}`, 400, errBody(400, 108, "Missing: deleteRoomTokens")},
			{"empty", `{"deleteRoomTokens":[]}`, 400, errBody(400, 107, "deleteRoomTokens should not be empty.")},
			{"not a list", `{"deleteRoomTokens":"abc"}`, 400, errBody(400, 107, "deleteRoomTokens should be a list of room tokens.")},
			{"none found", `{"deleteRoomTokens":["` + b + `"]}`, 404, `{"responses":{"` + b + `":{"code":404,"errno":105,"error":"Room not found."}}}`},
			{"one found", `{"deleteRoomTokens":["` + a + `","` + b + `"]}`, 207,
				`{"responses":{"` + a + `":{"code":200},"` + b + `":{"code":404,"errno":105,"error":"Room not found."}}}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, body := f.do(http.MethodPatch, "/rooms", tc.body, f.hawk(owner, 0, ""))
				require.Equal(t, tc.code, code)
				if tc.code == 207 && !strings.HasPrefix(body, `{"responses":{"`+a) { // map order is sorted by key
					require.JSONEq(t, tc.want, body)
					return
				}
				require.JSONEq(t, tc.want, body)
			})
		}
		code, _ := f.do(http.MethodGet, "/rooms/"+a, "", nil)
		require.Equal(t, 404, code)
		code, _ = f.do(http.MethodGet, "/rooms/"+b, "", nil)
		require.Equal(t, 200, code, "another owner's room is untouched")
	})
}

func TestJoinCapacity(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner := f.register()
		tok := f.createRoom(f.hawk(owner, 0, ""), 3)
		join := func(c cred, cms string) (int, string) {
			return f.do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"X","clientMaxSize":`+cms+`}`, c)
		}
		// maxSize 1: the only seat is the owner's.
		solo := f.createRoom(f.hawk(owner, 0, ""), 1)
		code, body := f.do(http.MethodPost, "/rooms/"+solo, `{"action":"join","displayName":"X","clientMaxSize":1}`, nil)
		require.Equal(t, 400, code)
		require.Equal(t, errBody(400, 202, "The room is full."), body)
		code, body = f.do(http.MethodPost, "/rooms/"+solo, `{"action":"join","displayName":"X","clientMaxSize":1}`, f.hawk(owner, 0, ""))
		require.Equal(t, 200, code, body)

		// maxSize 3: two guests fit (a seat is kept for the owner), the third does not.
		f.joinAnon(tok, "g1")
		f.joinAnon(tok, "g2")
		code, body = join(nil, "10")
		require.Equal(t, 400, code)
		require.Equal(t, errBody(400, 202, "The room is full."), body)
		// The owner takes the kept seat, and may rejoin.
		code, body = join(f.hawk(owner, 0, ""), "10")
		require.Equal(t, 200, code, body)
		code, body = join(f.hawk(owner, 0, ""), "10")
		require.Equal(t, 200, code, body)
		_, body = f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		require.Len(t, decode(t, body)["participants"], 3)

		// clientMaxSize too small for the participants already there.
		tok2 := f.createRoom(f.hawk(owner, 0, ""), 3)
		code, body = f.do(http.MethodPost, "/rooms/"+tok2, `{"action":"join","displayName":"X","clientMaxSize":5}`, f.hawk(owner, 0, ""))
		require.Equal(t, 200, code, body)
		code, body = f.do(http.MethodPost, "/rooms/"+tok2, `{"action":"join","displayName":"Y","clientMaxSize":1}`, nil)
		require.Equal(t, 400, code)
		require.Equal(t, errBody(400, 121, "Too many participants in the room for you to handle."), body)
	})
}

func TestActionErrors(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner := f.register()
		tok := f.createRoom(f.hawk(owner, 0, ""), 3)
		st := f.joinAnon(tok, "Natalia")
		stranger := f.register()
		for _, tc := range []struct {
			name, body string
			cred       cred
			code       int
			want       string
		}{
			{"action missing", `{}`, nil, 400, errBody(400, 108, "action should be one of join, refresh, status, leave, logDomain")},
			{"action unknown", `{"action":"dance"}`, nil, 400, errBody(400, 107, "action should be one of join, refresh, status, leave, logDomain")},
			{"join missing both", `{"action":"join"}`, nil, 400, errBody(400, 108, "Missing: displayName, clientMaxSize")},
			{"join missing size", `{"action":"join","displayName":"A"}`, nil, 400, errBody(400, 108, "Missing: clientMaxSize")},
			{"join size NaN", `{"action":"join","displayName":"A","clientMaxSize":"many"}`, nil, 400, errBody(400, 107, "clientMaxSize should be a number.")},
			{"join name too long", `{"action":"join","displayName":"` + strings.Repeat("n", 256) + `","clientMaxSize":3}`, nil, 400, errBody(400, 107, "displayName should be shorter than 255 characters")},
			{"refresh anonymous", `{"action":"refresh"}`, nil, 401, errBody(401, 110, "Unauthorized")},
			{"refresh stranger", `{"action":"refresh"}`, f.hawk(stranger, 0, ""), 410, errBody(410, 111, "Participation has expired.")},
			{"status event missing", `{"action":"status"}`, basic(st), 400, errBody(400, 107, "'event' field is missing in body.")},
			{"status state missing", `{"action":"status","event":"e"}`, basic(st), 400, errBody(400, 107, "'state' field is missing in body.")},
			{"status connections missing (wiki's sessions)", `{"action":"status","event":"e","state":"s","sessions":2,"sendStreams":0,"recvStreams":0}`, basic(st), 400,
				errBody(400, 107, "'connections' field is missing in body.")},
			{"status recvStreams missing", `{"action":"status","event":"e","state":"s","connections":1,"sendStreams":0}`, basic(st), 400, errBody(400, 107, "'recvStreams' field is missing in body.")},
			{"status negative", `{"action":"status","event":"e","state":"s","connections":-1,"sendStreams":0,"recvStreams":0}`, basic(st), 400, errBody(400, 107, "Invalid connections number.")},
			{"status NaN", `{"action":"status","event":"e","state":"s","connections":1,"sendStreams":"x","recvStreams":0}`, basic(st), 400, errBody(400, 107, "Invalid sendStreams number.")},
			{"status null", `{"action":"status","event":"e","state":"s","connections":1,"sendStreams":0,"recvStreams":null}`, basic(st), 400, errBody(400, 107, "Invalid recvStreams number.")},
			{"status event too long", `{"action":"status","event":"` + strings.Repeat("e", 129) + `","state":"s","connections":1,"sendStreams":0,"recvStreams":0}`, basic(st), 400,
				errBody(400, 107, "event should be shorter than 128 characters")},
			{"status stranger", `{"action":"status","event":"e","state":"s","connections":1,"sendStreams":0,"recvStreams":0}`, f.hawk(stranger, 0, ""), 400,
				errBody(400, 203, "Can't update status for a room you aren't in.")},
			{"leave stranger", `{"action":"leave"}`, f.hawk(stranger, 0, ""), 400, errBody(400, 203, "Unable to leave a room you have not joined.")},
			{"logDomain missing", `{"action":"logDomain"}`, basic(st), 400, errBody(400, 108, "Missing: domains")},
			{"logDomain shape", `{"action":"logDomain","domains":[{"domain":"a.com"}]}`, basic(st), 400,
				errBody(400, 107, "Domains must be a list of objects with both a ``domain`` and ``count`` property.")},
			{"logDomain stranger", `{"action":"logDomain","domains":[{"domain":"a.com","count":1}]}`, f.hawk(stranger, 0, ""), 400,
				errBody(400, 203, "Can't update status for a room you aren't in.")},
			{"logDomain ok", `{"action":"logDomain","domains":[{"domain":"a.com","count":3}]}`, basic(st), 204, ""},
			{"unknown room", `{"action":"join"}`, nil, 404, errBody(404, 105, "Token not found.")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := "/rooms/" + tok
				if tc.name == "unknown room" {
					path = "/rooms/doesNotExist"
				}
				code, body := f.do(http.MethodPost, path, tc.body, tc.cred)
				require.Equal(t, tc.code, code)
				require.Equal(t, tc.want, body)
			})
		}
		require.EqualValues(t, 3, f.metric("teragate_rooms_shared_domains_total", ""))
	})
}

// TestStatusStateAndMetrics walks a link-clicker through the states the Firefox client reports
// and checks the stored state, the aggregation and the metrics.
func TestStatusStateAndMetrics(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		owner := f.register()
		tok := f.createRoom(f.hawk(owner, 0, ""), 3)
		st := f.joinAnon(tok, "Natalia")
		require.EqualValues(t, 1, f.metric("teragate_rooms_participants", "none"))
		steps := []struct {
			event, state string
			c, s, r      int
		}{
			{"Session.connectionCreated", "waiting", 1, 0, 0},
			{"Session.connectionCreated", "starting", 2, 0, 0},
			{"Publisher.streamCreated", "sending", 2, 1, 0},
			{"Session.streamCreated", "sendrecv", 2, 1, 1},
		}
		for _, s := range steps {
			body, _ := json.Marshal(map[string]any{"action": "status", "event": s.event, "state": s.state, "connections": s.c, "sendStreams": s.s, "recvStreams": s.r})
			code, out := f.do(http.MethodPost, "/rooms/"+tok, string(body), basic(st))
			require.Equal(t, 204, code, out)
		}
		require.EqualValues(t, 0, f.metric("teragate_rooms_participants", "none"))
		require.EqualValues(t, 1, f.metric("teragate_rooms_participants", "sendrecv"))
		require.EqualValues(t, 2, f.metric("teragate_rooms_status_updates_total", "Session.connectionCreated"))
		_, body := f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		ss := decode(t, body)["sessionState"].(map[string]any)
		require.Equal(t, map[string]any{"sendrecv": 1.0}, ss["states"])
		p := ss["participants"].([]any)[0].(map[string]any)
		require.Equal(t, "sendrecv", p["state"])
		require.Equal(t, "Session.streamCreated", p["event"])
		require.EqualValues(t, 4, p["updates"])
		require.EqualValues(t, 1, p["recvStreams"])

		// Admin endpoint: admins only.
		code, body := f.do(http.MethodGet, "/api/admin/rooms", "", bearer("alice"))
		require.Equal(t, 403, code)
		require.Equal(t, errBody(403, 999, "Admin privileges required."), body)
		code, _ = f.do(http.MethodGet, "/api/admin/rooms", "", nil)
		require.Equal(t, 401, code)
		code, body = f.do(http.MethodGet, "/api/admin/rooms", "", bearer("admin"))
		require.Equal(t, 200, code)
		adm := decode(t, body)
		require.EqualValues(t, 1, adm["participants"])
		require.Equal(t, map[string]any{"sendrecv": 1.0}, adm["states"])

		// Leave: gauge back to zero, the Basic token is gone.
		code, _ = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"leave"}`, basic(st))
		require.Equal(t, 204, code)
		require.EqualValues(t, 0, f.metric("teragate_rooms_participants", "sendrecv"))
		code, body = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"refresh"}`, basic(st))
		require.Equal(t, 401, code)
		require.Equal(t, errBody(401, 110, "Invalid token; it may have expired."), body)
	})
}

func TestStrictMode(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, func(c *rooms.Config) { c.Strict = true })
		owner := f.register()
		tok := f.createRoom(f.hawk(owner, 0, ""), 3)
		st := f.joinAnon(tok, "N")
		send := func(event, state string, c, s, r int) (int, string) {
			body, _ := json.Marshal(map[string]any{"action": "status", "event": event, "state": state, "connections": c, "sendStreams": s, "recvStreams": r})
			return f.do(http.MethodPost, "/rooms/"+tok, string(body), basic(st))
		}
		code, body := send("Session.connectionCreated", "dancing", 1, 0, 0)
		require.Equal(t, 400, code)
		require.Equal(t, errBody(400, 107, "Unknown state 'dancing'."), body)
		code, body = send("Session.streamCreated", "receiving", 1, 0, 1)
		require.Equal(t, 400, code)
		require.Equal(t, errBody(400, 107, "Invalid event 'Session.streamCreated' for state 'init'."), body)
		code, body = send("Session.connectionCreated", "starting", 1, 0, 0)
		require.Equal(t, 400, code)
		require.Equal(t, errBody(400, 107, "Invalid state 'starting' after event 'Session.connectionCreated' from state 'init'; expected 'waiting'."), body)
		for _, s := range []struct {
			e, st   string
			c, s, r int
		}{
			{"Session.connectionCreated", "waiting", 1, 0, 0},
			{"Session.connectionCreated", "starting", 2, 0, 0},
			{"Session.streamCreated", "receiving", 2, 0, 1},
			{"Publisher.streamCreated", "sendrecv", 2, 1, 1},
			{"Publisher.streamDestroyed", "receiving", 2, 0, 1},
			{"Session.streamDestroyed", "cleanup", 2, 0, 0},
			{"Session.connectionDestroyed", "waiting", 1, 0, 0},
			{"Session.connectionDestroyed", "init", 0, 0, 0},
		} {
			code, body := send(s.e, s.st, s.c, s.s, s.r)
			require.Equal(t, 204, code, "%s → %s: %s", s.e, s.st, body)
		}
	})
}

func TestNextStateTable(t *testing.T) {
	for _, tc := range []struct {
		from, event string
		u           rooms.StatusUpdate
		want        string
		ok          bool
	}{
		{"init", rooms.EventConnectionCreated, rooms.StatusUpdate{}, "waiting", true},
		{"waiting", rooms.EventConnectionCreated, rooms.StatusUpdate{}, "starting", true},
		{"starting", rooms.EventStreamCreated, rooms.StatusUpdate{}, "receiving", true},
		{"starting", rooms.EventPublisherCreated, rooms.StatusUpdate{}, "sending", true},
		{"receiving", rooms.EventPublisherCreated, rooms.StatusUpdate{}, "sendrecv", true},
		{"sending", rooms.EventStreamCreated, rooms.StatusUpdate{}, "sendrecv", true},
		{"sendrecv", rooms.EventPublisherDestroyed, rooms.StatusUpdate{SendStreams: 0}, "receiving", true},
		{"sendrecv", rooms.EventPublisherDestroyed, rooms.StatusUpdate{SendStreams: 1}, "sendrecv", true},
		{"sendrecv", rooms.EventStreamDestroyed, rooms.StatusUpdate{}, "sending", true},
		{"sending", rooms.EventPublisherDestroyed, rooms.StatusUpdate{}, "cleanup", true},
		{"receiving", rooms.EventStreamDestroyed, rooms.StatusUpdate{}, "cleanup", true},
		{"cleanup", rooms.EventConnectionDestroyed, rooms.StatusUpdate{Connections: 1}, "waiting", true},
		{"waiting", rooms.EventConnectionDestroyed, rooms.StatusUpdate{}, "init", true},
		{"sendrecv", rooms.EventConnectionDestroyed, rooms.StatusUpdate{}, "waiting", true},
		{"init", rooms.EventConnectionDestroyed, rooms.StatusUpdate{}, "", false},
		{"cleanup", rooms.EventStreamCreated, rooms.StatusUpdate{}, "", false},
	} {
		t.Run(tc.from+"/"+tc.event, func(t *testing.T) {
			got, ok := rooms.NextState(tc.from, tc.event, tc.u)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestExpiry: a participant that does not refresh expires (410 for Hawk, 401 for Basic), the
// room's ctime is extended, presence gets a LeaveSessionEvent; an expired room is gone.
func TestExpiry(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, func(c *rooms.Config) { c.ParticipantTTL = 50 * time.Millisecond })
		owner := f.register()
		tok := f.createRoom(f.hawk(owner, 0, ""), 3)
		st := f.joinAnon(tok, "guest")
		code, body := f.do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Alice","clientMaxSize":3}`, bearer("alice"))
		require.Equal(t, 200, code, body)
		require.EqualValues(t, 0.05, jsonField(t, body, "expires"))
		sessionID := jsonField(t, body, "sessionId").(string)
		pubs := f.published()
		require.Len(t, pubs, 2)
		require.Equal(t, "module.TeraServer.UserManagerModule.messages", pubs[0].channel)
		requireProto(t, &opentera.JoinSessionEvent{SessionUuid: sessionID, SessionUrl: "http://localhost:3000/" + tok, SessionCreatorName: "Alexis", SessionUsers: []string{"u-alice"}}, pubs[0].msg)
		require.Equal(t, "websocket.user.u-alice.events", pubs[1].channel)

		code, _ = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"refresh"}`, bearer("alice"))
		require.Equal(t, 200, code)
		f.clk.Add(30 * time.Millisecond)
		code, _ = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"refresh"}`, bearer("alice"))
		require.Equal(t, 200, code, "refreshed in time")
		f.clk.Add(60 * time.Millisecond)
		code, body = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"refresh"}`, bearer("alice"))
		require.Equal(t, 410, code)
		require.Equal(t, errBody(410, 111, "Participation has expired."), body)
		code, body = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"refresh"}`, basic(st))
		require.Equal(t, 401, code, "the Basic credential expired with the participant")
		require.Equal(t, errBody(401, 110, "Invalid token; it may have expired."), body)

		// Invisible before the sweep; the sweep publishes the leave and extends the room.
		_, body = f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		require.Empty(t, decode(t, body)["participants"])
		require.NoError(t, f.svc.Sweep(t.Context()))
		pubs = f.published()
		require.Len(t, pubs, 1)
		requireProto(t, &opentera.LeaveSessionEvent{SessionUuid: sessionID, LeavingUsers: []string{"u-alice"}}, pubs[0].msg)
		_, body = f.do(http.MethodGet, "/rooms/"+tok, "", f.hawk(owner, 0, ""))
		require.EqualValues(t, f.clk.Now().Unix(), decode(t, body)["ctime"])
		require.EqualValues(t, 2, f.metric("teragate_rooms_participant_changes_total", "expire"))
		require.EqualValues(t, 0, f.metric("teragate_rooms_participants", "none"))

		// Room expiry: alice joins again, then the room's lifetime passes.
		code, _ = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Alice","clientMaxSize":3}`, bearer("alice"))
		require.Equal(t, 200, code)
		f.published()
		f.clk.Add(1345 * time.Hour)
		code, _ = f.do(http.MethodGet, "/rooms/"+tok, "", nil)
		require.Equal(t, 404, code)
		require.NoError(t, f.svc.Sweep(t.Context()))
		pubs = f.published()
		require.NotEmpty(t, pubs)
		requireProto(t, &opentera.StopSessionEvent{SessionUuid: sessionID}, pubs[0].msg)
		require.EqualValues(t, 0, f.metric("teragate_rooms_rooms", ""))
	})
}

func TestDeleteStopsSession(t *testing.T) {
	forStores(t, func(t *testing.T, sk storeKind) {
		f := newFixture(t, sk, nil)
		tok := f.createRoom(bearer("bob"), 3)
		code, body := f.do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Pat","clientMaxSize":3}`, bearer("pat"))
		require.Equal(t, 200, code, body)
		pubs := f.published()
		require.Equal(t, []string{"p-pat"}, pubs[0].msg.(*opentera.JoinSessionEvent).GetSessionParticipants())
		code, _ = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"leave"}`, bearer("pat"))
		require.Equal(t, 204, code)
		pubs = f.published()
		require.Equal(t, []string{"p-pat"}, pubs[0].msg.(*opentera.LeaveSessionEvent).GetLeavingParticipants())
		code, _ = f.do(http.MethodPost, "/rooms/"+tok, `{"action":"join","displayName":"Pat","clientMaxSize":3}`, bearer("pat"))
		require.Equal(t, 200, code)
		f.published()
		code, _ = f.do(http.MethodDelete, "/rooms/"+tok, "", bearer("alice"))
		require.Equal(t, 403, code)
		code, _ = f.do(http.MethodDelete, "/rooms/"+tok, "", bearer("bob"))
		require.Equal(t, 204, code)
		pubs = f.published()
		require.Len(t, pubs, 2)
		require.Equal(t, "module.TeraServer.UserManagerModule.messages", pubs[0].channel)
		require.Equal(t, "websocket.participant.p-pat.events", pubs[1].channel)
		require.IsType(t, &opentera.StopSessionEvent{}, pubs[1].msg)
		// A room without directory participants is deleted silently.
		tok = f.createRoom(bearer("bob"), 3)
		f.joinAnon(tok, "g")
		code, _ = f.do(http.MethodDelete, "/rooms/"+tok, "", bearer("bob"))
		require.Equal(t, 204, code)
		require.Empty(t, f.published())
	})
}

func requireProto(t *testing.T, want, got proto.Message) {
	t.Helper()
	require.True(t, proto.Equal(want, got), "want %v, got %v", want, got)
}
