package pluginhost

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidID is the table of the plugin id rule, next to the role name rule's (stations'
// TestValidRoleName, same inputs): they differ on upper case, dots and the first character, on
// purpose (see [ValidID]).
func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"enc", true},
		{"Encoder_2-b", false},
		{"encoder_2-b", true},
		{"2enc", false},
		{"_enc", false},
		{strings.Repeat("r", 100), true},
		{strings.Repeat("r", 101), false},
		{"", false},
		{"filter.user", true},
		{"rpc.sessions", true},
		{"a/b", false},
		{"../x", false},
		{"x\x00y", false},
		{"é", false},
		{"a b", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ValidID(tt.id), "%q", tt.id)
		id, ok := idOfFile(tt.id + ".wasm")
		require.Equal(t, tt.want, ok, "file of %q", tt.id)
		if ok {
			require.Equal(t, tt.id, id)
		}
	}
}
