package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Namespace prefixes every metric name.
const Namespace = "teragate"

// Drop reasons, the values of the reason label of teragate_drops_total.
const (
	DropFiltered     = "filtered"      // the filter said no (normal)
	DropQueueFull    = "queue_full"    // the recipient's outbound queue overflowed (slow consumer)
	DropClosing      = "closing"       // the recipient's socket was closing
	DropFilterError  = "filter_error"  // the filter failed: the batch was failed closed
	DropBadPayload   = "bad_payload"   // a bus payload that does not decode
	DropBusOverflow  = "bus_overflow"  // a bus subscription queue overflowed
	DropEncodeFailed = "encode_failed" // an event that could not be encoded for the wire
)

var dropReasons = []string{DropFiltered, DropQueueFull, DropClosing, DropFilterError, DropBadPayload, DropBusOverflow, DropEncodeFailed}

// Disconnect reasons, the values of the reason label of teragate_disconnects_total.
const (
	DisconnectClient       = "client"         // the client closed or the connection broke
	DisconnectCommand      = "command"        // CMD_CLIENT_DISCONNECT / logout (close 4000)
	DisconnectSlowConsumer = "slow_consumer"  // outbound queue overflow (close 4001)
	DisconnectPongTimeout  = "pong_timeout"   // no pong within the pong timeout
	DisconnectShutdown     = "shutdown"       // gateway shutting down (close 1001)
	DisconnectWriteError   = "write_error"    // a write failed or timed out
	DisconnectDirectory    = "directory"      // the entity left the directory or was disabled
	DisconnectProtocol     = "protocol_error" // the client broke the websocket protocol (e.g. 1007, invalid UTF-8)
)

var disconnectReasons = []string{DisconnectClient, DisconnectCommand, DisconnectSlowConsumer, DisconnectPongTimeout, DisconnectShutdown, DisconnectWriteError, DisconnectDirectory, DisconnectProtocol}

var kinds = []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice}

// Metrics is the set of metrics of one gateway.
type Metrics struct {
	reg *prometheus.Registry

	connections     [5]prometheus.Gauge
	connectsTotal   [5]prometheus.Counter
	deliveries      [5]prometheus.Counter
	drops           map[string]prometheus.Counter
	disconnects     map[string]prometheus.Counter
	eventsReceived  *prometheus.CounterVec
	filterDuration  [5]prometheus.Observer
	filterErrors    [5]prometheus.Counter
	logins          *prometheus.CounterVec
	published       *prometheus.CounterVec
	httpRequests    *prometheus.CounterVec
	directoryReload *prometheus.CounterVec
	directoryOK     prometheus.Gauge
	directoryTime   prometheus.Gauge
	plugin          pluginMetrics
	config          configMetrics
	redis           redisMetrics
	resume          resumeMetrics
	denied          *prometheus.CounterVec
	auth            authMetrics
}

// New creates the metrics on a fresh registry, with the Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg, drops: map[string]prometheus.Counter{}, disconnects: map[string]prometheus.Counter{}}

	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "connections", Help: "Open websocket connections by kind."}, []string{"kind"})
	connTotal := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "connections_opened_total", Help: "Websocket connections opened, by kind."}, []string{"kind"})
	deliv := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "deliveries_total", Help: "Frames queued to websocket clients, by recipient kind."}, []string{"kind"})
	fdur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "filter_duration_seconds", Help: "Time of one filter call (one event, one batch of recipients of one kind).",
		Buckets: []float64{1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.25}}, []string{"kind"})
	ferr := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "filter_errors_total", Help: "Filter calls that failed (the batch was failed closed), by kind."}, []string{"kind"})
	for _, k := range kinds {
		m.connections[k] = conns.WithLabelValues(k.String())
		m.connectsTotal[k] = connTotal.WithLabelValues(k.String())
		m.deliveries[k] = deliv.WithLabelValues(k.String())
		m.filterDuration[k] = fdur.WithLabelValues(k.String())
		m.filterErrors[k] = ferr.WithLabelValues(k.String())
	}
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "drops_total", Help: "Deliveries not made, by reason. filtered is normal filtering; every other reason is a loss worth looking at."}, []string{"reason"})
	for _, r := range dropReasons {
		m.drops[r] = drops.WithLabelValues(r)
	}
	disc := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "disconnects_total", Help: "Websocket connections closed, by reason."}, []string{"reason"})
	for _, r := range disconnectReasons {
		m.disconnects[r] = disc.WithLabelValues(r)
	}
	m.eventsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_received_total", Help: "Bus messages taken by the router, by topic family."}, []string{"family"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "logins_total", Help: "Login attempts by kind and result."}, []string{"kind", "result"})
	m.published = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_published_total", Help: "Events published onto the bus by the gateway, by source."}, []string{"source"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total", Help: "HTTP API requests by route and status class."}, []string{"route", "code"})
	m.directoryReload = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "directory_reloads_total", Help: "Identity directory reloads by result."}, []string{"result"})
	m.directoryOK = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "directory_last_reload_successful", Help: "1 if the last identity directory reload succeeded."})
	m.directoryTime = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "directory_last_reload_timestamp_seconds", Help: "Unix time of the last successful identity directory load."})
	m.denied = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "access_denied_total",
		Help: "Requests refused because they named entities, topics or event types beyond the caller's scope: publish (POST /api/events by a service without admin), plugin_rpc (an RPC plugin asked about or published to entities its caller may not reach)."}, []string{"what"})
	m.denied.WithLabelValues("publish")
	m.denied.WithLabelValues("plugin_rpc")
	for _, c := range []prometheus.Collector{m.denied, conns, connTotal, deliv, fdur, ferr, drops, disc, m.eventsReceived, m.logins, m.published, m.httpRequests, m.directoryReload, m.directoryOK, m.directoryTime} {
		f(c)
	}
	return m
}

// Denied counts one request refused for going beyond its caller's scope (what: publish,
// plugin_rpc).
func (m *Metrics) Denied(what string) { m.denied.WithLabelValues(what).Inc() }

// Registry returns the registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ConnOpened counts a new connection of kind k.
func (m *Metrics) ConnOpened(k directory.Kind) {
	if g := m.connections[k]; g != nil {
		g.Inc()
		m.connectsTotal[k].Inc()
	}
}

// ConnClosed counts a closed connection of kind k and its reason.
func (m *Metrics) ConnClosed(k directory.Kind, reason string) {
	if g := m.connections[k]; g != nil {
		g.Dec()
	}
	if c := m.disconnects[reason]; c != nil {
		c.Inc()
	}
}

// Delivered counts n frames queued to recipients of kind k.
func (m *Metrics) Delivered(k directory.Kind, n int) {
	if c := m.deliveries[k]; c != nil && n > 0 {
		c.Add(float64(n))
	}
}

// Dropped counts n deliveries not made for reason (one of the Drop* constants).
func (m *Metrics) Dropped(reason string, n int) {
	if c := m.drops[reason]; c != nil && n > 0 {
		c.Add(float64(n))
	}
}

// FilterCall records one filter call's duration in seconds, and whether it failed.
func (m *Metrics) FilterCall(k directory.Kind, seconds float64, failed bool) {
	if o := m.filterDuration[k]; o != nil {
		o.Observe(seconds)
		if failed {
			m.filterErrors[k].Inc()
		}
	}
}

// EventReceived counts one bus message of the given topic family.
func (m *Metrics) EventReceived(family string) { m.eventsReceived.WithLabelValues(family).Inc() }

// Login counts a login attempt of kind k with its result ("ok", "bad_credentials", "locked", …).
func (m *Metrics) Login(k directory.Kind, result string) {
	m.logins.WithLabelValues(k.String(), result).Inc()
}

// Published counts an event published onto the bus by source ("http", "presence", "socket", …).
func (m *Metrics) Published(source string) { m.published.WithLabelValues(source).Inc() }

// HTTPRequest counts an API request by route and status code.
func (m *Metrics) HTTPRequest(route string, code int) {
	m.httpRequests.WithLabelValues(route, codeClass(code)).Inc()
}

// DirectoryReload records an identity directory reload at unix time ts.
func (m *Metrics) DirectoryReload(ok bool, ts float64) {
	if ok {
		m.directoryReload.WithLabelValues("ok").Inc()
		m.directoryOK.Set(1)
		m.directoryTime.Set(ts)
		return
	}
	m.directoryReload.WithLabelValues("error").Inc()
	m.directoryOK.Set(0)
}

func codeClass(code int) string {
	switch {
	case code < 200:
		return "1xx"
	case code < 300:
		return "2xx"
	case code < 400:
		return "3xx"
	case code < 500:
		return "4xx"
	}
	return "5xx"
}
