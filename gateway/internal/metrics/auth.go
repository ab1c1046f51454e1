package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Login throttle events, the values of the event label of login_throttle_events_total.
const (
	// ThrottleLocked counts a (username, source address) pair locked after too many wrong passwords.
	ThrottleLocked = "locked"
	// ThrottleBusy counts a login that gave up waiting for attempts in flight to finish.
	ThrottleBusy = "busy"
)

// authMetrics are created on the first throttle event.
type authMetrics struct {
	once     sync.Once
	throttle *prometheus.CounterVec
}

// LoginThrottle counts a password throttle event of kind k: [ThrottleLocked] or [ThrottleBusy].
func (m *Metrics) LoginThrottle(k directory.Kind, event string) {
	a := &m.auth
	a.once.Do(func() {
		a.throttle = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "login_throttle_events_total",
			Help: "Password login throttle events by kind: locked (a username locked for one source address after too many wrong passwords), busy (a login gave up waiting for attempts in flight)."},
			[]string{"kind", "event"})
		m.reg.MustRegister(a.throttle)
	})
	a.throttle.WithLabelValues(k.String(), event).Inc()
}
