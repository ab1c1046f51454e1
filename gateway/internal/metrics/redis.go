package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// redisMetrics are created when a gateway runs against Redis (--redis).
type redisMetrics struct {
	once       sync.Once
	reconnects *prometheus.CounterVec
	reaped     prometheus.Counter
}

func (m *Metrics) redisM() *redisMetrics {
	r := &m.redis
	r.once.Do(func() {
		r.reconnects = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "redis_reconnects_total",
			Help: "Redis connections lost and restored, by component (bus: a pub/sub subscription resubscribed)."}, []string{"component"})
		r.reaped = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "presence_reaped_connections_total",
			Help: "Connections of dead nodes (no heartbeat) that this node took offline."})
		m.reg.MustRegister(r.reconnects, r.reaped)
	})
	return r
}

// RedisEnabled registers the Redis metrics, so they read 0 before the first event.
func (m *Metrics) RedisEnabled() { m.redisM() }

// RedisReconnect counts a lost and restored Redis connection of component ("bus", "presence").
func (m *Metrics) RedisReconnect(component string) {
	m.redisM().reconnects.WithLabelValues(component).Inc()
}

// PresenceReaped counts n connections of a dead node taken offline by this node.
func (m *Metrics) PresenceReaped(n int) { m.redisM().reaped.Add(float64(n)) }
