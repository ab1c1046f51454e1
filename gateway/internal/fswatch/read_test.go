package fswatch

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadSized: a file is read into a slice of its size (plus the one byte that tells it grew),
// not the doubled capacity io.ReadAll leaves; a reader longer than announced is still read whole.
func TestReadSized(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size, real int
	}{
		{"empty", 0, 0},
		{"exact", 3 << 20, 3 << 20},
		{"grew", 1000, 5000},
		{"shrank", 5000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := bytes.Repeat([]byte{7}, tc.real)
			data, err := readSized(bytes.NewReader(src), int64(tc.size))
			require.NoError(t, err)
			require.Equal(t, src, data)
			if tc.real <= tc.size {
				require.Equal(t, tc.size+1, cap(data), "no more than the announced size and one byte")
			}
		})
	}
}
