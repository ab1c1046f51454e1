package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// NodeTotals is what the node list of the admin page shows of this node's metrics: the open
// websocket connections, and the cumulative connects and deliveries (all kinds together), and the
// disconnects (all reasons) the memory trimmer watches.
type NodeTotals struct {
	Connections int64
	Connects    uint64
	Disconnects uint64
	Deliveries  uint64
}

// NodeTotals reads the connection gauge and the connects and deliveries counters, summed over the
// kinds: the values /metrics shows as teragate_connections, teragate_connections_opened_total and
// teragate_deliveries_total.
func (m *Metrics) NodeTotals() NodeTotals {
	var t NodeTotals
	var conns, connects, deliv float64
	for _, k := range kinds {
		conns += value(m.connections[k])
		connects += value(m.connectsTotal[k])
		deliv += value(m.deliveries[k])
	}
	var disc float64
	for _, c := range m.disconnects {
		disc += value(c)
	}
	t.Connections, t.Connects, t.Disconnects, t.Deliveries = int64(conns), uint64(connects), uint64(disc), uint64(deliv)
	return t
}

// value is the current value of a gauge or counter.
func value(c prometheus.Metric) float64 {
	var d dto.Metric
	if c == nil || c.Write(&d) != nil {
		return 0
	}
	if g := d.GetGauge(); g != nil {
		return g.GetValue()
	}
	return d.GetCounter().GetValue()
}
