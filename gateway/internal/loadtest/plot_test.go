package loadtest

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWritePlot: a storm report's series renders as a PNG that decodes, one
// image of four panels; a report without samples is refused.
func TestWritePlot(t *testing.T) {
	rep := &Report{Target: "gateway", Clients: 50, Event: "stop", Storm: &StormReport{Mode: "drop", Clients: 50, AtSeconds: 3.5, AllBack: true, BackSeconds: 1.2}}
	for i := 1; i <= 8; i++ {
		rep.Series = append(rep.Series, Sample{
			T: float64(i), Connected: 50, ConnectsPerSec: float64(50 * (i % 4 / 3)),
			DeliveredPerSec: 2000, P50ms: 1.5, P99ms: float64(3 * i), ServerRSSMiB: 100 + float64(i),
		})
	}
	tests := []struct {
		name string
		rep  *Report
	}{
		{name: "storm", rep: rep},
		{name: "steady run", rep: &Report{Target: "bare", Clients: 10, Event: "stop", Series: rep.Series[:3]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, WritePlot(&buf, tt.rep))
			img, err := png.Decode(&buf)
			require.NoError(t, err)
			// 720 × 880 points at vgimg's 96 dpi.
			require.Equal(t, 960, img.Bounds().Dx())
			require.Equal(t, 1173, img.Bounds().Dy())
		})
	}

	path := filepath.Join(t.TempDir(), "run.png")
	require.NoError(t, WritePlotFile(path, rep))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = png.Decode(f)
	require.NoError(t, err)

	require.Error(t, WritePlot(&bytes.Buffer{}, &Report{}))
}

// TestHistSnapshotSub: the per-second latencies of the series are those of
// the values recorded since the previous snapshot.
func TestHistSnapshotSub(t *testing.T) {
	h := NewHistogram(4)
	for i := range 100 {
		h.Record(i, 10)
	}
	first := h.Snapshot()
	for i := range 100 {
		h.Record(i, 5000)
	}
	d := h.Snapshot().Sub(first)
	require.Equal(t, uint64(100), d.Count)
	require.InDelta(t, 5000, float64(d.Quantile(0.5)), 5000/64)
	require.InDelta(t, 5000, float64(d.Max), 5000/64)
	require.Equal(t, uint64(10), h.Snapshot().Sub(nil).Quantile(0.5))
	require.Zero(t, h.Snapshot().Sub(h.Snapshot()).Quantile(0.99))
}
