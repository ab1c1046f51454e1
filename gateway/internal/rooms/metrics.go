package rooms

import (
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric label values besides the wiki's states and events.
const (
	// LabelNone is the state of a participant that has not reported a status yet.
	LabelNone = "none"
	// LabelOther stands for any state or event outside the wiki's lists (bounded cardinality).
	LabelOther = "other"
)

// metricsSet holds the rooms metrics (namespace teragate, subsystem rooms). The gauges of live
// rooms and participants are read from the store at each scrape (cluster-wide with Redis); the
// counters count this node's requests.
type metricsSet struct {
	updates  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	changes  *prometheus.CounterVec
	domains  prometheus.Counter
	refused  *prometheus.CounterVec
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

func newMetrics(reg prometheus.Registerer, g *gauges) *metricsSet {
	m := &metricsSet{
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
		for _, c := range []prometheus.Collector{g, m.updates, m.rejected, m.changes, m.domains, m.refused} {
			reg.MustRegister(c)
		}
	}
	return m
}

// stateLabels are the label values of teragate_rooms_participants.
func stateLabels() []string { return append([]string{LabelNone, LabelOther}, States...) }

// gauges is the collector of the live rooms and participants, counted by the store at scrape
// time: with the Redis store every node reports the cluster's figures (do not sum them).
type gauges struct {
	store        Store
	now          func() time.Time
	log          hclog.Logger
	rooms        *prometheus.Desc
	participants *prometheus.Desc
}

func newGauges(store Store, now func() time.Time, log hclog.Logger) *gauges {
	return &gauges{store: store, now: now, log: log,
		rooms: prometheus.NewDesc("teragate_rooms_rooms", "Live rooms (in the store: cluster-wide with Redis).", nil, nil),
		participants: prometheus.NewDesc("teragate_rooms_participants",
			"Live room participants by their last reported session state (none: no status yet; other: a state outside the wiki's); cluster-wide with Redis.",
			[]string{"state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *gauges) Describe(ch chan<- *prometheus.Desc) { ch <- g.rooms; ch <- g.participants }

// Collect implements prometheus.Collector. When the store cannot answer, the gauges are left
// out of the scrape (and the failure logged) rather than reported as zero.
func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := g.store.Counts(ctx, g.now())
	if err != nil {
		g.log.Warn("rooms gauges not collected", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(g.rooms, prometheus.GaugeValue, float64(c.Rooms))
	for _, l := range stateLabels() {
		ch <- prometheus.MustNewConstMetric(g.participants, prometheus.GaugeValue, float64(c.Participants[l]), l)
	}
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
