package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Plugin call results, the values of the result label of teragate_plugin_calls_total.
const (
	PluginOK          = "ok"          // the call succeeded
	PluginGuestError  = "guest_error" // the guest reported an error (error flag)
	PluginTrap        = "trap"        // the guest trapped (panic, unreachable, out of memory)
	PluginTimeout     = "timeout"     // the per-call deadline stopped the guest
	PluginProtocol    = "protocol"    // a bad pointer, an oversized or undecodable result
	PluginQuarantined = "quarantined" // the version is quarantined: the call failed fast
	PluginBusy        = "busy"        // no instance became free before the deadline
)

// Plugin load results, the values of the result label of teragate_plugin_loads_total.
const (
	PluginLoaded     = "loaded"     // a first load or a reload that was swapped in
	PluginRejected   = "rejected"   // an invalid file: the previous version (if any) kept serving
	PluginUnchanged  = "unchanged"  // same bytes as the serving version: nothing done
	PluginUnloaded   = "unloaded"   // the file was removed
	PluginQuarantine = "quarantine" // a version was quarantined after repeated failures
	PluginRollback   = "rollback"   // a quarantined version was replaced by the previous one or the built-in
)

// pluginMetrics are created lazily, on the first plugin event, so gateways without plugins
// export none of them.
type pluginMetrics struct {
	once     sync.Once
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	loads    *prometheus.CounterVec
	info     *prometheus.GaugeVec
	mu       sync.Mutex
	infoLbl  map[string][]string
}

func (m *Metrics) plugins() *pluginMetrics {
	p := &m.plugin
	p.once.Do(func() {
		p.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "plugin_calls_total", Help: "Calls into Wasm plugins by plugin id and result."}, []string{"plugin", "result"})
		p.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "plugin_call_duration_seconds", Help: "Time of one call into a Wasm plugin (including waiting for an instance).",
			Buckets: []float64{1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 5e-3, 2e-2, 0.1}}, []string{"plugin"})
		p.loads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "plugin_loads_total", Help: "Plugin loads, reloads, rejections, unloads and quarantines by plugin id and result."}, []string{"plugin", "result"})
		p.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "plugin_info", Help: "1 for the serving version of each plugin (state: active or quarantined)."}, []string{"plugin", "hash", "state"})
		p.infoLbl = map[string][]string{}
		m.reg.MustRegister(p.calls, p.duration, p.loads, p.info)
	})
	return p
}

// PluginCall counts one call into plugin id with its result (a Plugin* constant) and duration.
func (m *Metrics) PluginCall(id, result string, seconds float64) {
	p := m.plugins()
	p.calls.WithLabelValues(id, result).Inc()
	if result != PluginQuarantined {
		p.duration.WithLabelValues(id).Observe(seconds)
	}
}

// PluginLoad counts a load event of plugin id (a PluginLoaded… constant).
func (m *Metrics) PluginLoad(id, result string) { m.plugins().loads.WithLabelValues(id, result).Inc() }

// PluginVersion records the serving version of plugin id; an empty hash removes it.
func (m *Metrics) PluginVersion(id, hash, state string) {
	p := m.plugins()
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.infoLbl[id]; ok {
		p.info.DeleteLabelValues(old...)
		delete(p.infoLbl, id)
	}
	if hash != "" {
		lbl := []string{id, hash, state}
		p.info.WithLabelValues(lbl...).Set(1)
		p.infoLbl[id] = lbl
	}
}
