package station

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

// TestValidateOrder checks the checks that need no plugin: a blocked role is reported before a
// role without a factory, and only the blocked ones are named; nothing is applied.
func TestValidateOrder(t *testing.T) {
	a, err := New(Config{URL: "http://127.0.0.1:1", Token: "t", StateDir: t.TempDir(), BlockedRoles: []string{"mixer", "cut"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.rt.Close(context.Background()) })
	tests := []struct {
		name      string
		roles     Roles
		wantCode  stationv1.ErrorCode
		wantRoles []string
	}{
		{"blocked first", Roles{"mixer": {"m": {}}, "encode": {"e": {}}, "cut": {"c": {}}}, stationv1.ErrorCode_ROLE_BLOCKED, []string{"cut", "mixer"}},
		{"then missing factories", Roles{"encode": {"e": {}}, "upload": {"u": {Script: "sha256:nothex"}}}, stationv1.ErrorCode_MISSING_ROLE_FACTORY, []string{"encode", "upload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.mu.Lock()
			defer a.mu.Unlock()
			err := a.apply(context.Background(), tt.roles)
			require.NotNil(t, err)
			require.Equal(t, tt.wantCode, err.code)
			require.Equal(t, tt.wantRoles, err.roles)
			for _, r := range tt.wantRoles {
				require.Contains(t, err.msg, r)
			}
			require.Empty(t, a.instances)
			require.Equal(t, 0, a.stats.Updates)
		})
	}
}

// FuzzManagerMessage decodes frames as the agent does and converts any pushed config.
func FuzzManagerMessage(f *testing.F) {
	seed, _ := proto.Marshal(&stationv1.ManagerMessage{Id: 3, Body: &stationv1.ManagerMessage_UpdateConfiguration{
		UpdateConfiguration: &stationv1.UpdateConfiguration{Roles: map[string]*stationv1.RoleInstances{
			"enc": {Instances: map[string]*stationv1.RoleInstance{"u": {Timestamp: 1, Script: "sha256:00", Options: `{"a":1}`}, "v": nil}}}}}})
	f.Add(seed)
	offer, _ := proto.Marshal(&stationv1.ManagerMessage{Id: 4, Body: &stationv1.ManagerMessage_JobOffer{JobOffer: &stationv1.JobOffer{Role: "enc", Job: "j"}}})
	f.Add(offer)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m stationv1.ManagerMessage
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		r := RolesFromProto(m.GetUpdateConfiguration().GetRoles())
		_ = r.Clone().ToProto()
	})
}
