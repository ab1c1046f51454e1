package nodes

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/metrics"
)

// clock is a manual clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestRates: the rates are the counters' increase over the newest sample at or before the window's
// start and the latest one, whatever the sampling interval.
func TestRates(t *testing.T) {
	type step struct {
		after       time.Duration // since the previous sample
		connects    uint64
		deliveries  uint64
		wantConnPS  float64
		wantDelivPS float64
	}
	tests := []struct {
		name   string
		window time.Duration
		steps  []step
	}{
		{name: "first sample has no rate", window: 5 * time.Second, steps: []step{{0, 10, 100, 0, 0}}},
		{name: "steady", window: 5 * time.Second, steps: []step{
			{0, 0, 0, 0, 0}, {time.Second, 2, 10, 2, 10}, {time.Second, 4, 20, 2, 10}, {time.Second, 6, 30, 2, 10}}},
		{name: "window slides past a burst", window: 2 * time.Second, steps: []step{
			{0, 0, 0, 0, 0}, {time.Second, 10, 100, 10, 100}, {time.Second, 10, 100, 5, 50}, {time.Second, 10, 100, 0, 0}}},
		{name: "slow sampling keeps one base sample", window: 2 * time.Second, steps: []step{
			{0, 0, 0, 0, 0}, {4 * time.Second, 8, 40, 2, 10}, {4 * time.Second, 8, 80, 0, 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			var cur metrics.NodeTotals
			s, err := New(Config{NodeID: "n1", Addr: func() string { return "h:1" }, Sample: func() metrics.NodeTotals { return cur },
				RateWindow: tc.window, Now: clk.now})
			require.NoError(t, err)
			for i, st := range tc.steps {
				clk.t = clk.t.Add(st.after)
				cur = metrics.NodeTotals{Connections: 1, Connects: st.connects, Deliveries: st.deliveries}
				rec := s.record()
				require.InDelta(t, st.wantConnPS, rec.ConnectsPerSec, 1e-9, "step %d connects/s", i)
				require.InDelta(t, st.wantDelivPS, rec.DeliveriesPerSec, 1e-9, "step %d deliveries/s", i)
				require.LessOrEqual(t, len(s.samples), int(tc.window/time.Second)+2, "samples are trimmed")
			}
		})
	}
}

// TestSingleNodeList: without Redis the list is the node itself, up, with its uptime and totals.
func TestSingleNodeList(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	cur := metrics.NodeTotals{Connections: 3, Connects: 5, Deliveries: 7}
	s, err := New(Config{NodeID: "solo", Addr: func() string { return "10.0.0.1:4040" }, Sample: func() metrics.NodeTotals { return cur }, Now: clk.now,
		Interval: time.Hour}) // no background sample during the test
	require.NoError(t, err)
	s.Start(context.Background())
	defer func() { require.NoError(t, s.Stop(context.Background())) }()
	clk.t = clk.t.Add(90 * time.Second)
	cur.Deliveries = 97
	require.NoError(t, s.Publish(context.Background()))
	l, err := s.List(context.Background())
	require.NoError(t, err)
	require.Len(t, l.Nodes, 1)
	n := l.Nodes[0]
	require.Equal(t, "solo", n.ID)
	require.Equal(t, "10.0.0.1:4040", n.Addr)
	require.True(t, n.Up)
	require.True(t, n.Self)
	require.Equal(t, 90.0, n.UptimeSeconds)
	require.Equal(t, clk.t, *n.HeartbeatAt)
	require.Equal(t, Totals{Nodes: 1, Up: 1, Connections: 3, Connects: 5, Deliveries: 97, DeliveriesPerSec: 1}, l.Totals)
}

func TestNewChecksConfig(t *testing.T) {
	_, err := New(Config{NodeID: "x"})
	require.Error(t, err)
}
