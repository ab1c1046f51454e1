package stations

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	stationv1 "github.com/teragate/teragate/proto/station/v1"
	stationsdk "github.com/teragate/teragate/sdk/station"
)

func in(ts int64, opts string) Instance {
	i := Instance{Timestamp: ts}
	if opts != "" {
		i.Options = json.RawMessage(opts)
	}
	return i
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name             string
		manager, station Roles
		want             Roles
	}{
		{"both empty", nil, nil, Roles{}},
		{"manager only", Roles{"enc": {"u": in(1, `{"a":1}`)}}, nil, Roles{"enc": {"u": in(1, `{"a":1}`)}}},
		{"station only", nil, Roles{"enc": {"u": in(1, "")}}, Roles{"enc": {"u": in(1, "")}}},
		{"newer station wins", Roles{"enc": {"u": in(1, `"m"`)}}, Roles{"enc": {"u": in(2, `"s"`)}}, Roles{"enc": {"u": in(2, `"s"`)}}},
		{"newer manager wins", Roles{"enc": {"u": in(3, `"m"`)}}, Roles{"enc": {"u": in(2, `"s"`)}}, Roles{"enc": {"u": in(3, `"m"`)}}},
		{"tie keeps the manager's", Roles{"enc": {"u": in(2, `"m"`)}}, Roles{"enc": {"u": in(2, `"s"`)}}, Roles{"enc": {"u": in(2, `"m"`)}}},
		{"missing timestamp counts as 0", Roles{"enc": {"u": in(0, `"m"`)}}, Roles{"enc": {"u": in(0, `"s"`)}}, Roles{"enc": {"u": in(0, `"m"`)}}},
		{"station-only uuid in a shared role (the reference's KeyError)",
			Roles{"enc": {"a": in(1, "")}}, Roles{"enc": {"b": in(1, "")}}, Roles{"enc": {"a": in(1, ""), "b": in(1, "")}}},
		{"union of roles", Roles{"enc": {"a": in(1, "")}}, Roles{"cut": {"b": in(1, "")}}, Roles{"enc": {"a": in(1, "")}, "cut": {"b": in(1, "")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mgr, st := tt.manager.Clone(), tt.station.Clone()
			got := Merge(tt.manager, tt.station)
			require.Equal(t, tt.want, got)
			require.Equal(t, mgr, tt.manager, "the arguments are not modified")
			require.Equal(t, st, tt.station)
		})
	}
}

// TestStoreRoundTrip: a saved record reads back equal, a rewrite replaces it, no temporary
// files are left behind, and a garbage file is reported without hiding the good ones.
func TestStoreRoundTrip(t *testing.T) {
	s := store{dir: filepath.Join(t.TempDir(), "stations")}
	r := &record{UUID: "u-1", Hostname: "h", MAC: "aa", Roles: Roles{"enc": {"x": in(5, `{"k":"v"}`)}}}
	require.NoError(t, s.save(r))
	r.Roles["enc"]["y"] = in(6, "")
	require.NoError(t, s.save(r))
	require.NoError(t, s.save(&record{UUID: "../escape", Roles: Roles{}}))
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "junk.json"), []byte("{"), 0o600))

	got, errs := s.loadAll()
	require.Len(t, errs, 1)
	require.Equal(t, r.Roles, got["u-1"].Roles)
	require.Contains(t, got, "../escape", "the uuid is kept; only the file name is sanitised")
	ents, err := os.ReadDir(s.dir)
	require.NoError(t, err)
	require.Len(t, ents, 3, "u-1, the sanitised one and junk: no temporary files")
}

// FuzzStationMessage decodes untrusted station frames as the manager does and runs the merge on
// whatever config they carry: nothing may panic.
func FuzzStationMessage(f *testing.F) {
	seed, _ := proto.Marshal(&stationv1.StationMessage{Id: 1, Body: &stationv1.StationMessage_Register{Register: &stationv1.Register{
		Hostname: "h", Roles: map[string]*stationv1.RoleInstances{"enc": {Instances: map[string]*stationv1.RoleInstance{
			"u": {Timestamp: 3, Options: `{"a": 1}`}, "v": nil}}}}}})
	f.Add(seed)
	res, _ := proto.Marshal(&stationv1.StationMessage{Id: 2, Body: &stationv1.StationMessage_ConfigResult{ConfigResult: &stationv1.ConfigResult{
		Code: stationv1.ErrorCode_ROLE_BLOCKED, Roles: []string{"x"}}}})
	f.Add(res)
	f.Add([]byte{0x12, 0x02, 0x2a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m stationv1.StationMessage
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		if reg := m.GetRegister(); reg != nil {
			r := stationsdk.RolesFromProto(reg.Roles)
			merged := Merge(Roles{"enc": {"u": in(2, "")}}, r)
			stamp(merged, 1)
			_ = merged.ToProto()
		}
	})
}
