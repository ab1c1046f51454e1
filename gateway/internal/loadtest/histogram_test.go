package loadtest

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []uint64
		q      float64
		want   uint64
	}{
		{name: "empty", values: nil, q: 0.5, want: 0},
		{name: "single", values: []uint64{42}, q: 0.99, want: 42},
		{name: "1..100 p50", values: seq(1, 100), q: 0.50, want: 50},
		{name: "1..100 p90", values: seq(1, 100), q: 0.90, want: 90},
		{name: "1..100 p99", values: seq(1, 100), q: 0.99, want: 99},
		{name: "1..100 p100", values: seq(1, 100), q: 1, want: 100},
		{name: "zeros", values: []uint64{0, 0, 0}, q: 0.5, want: 0},
		// 1000 is in the bucket [1000, 1007] (width 8 between 512 and 1023):
		// the bucket's high end is reported, clamped to the exact maximum.
		{name: "large value clamped to max", values: []uint64{1000}, q: 0.5, want: 1000},
		{name: "large bucket high end", values: []uint64{1000, 2000}, q: 0.5, want: 1007},
		{name: "skewed p99", values: append(repeat(10, 990), repeat(5000, 10)...), q: 0.99, want: 10},
		{name: "skewed p99.9", values: append(repeat(10, 990), repeat(5000, 10)...), q: 0.999, want: 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram(4)
			for i, v := range tt.values {
				h.Record(i, v)
			}
			got := h.Snapshot().Quantile(tt.q)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestHistogramRelativeError(t *testing.T) {
	for _, v := range []uint64{127, 128, 129, 255, 256, 1000, 12345, 1 << 20, 987654321, maxValue} {
		b := bucketOf(v)
		hi := bucketHigh(b)
		require.GreaterOrEqual(t, hi, v, "value %d", v)
		require.LessOrEqual(t, float64(hi-v)/float64(v), 1.0/64, "value %d", v)
		if b > 0 {
			require.Less(t, bucketHigh(b-1), v, "value %d", v)
		}
	}
	require.Less(t, bucketOf(maxValue), numBuckets)
	require.Equal(t, bucketOf(maxValue), bucketOf(maxValue+12345), "clamped")
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram(8)
	var wg sync.WaitGroup
	const goroutines, per = 8, 2000
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				h.Record(g, uint64(i%100))
				if i%500 == 0 {
					_ = h.Snapshot().Quantile(0.99)
				}
			}
		}()
	}
	wg.Wait()
	s := h.Snapshot()
	require.Equal(t, uint64(goroutines*per), s.Count)
	require.Equal(t, uint64(99), s.Max)
	require.Equal(t, uint64(49), s.Quantile(0.5))
	require.InDelta(t, 49.5, s.Mean(), 0.001)
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

func repeat(v uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = v
	}
	return out
}
