package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// resumeMetrics count the resumes of connections that reconnect with since=<position>, and the
// event history they replay from.
type resumeMetrics struct {
	once       sync.Once
	resumes    *prometheus.CounterVec
	failed     *prometheus.CounterVec
	replayed   prometheus.Counter
	frames     prometheus.Counter
	duplicates prometheus.Counter
	alone      prometheus.Counter
}

func (m *Metrics) resumeM() *resumeMetrics {
	r := &m.resume
	r.once.Do(func() {
		r.resumes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "resumes_total",
			Help: "Websocket connections that asked to resume (since=<position>), by result: ok, failed (ResumeFailed sent first), interrupted (closed during the replay)."}, []string{"result"})
		r.failed = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "resume_failures_total",
			Help: "Resumes answered with ResumeFailed, by reason: too_old, unknown, disabled, error."}, []string{"reason"})
		r.replayed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "resume_replayed_events_total",
			Help: "Recorded events read from the history for resuming connections (before filtering)."})
		r.frames = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "resume_replayed_frames_total",
			Help: "Event frames sent to resuming connections from the history (after filtering)."})
		r.duplicates = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "resume_duplicates_dropped_total",
			Help: "Live events held back during a replay and dropped because the replay had sent them."})
		r.alone = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "resume_left_shared_total",
			Help: "Resuming connections that left a shared replay, their client too slow for the others, and finished their replay alone."})
		m.reg.MustRegister(r.resumes, r.failed, r.replayed, r.frames, r.duplicates, r.alone)
		for _, res := range []string{"ok", "failed", "interrupted"} {
			r.resumes.WithLabelValues(res)
		}
	})
	return r
}

// ResumeOK counts a completed resume: events read from the history, frames sent, live
// duplicates dropped.
func (m *Metrics) ResumeOK(events, frames, duplicates int) {
	r := m.resumeM()
	r.resumes.WithLabelValues("ok").Inc()
	r.replayed.Add(float64(events))
	r.frames.Add(float64(frames))
	r.duplicates.Add(float64(duplicates))
}

// ResumeDuplicates counts n live events dropped because a replay had sent them, found after the
// replay ended (their routing was behind the replay).
func (m *Metrics) ResumeDuplicates(n int) { m.resumeM().duplicates.Add(float64(n)) }

// ResumeLeftShared counts a resuming connection that left a shared replay to finish alone.
func (m *Metrics) ResumeLeftShared() { m.resumeM().alone.Inc() }

// ResumeFailed counts a resume answered with ResumeFailed for reason.
func (m *Metrics) ResumeFailed(reason string) {
	r := m.resumeM()
	r.resumes.WithLabelValues("failed").Inc()
	r.failed.WithLabelValues(reason).Inc()
}

// ResumeInterrupted counts a resume whose replay did not complete (the connection closed, or the
// history could not be read half-way), with what it had replayed.
func (m *Metrics) ResumeInterrupted(events, frames int) {
	r := m.resumeM()
	r.resumes.WithLabelValues("interrupted").Inc()
	r.replayed.Add(float64(events))
	r.frames.Add(float64(frames))
}

// History registers the event history's gauges: events kept and, when bytes is not nil, the
// memory they hold. The functions are called at each scrape.
func (m *Metrics) History(events, bytes func() float64) {
	m.resumeM()
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "history_events",
		Help: "Events kept in the event history for resuming clients."}, events))
	if bytes != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "history_bytes",
			Help: "Estimated memory held by the events in the in-memory history."}, bytes))
	}
}
