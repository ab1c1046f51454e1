package stations

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidRoleName is the table of the role name rule, next to the plugin id rule's
// (pluginhost's TestValidID, same inputs): they differ on upper case, dots and the first
// character, on purpose (see [ValidRoleName]).
func TestValidRoleName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"enc", true},
		{"Encoder_2-b", true},
		{"2enc", true},
		{"_enc", true},
		{strings.Repeat("r", 100), true},
		{strings.Repeat("r", 101), false},
		{"", false},
		{"filter.user", false},
		{"a/b", false},
		{"../x", false},
		{"x\x00y", false},
		{"é", false},
		{"a b", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ValidRoleName(tt.name), "%q", tt.name)
		role, ok := roleOfFile(tt.name + ".wasm")
		require.Equal(t, tt.want, ok, "file of %q", tt.name)
		if ok {
			require.Equal(t, tt.name, role)
		}
		require.Equal(t, tt.want, checkRole(tt.name) == nil, "checkRole(%q)", tt.name)
	}
	_, ok := roleOfFile("enc.wat")
	require.False(t, ok)
}
