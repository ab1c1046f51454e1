package loadtest

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr error
	}{
		{
			name: "plain",
			in:   "1234 (teragate) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 10000 500 18446744073709551615",
			want: 3 * time.Second,
		},
		{
			name: "command with spaces and parens",
			in:   "77 (a b) c)) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1",
			want: 100 * time.Millisecond,
		},
		{name: "truncated", in: "1 (x) S 1 2 3", wantErr: ErrProcFormat},
		{name: "no name", in: "garbage", wantErr: ErrProcFormat},
		{name: "bad number", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 zz 3 0", wantErr: ErrProcFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.in))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr error
	}{
		{name: "found", in: "Name:\tteragate\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t8\n", want: 5120 * 1024},
		{name: "last line", in: "Name:\tx\nVmRSS:\t1 kB", want: 1024},
		{name: "missing", in: "Name:\tx\n", wantErr: ErrProcFormat},
		{name: "bad unit", in: "VmRSS:\t12 MB\n", wantErr: ErrProcFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusRSS([]byte(tt.in))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestReadProcStatSelf(t *testing.T) {
	s1, err := ReadProcStat(0)
	require.NoError(t, err)
	require.Positive(t, s1.RSS)
	// Burn a little CPU so the counter can move (10 ms ticks).
	deadline := time.Now().Add(60 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	s2, err := ReadProcStat(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, s2.CPU, s1.CPU)
	require.True(t, s2.At.After(s1.At))

	_, err = ReadProcStat(1 << 30)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseSystemBusy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr error
	}{
		{name: "full", in: "cpu  100 5 50 9000 20 3 2 1 7 1\ncpu0 1 2 3 4\n", want: 161 * 10 * time.Millisecond},
		{name: "old kernel", in: "cpu 10 0 10 100", want: 200 * time.Millisecond},
		{name: "not cpu", in: "intr 1 2 3 4 5", wantErr: ErrProcFormat},
		{name: "bad number", in: "cpu 1 x 3 4 5", wantErr: ErrProcFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSystemBusy([]byte(tt.in))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := ReadSystemBusy()
	require.NoError(t, err)
}
