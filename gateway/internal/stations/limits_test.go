package stations

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

func TestCheckRegister(t *testing.T) {
	lim := Limits{MaxConfigBytes: 4096, MaxRoles: 3, MaxInstancesPerRole: 2}.withDefaults()
	one := func(role, uuid, opts string) map[string]*stationv1.RoleInstances {
		return map[string]*stationv1.RoleInstances{role: {Instances: map[string]*stationv1.RoleInstance{uuid: {Timestamp: 1, Options: opts}}}}
	}
	tests := []struct {
		name    string
		reg     *stationv1.Register
		wantErr string // "" means valid
	}{
		{"valid", &stationv1.Register{Hostname: "h", Roles: one("enc", "u-1", `{"a": 1}`), BlockedRoles: []string{"mixer"}}, ""},
		{"empty options", &stationv1.Register{Roles: one("enc", "u", "")}, ""},
		{"null options", &stationv1.Register{Roles: one("enc", "u", "null")}, ""},
		{"nil instance map", &stationv1.Register{Roles: map[string]*stationv1.RoleInstances{"enc": nil}}, ""},
		{"path role", &stationv1.Register{Roles: one("../../../etc/passwd", "u", "")}, `bad role name "../../../etc/passwd"`},
		{"NUL role", &stationv1.Register{Roles: one("x\x00y", "u", "")}, `bad role name "x\u0000y"`},
		{"long role", &stationv1.Register{Roles: one(strings.Repeat("r", 5000), "u", "")}, `bad role name "` + strings.Repeat("r", 64) + `…"`},
		{"empty uuid", &stationv1.Register{Roles: one("enc", "", "")}, `bad uuid "" in role enc`},
		{"control char uuid", &stationv1.Register{Roles: one("enc", "a\nb", "")}, `bad uuid "a\nb"`},
		{"invalid UTF-8 uuid", &stationv1.Register{Roles: one("enc", "a\xffb", "")}, `bad uuid`},
		{"options not JSON", &stationv1.Register{Roles: one("enc", "u", "{")}, `options of enc/"u" must be a JSON object`},
		{"options a string", &stationv1.Register{Roles: one("enc", "u", `"s"`)}, `must be a JSON object`},
		{"options invalid UTF-8", &stationv1.Register{Roles: one("enc", "u", "{\"a\": \"\xff\"}")}, `must be a JSON object`},
		{"too many uuids", &stationv1.Register{Roles: map[string]*stationv1.RoleInstances{"enc": {Instances: map[string]*stationv1.RoleInstance{
			"a": {}, "b": {}, "c": {}}}}}, "3 uuids in role enc, the limit is 2"},
		{"too many roles", &stationv1.Register{Roles: map[string]*stationv1.RoleInstances{"a": nil, "b": nil, "c": nil, "d": nil}}, "4 roles, the limit is 3"},
		{"too large", &stationv1.Register{Roles: one("enc", "u", `{"pad": "`+strings.Repeat("x", 5000)+`"}`)}, "the configuration is too large"},
		{"bad blocked role", &stationv1.Register{BlockedRoles: []string{"a/b"}}, `bad role name "a/b"`},
		{"too many blocked roles", &stationv1.Register{BlockedRoles: []string{"a", "b", "c", "d"}}, "4 blocked roles"},
		{"long hostname", &stationv1.Register{Hostname: strings.Repeat("h", 256)}, "bad hostname"},
		{"long ip", &stationv1.Register{Ip: strings.Repeat("1", 101)}, "bad ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := lim.checkRegister(tt.reg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrBadConfig)
			require.Contains(t, err.Error(), tt.wantErr)
			require.Less(t, len(err.Error()), 300)
		})
	}
}

// TestWriteJSONEncodingFailure: an answer that cannot be encoded is a 500 naming the reason,
// never a 200 with an empty body.
func TestWriteJSONEncodingFailure(t *testing.T) {
	m := &Manager{log: hclog.NewNullLogger()}
	tests := []struct {
		name     string
		v        any
		wantCode int
		wantBody string
	}{
		{"encodable", StationView{UUID: "u", Roles: Roles{"enc": {"x": {Options: json.RawMessage(`{"a":1}`)}}}}, http.StatusOK, `"uuid":"u"`},
		{"options not JSON", StationView{UUID: "u", Roles: Roles{"enc": {"x": {Options: json.RawMessage(`not json`)}}}}, http.StatusInternalServerError,
			`"Could not encode the answer: json: error calling MarshalJSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			m.writeJSON(w, http.StatusOK, tt.v)
			require.Equal(t, tt.wantCode, w.Code)
			require.Contains(t, w.Body.String(), tt.wantBody)
			require.True(t, json.Valid(w.Body.Bytes()), w.Body.String())
		})
	}
}

// TestNewSkipsInvalidRecords: a stored record holding what may no longer be set (options that
// are not JSON objects, a bad role name, too large a config) is reported and not loaded, so it
// is neither pushed nor breaks GET /api/stations; valid records load.
func TestNewSkipsInvalidRecords(t *testing.T) {
	dir := t.TempDir()
	s := store{dir: dir}
	require.NoError(t, s.save(&record{UUID: "good", Roles: Roles{"enc": {"u": {Timestamp: 1, Options: json.RawMessage(`{"a":1}`)}}}}))
	for name, body := range map[string]string{
		"bad-options": `{"uuid": "bad-options", "roles": {"enc": {"u": {"timestamp": 1, "options": "not an object"}}}}`,
		"bad-role":    `{"uuid": "bad-role", "roles": {"../x": {"u": {"timestamp": 1}}}}`,
		"too-large":   `{"uuid": "too-large", "roles": {"enc": {"u": {"timestamp": 1, "options": {"pad": "` + strings.Repeat("x", 5000) + `"}}}}}`,
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), []byte(body), 0o600))
	}
	snap, err := directory.Parse(directory.DemoYAML)
	require.NoError(t, err)
	m, err := New(Config{StateDir: dir, RolesDir: t.TempDir(), Directory: directory.NewStore(snap),
		Tickets:      auth.NewMemoryTickets(time.Minute, time.Now),
		Authenticate: func(*http.Request) (auth.Principal, error) { return auth.Principal{}, errors.New("no callers here") },
		Limits:       Limits{MaxConfigBytes: 4096}})
	require.NoError(t, err)
	var uuids []string
	all, err := m.Stations(context.Background())
	require.NoError(t, err)
	for _, v := range all.Stations {
		uuids = append(uuids, v.UUID)
	}
	require.Equal(t, []string{"good"}, uuids)
	w := httptest.NewRecorder()
	m.handleList(w, httptest.NewRequest(http.MethodGet, "/api/stations", nil))
	require.Equal(t, http.StatusOK, w.Code)
	require.True(t, json.Valid(w.Body.Bytes()))
}
