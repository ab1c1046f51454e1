package gateway_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/pluginhost"
	"github.com/teragate/teragate/gateway/internal/stations"
)

// TestNamingRules is the table of the two naming rules side by side: plugin ids
// (pluginhost.ValidID) and station role names (stations.ValidRoleName). They differ on upper
// case, dots and the first character, on purpose (see their docs).
func TestNamingRules(t *testing.T) {
	tests := []struct {
		name         string
		plugin, role bool
	}{
		{"enc", true, true},
		{"encoder_2-b", true, true},
		{"Encoder_2-b", false, true},
		{"2enc", false, true},
		{"_enc", false, true},
		{"filter.user", true, false},
		{"rpc.sessions", true, false},
		{strings.Repeat("r", 100), true, true},
		{strings.Repeat("r", 101), false, false},
		{"", false, false},
		{"a/b", false, false},
		{"../x", false, false},
		{"x\x00y", false, false},
		{"é", false, false},
		{"a b", false, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.plugin, pluginhost.ValidID(tt.name), "plugin id %q", tt.name)
		require.Equal(t, tt.role, stations.ValidRoleName(tt.name), "role name %q", tt.name)
	}
}
