package directory_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
)

func TestKind(t *testing.T) {
	tests := []struct {
		name   string
		kind   directory.Kind
		want   string
		wantOK bool
	}{
		{name: "user", kind: directory.KindUser, want: "user", wantOK: true},
		{name: "participant", kind: directory.KindParticipant, want: "participant", wantOK: true},
		{name: "device", kind: directory.KindDevice, want: "device", wantOK: true},
		{name: "service", kind: directory.KindService, want: "service", wantOK: true},
		{name: "zero", kind: 0, want: "invalid"},
		{name: "out of range", kind: 9, want: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.kind.String())
			require.Equal(t, tt.wantOK, tt.kind.Valid())
			got, ok := directory.ParseKind(tt.want)
			require.Equal(t, tt.wantOK, ok)
			if ok {
				require.Equal(t, tt.kind, got)
			}
		})
	}
	require.Equal(t, directory.Kind(1), directory.KindUser, "kinds start at 1")
	_, ok := directory.ParseKind("User")
	require.False(t, ok, "kind names are case-sensitive")
}
