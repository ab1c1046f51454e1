package rooms

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric label values besides the wiki's states and events.
const (
	// LabelNone is the state of a participant that has not reported a status yet.
	LabelNone = "none"
	// LabelOther stands for any state or event outside the wiki's lists (bounded cardinality).
	LabelOther = "other"
)

// metricsSet holds the rooms metrics (namespace teragate, subsystem rooms).
type metricsSet struct {
	rooms        prometheus.Gauge
	participants *prometheus.GaugeVec
	updates      *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	changes      *prometheus.CounterVec
	domains      prometheus.Counter
	refused      *prometheus.CounterVec
}

// Reasons of teragate_rooms_refused_total.
const (
	// RefusedRegistrationRate: POST /registration over its source address's rate (429).
	RefusedRegistrationRate = "registration_rate"
	// RefusedRequestRate: a request over its identity's rate, or an anonymous join over its
	// source address's (429).
	RefusedRequestRate = "request_rate"
	// RefusedRoomsPerOwner: a room creation over MaxRoomsPerOwner (403).
	RefusedRoomsPerOwner = "rooms_per_owner"
	// RefusedHawkSessions: a registration over MaxHawkSessions (503).
	RefusedHawkSessions = "hawk_sessions"
)

func newMetrics(reg prometheus.Registerer) *metricsSet {
	m := &metricsSet{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "teragate", Subsystem: "rooms", Name: "rooms",
			Help: "Live rooms."}),
		participants: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "teragate", Subsystem: "rooms", Name: "participants",
			Help: "Room participants by their last reported session state (none: no status yet; other: a state outside the wiki's)."}, []string{"state"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "rooms", Name: "status_updates_total",
			Help: "Accepted status updates by event (other: an event outside the wiki's)."}, []string{"event"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "rooms", Name: "status_rejected_total",
			Help: "Rejected status updates by reason (invalid, strict, not_participant)."}, []string{"reason"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "rooms", Name: "participant_changes_total",
			Help: "Participants joined, left and expired."}, []string{"change"}),
		domains: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "rooms", Name: "shared_domains_total",
			Help: "Sum of the counts reported by logDomain (Loop's loop.room.shared_domains)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "teragate", Subsystem: "rooms", Name: "refused_total",
			Help: "Requests refused by a rate limit or a cap, by reason (registration_rate, request_rate, rooms_per_owner, hawk_sessions)."}, []string{"reason"}),
	}
	for _, s := range append([]string{LabelNone, LabelOther}, States...) {
		m.participants.WithLabelValues(s)
	}
	for _, e := range append([]string{LabelOther}, Events...) {
		m.updates.WithLabelValues(e)
	}
	for _, r := range []string{"invalid", "strict", "not_participant"} {
		m.rejected.WithLabelValues(r)
	}
	for _, c := range []string{"join", "leave", "expire"} {
		m.changes.WithLabelValues(c)
	}
	for _, r := range []string{RefusedRegistrationRate, RefusedRequestRate, RefusedRoomsPerOwner, RefusedHawkSessions} {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rooms, m.participants, m.updates, m.rejected, m.changes, m.domains, m.refused} {
			reg.MustRegister(c)
		}
	}
	return m
}

// stateLabel maps a participant's status to its gauge label.
func stateLabel(st Status) string {
	if st.Updates == 0 {
		return LabelNone
	}
	if known(States, st.State) {
		return st.State
	}
	return LabelOther
}

func eventLabel(e string) string {
	if known(Events, e) {
		return e
	}
	return LabelOther
}

func itoa(n int) string { return strconv.Itoa(n) }
