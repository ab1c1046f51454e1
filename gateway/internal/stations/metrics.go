package stations

import "github.com/prometheus/client_golang/prometheus"

// metricsSet are the manager's Prometheus metrics (low cardinality: no uuid or role labels).
type metricsSet struct {
	online    prometheus.Gauge
	loads     *prometheus.CounterVec // role file loads by result: loaded, rejected
	pushes    *prometheus.CounterVec // pushes by result: OK, ROLE_BLOCKED, …, no_answer
	reloads   prometheus.Counter     // role reloads pushed to a station
	badFrames prometheus.Counter     // frames refused from stations
}

func newMetrics(reg prometheus.Registerer) *metricsSet {
	m := &metricsSet{
		online: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "teragate", Subsystem: "stations", Name: "online",
			Help: "Stations holding a /wss/station connection."}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "role_loads_total",
			Help: "Role plugin files loaded from the roles directory (loaded) or refused (rejected)."}, []string{"result"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "pushes_total",
			Help: "UpdateConfiguration pushes by the station's answer (OK, ROLE_BLOCKED, MISSING_ROLE_FACTORY, INVALID_CONFIGURATION, no_answer)."}, []string{"result"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "role_reload_pushes_total",
			Help: "Pushes made because a role's plugin changed (one per affected station)."}),
		badFrames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "bad_frames_total",
			Help: "Frames refused from stations: undecodable, text, oversized statuses, invalid or concurrent Registers."}),
	}
	for _, r := range []string{"loaded", "rejected"} {
		m.loads.WithLabelValues(r)
	}
	for _, r := range []string{"OK", "ROLE_BLOCKED", "MISSING_ROLE_FACTORY", "INVALID_CONFIGURATION", "no_answer"} {
		m.pushes.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.online, m.loads, m.pushes, m.reloads, m.badFrames} {
			reg.MustRegister(c)
		}
	}
	return m
}
