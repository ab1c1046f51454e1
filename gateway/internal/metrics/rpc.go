package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RPC holds the RPC router's metrics: calls and latency by module, method and status, and
// malformed requests by transport. Module and method labels come from the registered set (the
// router reports unknown names as "_unknown"), so cardinality stays bounded.
type RPC struct {
	calls     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	malformed *prometheus.CounterVec
}

// NewRPC creates the RPC metrics and registers them on reg.
func NewRPC(reg prometheus.Registerer) *RPC {
	m := &RPC{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rpc_calls_total",
			Help: "RPC calls by module, method and status (ok, error, unknown_module, unknown_method, bad_args, forbidden, timeout)."},
			[]string{"module", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "rpc_duration_seconds",
			Help:    "RPC call latency in the router (excluding transport), by module and method.",
			Buckets: []float64{1e-6, 1e-5, 1e-4, 1e-3, 5e-3, 2e-2, 0.1, 0.5, 2}},
			[]string{"module", "method"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rpc_malformed_total",
			Help: "RPC requests that could not be decoded, by transport (bus, http)."}, []string{"transport"}),
	}
	reg.MustRegister(m.calls, m.duration, m.malformed)
	m.malformed.WithLabelValues("bus")
	m.malformed.WithLabelValues("http")
	return m
}

// Observe records one call (the router's RouterConfig.Observe).
func (m *RPC) Observe(module, method, status string, d time.Duration) {
	m.calls.WithLabelValues(module, method, status).Inc()
	m.duration.WithLabelValues(module, method).Observe(d.Seconds())
}

// Malformed counts one undecodable request on transport.
func (m *RPC) Malformed(transport string) { m.malformed.WithLabelValues(transport).Inc() }
