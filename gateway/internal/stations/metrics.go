package stations

import "github.com/prometheus/client_golang/prometheus"

// metricsSet are the manager's Prometheus metrics (low cardinality: no uuid or role labels).
type metricsSet struct {
	online  prometheus.Gauge
	loads   *prometheus.CounterVec // role file loads by result: loaded, rejected
	pushes  *prometheus.CounterVec // pushes by result: OK, ROLE_BLOCKED, …, no_answer
	reloads prometheus.Counter     // role reloads pushed to a station

	invalid       *prometheus.CounterVec // invalid frames from stations, by reason
	closedInvalid prometheus.Counter     // stations closed for too many invalid frames
	refused       *prometheus.CounterVec // configs and statuses refused for their size, by reason
	registering   prometheus.Gauge       // registers being served

	forwarded      *prometheus.CounterVec // cluster: requests to the node holding a station, by op and result
	clusterInvalid prometheus.Counter     // cluster: undecodable or unknown requests from the bus
}

// invalidReasons are the reasons of teragate_stations_invalid_frames_total.
var invalidReasons = []string{"undecodable", "text", "empty", "register_invalid", "register_in_flight",
	"status_invalid", "status_too_large", "running_invalid", "too_large"}

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
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "invalid_frames_total",
			Help: "Invalid frames received from stations, by reason; a connection is closed (1008) after Limits.MaxInvalidFrames."}, []string{"reason"}),
		closedInvalid: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "closed_invalid_frames_total",
			Help: "Station connections closed for sending too many invalid frames."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "refused_total",
			Help: "Role configs (register or admin edit) and statuses refused for their size (config_too_large, device_status_too_large)."}, []string{"reason"}),
		registering: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "teragate", Subsystem: "stations", Name: "registers_in_flight",
			Help: "Station registers being served (at most one per connection)."}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "forwarded_total",
			Help: "Cluster mode: requests sent to the node holding a station's connection, by op (edit, offer) and result (answered, no_answer, error)."}, []string{"op", "result"}),
		clusterInvalid: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "stations", Name: "cluster_invalid_total",
			Help: "Cluster mode: station requests or answers from the bus that did not decode or named an unknown operation (ignored)."}),
	}
	for _, r := range invalidReasons {
		m.invalid.WithLabelValues(r)
	}
	for _, r := range []string{"config_too_large", "device_status_too_large"} {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{"loaded", "rejected"} {
		m.loads.WithLabelValues(r)
	}
	for _, r := range []string{"OK", "ROLE_BLOCKED", "MISSING_ROLE_FACTORY", "INVALID_CONFIGURATION", "no_answer"} {
		m.pushes.WithLabelValues(r)
	}
	for _, op := range []string{opEdit, opOffer} {
		for _, r := range []string{"answered", "no_answer", "error"} {
			m.forwarded.WithLabelValues(op, r)
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.online, m.loads, m.pushes, m.reloads, m.invalid, m.closedInvalid, m.refused, m.registering,
			m.forwarded, m.clusterInvalid} {
			reg.MustRegister(c)
		}
	}
	return m
}
