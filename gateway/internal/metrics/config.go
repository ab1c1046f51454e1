package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// configMetrics are created on the first configuration reload.
type configMetrics struct {
	once    sync.Once
	reloads *prometheus.CounterVec
	ok      prometheus.Gauge
}

// ConfigReload counts a configuration reload (SIGHUP or a change of the config file) and sets
// teragate_config_last_reload_successful.
func (m *Metrics) ConfigReload(ok bool) {
	c := &m.config
	c.once.Do(func() {
		c.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "config_reloads_total", Help: "Configuration reloads by result."}, []string{"result"})
		c.ok = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "config_last_reload_successful", Help: "1 if the last configuration reload was applied without error."})
		m.reg.MustRegister(c.reloads, c.ok)
	})
	if ok {
		c.reloads.WithLabelValues("ok").Inc()
		c.ok.Set(1)
		return
	}
	c.reloads.WithLabelValues("error").Inc()
	c.ok.Set(0)
}
