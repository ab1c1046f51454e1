package abi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPackUnpack(t *testing.T) {
	tests := []struct {
		name   string
		ptr    uint32
		length uint32
		failed bool
		want   uint64
	}{
		{"doc example ok", 0x0001_0000, 300, false, 0x0001_0000_0000_012C},
		{"doc example error", 0x0001_0000, 20, true, 0x0001_0000_8000_0014},
		{"zero", 0, 0, false, 0},
		{"max", 0xFFFF_FFFF, 0x7FFF_FFFF, true, 0xFFFF_FFFF_FFFF_FFFF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Pack(tt.ptr, tt.length, tt.failed)
			require.Equal(t, tt.want, got)
			p, l, f := Unpack(got)
			require.Equal(t, tt.ptr, p)
			require.Equal(t, tt.length, l)
			require.Equal(t, tt.failed, f)
		})
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(uint64(0x0001_0000_8000_0014))
	f.Fuzz(func(t *testing.T, r uint64) {
		p, l, failed := Unpack(r)
		require.Equal(t, r, Pack(p, l, failed))
	})
}
