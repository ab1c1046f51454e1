package loadtest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
)

// StormReport holds the figures of a storm run.
type StormReport struct {
	// Mode is "drop" or "restart".
	Mode string `json:"mode"`
	// Clients is how many clients were connected when the storm hit, of
	// which UserSockets are sockets of one user account.
	Clients     int `json:"clients"`
	UserSockets int `json:"user_sockets"`
	// AtSeconds is the storm instant, in seconds since the run started (the
	// time axis of [Report.Series]); RestartSeconds (restart mode) is how
	// long the server took from the kill to answering again.
	// DropSeconds (drop mode) is how long the bench took to reset every
	// connection, one after the other.
	AtSeconds      float64 `json:"at_seconds"`
	RestartSeconds float64 `json:"restart_seconds,omitempty"`
	DropSeconds    float64 `json:"drop_seconds,omitempty"`

	// Back is how many clients reconnected after the storm; AllBack is
	// true when all of them did. BackSeconds is the time from the storm to
	// the last one back, FirstKSeconds to the K-th back, LastKSeconds
	// from the (Clients-K+1)-th to the last.
	Back          int     `json:"back"`
	AllBack       bool    `json:"all_back"`
	BackSeconds   float64 `json:"back_seconds"`
	K             int     `json:"k"`
	FirstKSeconds float64 `json:"first_k_seconds"`
	LastKSeconds  float64 `json:"last_k_seconds"`

	// ServerCPUCores, ClientCPUCores and OtherCPUCores are the CPU the
	// server (drop mode), the bench and the machine's other processes used
	// from the storm to the last client back.
	ServerCPUCores float64 `json:"server_cpu_cores,omitempty"`
	ClientCPUCores float64 `json:"client_cpu_cores"`
	OtherCPUCores  float64 `json:"other_cpu_cores"`

	// Attempts counts reconnection attempts (a login and a websocket open
	// each), Reconnects those that succeeded. TransportErrors are attempts
	// that could not reach the server (down during a restart). Refused
	// counts answers other than 200/101 by "login <status>" or
	// "websocket <status>"; LoginsRefused sums the logins among them and
	// TooManyRequests the 429s.
	Attempts        int64            `json:"attempts"`
	Reconnects      int64            `json:"reconnects"`
	TransportErrors int64            `json:"transport_errors"`
	Refused         map[string]int64 `json:"refused,omitempty"`
	LoginsRefused   int64            `json:"logins_refused"`
	TooManyRequests int64            `json:"too_many_requests"`

	// PresenceConsistent is true when the server's online lists matched
	// the entities of the open sockets, PresenceSeconds after all were back.
	// Online holds, per kind, the server's count and the expected one.
	PresenceConsistent bool              `json:"presence_consistent"`
	PresenceSeconds    float64           `json:"presence_seconds"`
	Online             map[string][2]int `json:"online"`

	// PublishedEvents counts the events the server accepted during the run
	// (PublishErrors the others, mostly while it was down). Each reached
	// every socket live when it was published: ExpectedDeliveries sums
	// those, ReceivedDeliveries counts what arrived, LostDeliveries is the
	// difference, of which LostOnBroken are on the sockets opened before
	// the storm (events in flight when the storm broke them).
	PublishedEvents    int64 `json:"published_events"`
	PublishErrors      int64 `json:"publish_errors"`
	ExpectedDeliveries int64 `json:"expected_deliveries"`
	ReceivedDeliveries int64 `json:"received_deliveries"`
	LostDeliveries     int64 `json:"lost_deliveries"`
	LostOnBroken       int64 `json:"lost_on_broken_sockets"`

	// Resume is set when the clients resumed (StormConfig.Resume).
	Resume *StormResume `json:"resume,omitempty"`
}

// StormResume holds the resume figures of a storm whose clients resumed:
// every event goes to every socket, so each client is entitled to every
// event published from its first socket being live to the end (Expected,
// summed over the clients); Delivered counts those that arrived, each once,
// Duplicates those that arrived again, Missing the difference, and
// ResumeFailed the reconnections the gateway could not resume.
type StormResume struct {
	Expected     int64 `json:"expected"`
	Delivered    int64 `json:"delivered"`
	Missing      int64 `json:"missing"`
	Duplicates   int64 `json:"duplicates"`
	ResumeFailed int64 `json:"resume_failed"`
}

// finish fills the report from the run's counters; the clients have
// stopped.
func (s *storm) finish(rep *Report, sr *StormReport) {
	h := s.h
	s.backFigures(sr)
	sr.Attempts, sr.Reconnects = s.attempts.Load(), s.reconnects.Load()
	sr.TransportErrors = s.transportErrs.Load()
	sr.Refused = s.statuses
	for k, n := range s.statuses {
		if strings.HasPrefix(k, "login ") {
			sr.LoginsRefused += n
		}
		if strings.HasSuffix(k, " 429") {
			sr.TooManyRequests += n
		}
	}
	slices.Sort(s.pubTimes)
	sr.PublishedEvents = int64(len(s.pubTimes))
	sr.PublishErrors = h.publishErrs.Load()
	s.deliveries(sr)
	rep.PublishedEvents, rep.PublishErrors = sr.PublishedEvents, sr.PublishErrors
	rep.ExpectedDeliveries, rep.ReceivedDeliveries = sr.ExpectedDeliveries, sr.ReceivedDeliveries
	rep.LostDeliveries = sr.LostDeliveries
	snap := h.hist.Snapshot()
	rep.LatencyP50ms = float64(snap.Quantile(0.50)) / 1000
	rep.LatencyP90ms = float64(snap.Quantile(0.90)) / 1000
	rep.LatencyP99ms = float64(snap.Quantile(0.99)) / 1000
	rep.LatencyMaxms = float64(snap.Max) / 1000
	rep.Disconnected = int(h.disconnected.Load())
	h.finishServer(rep, ProcSample{}, ProcSample{}, 0)
	rep.KiBPerConn = 0 // the base was another process after a restart
	rep.Errors = h.errs()
}

// deliveries counts the deliveries expected (events published while a
// socket was live) and received.
func (s *storm) deliveries(sr *StormReport) {
	var early, earlyExpected int64
	for _, sc := range s.clients {
		sr.ReceivedDeliveries += sc.received
		early += sc.early
		for _, iv := range sc.ivals {
			n := int64(countIn(s.pubTimes, iv))
			sr.ExpectedDeliveries += n
			if iv.early {
				earlyExpected += n
			}
		}
	}
	sr.LostDeliveries = sr.ExpectedDeliveries - sr.ReceivedDeliveries
	sr.LostOnBroken = earlyExpected - early
	if !s.cfg.Resume {
		return
	}
	r := &StormResume{}
	for _, sc := range s.clients {
		if sc.firstLive == 0 {
			continue
		}
		r.Expected += int64(countIn(s.pubTimes, interval{from: sc.firstLive, to: math.Inf(1)}))
		r.Delivered += sc.unique
		r.Duplicates += sc.dups
		r.ResumeFailed += sc.failed
	}
	r.Missing = r.Expected - r.Delivered
	sr.Resume = r
}

// backFigures fills the times clients took to come back.
func (s *storm) backFigures(sr *StormReport) {
	b := s.backAt
	sr.Back = len(b)
	sr.K = min(1000, max(1, sr.Clients/10))
	if len(b) == 0 {
		return
	}
	sr.BackSeconds = b[len(b)-1].Seconds()
	if len(b) >= sr.K {
		sr.FirstKSeconds = b[sr.K-1].Seconds()
		sr.LastKSeconds = (b[len(b)-1] - b[len(b)-sr.K]).Seconds()
	}
}

// countIn returns how many of the sorted times fall in iv.
func countIn(sorted []float64, iv interval) int {
	lo := sort.SearchFloat64s(sorted, iv.from)
	hi := sort.SearchFloat64s(sorted, iv.to)
	return hi - lo
}

// progressFields is the storm's part of a progress line.
func (s *storm) progressFields() string {
	var since string
	if at := s.at.Load(); at != 0 {
		since = fmt.Sprintf(" back=%d/%d", s.back.Load(), s.target)
	}
	s.mu.Lock()
	refused := 0
	for _, n := range s.statuses {
		refused += int(n)
	}
	s.mu.Unlock()
	return fmt.Sprintf("%s attempts=%d refused=%d unreachable=%d", since, s.attempts.Load(), refused, s.transportErrs.Load())
}

// writeText writes the storm lines of the text report.
func (sr *StormReport) writeText(line func(name, format string, args ...any)) {
	what := fmt.Sprintf("every client dropped its TCP connection (reset, no close frame; all within %.0fms)", sr.DropSeconds*1000)
	if sr.Mode == string(StormRestart) {
		what = fmt.Sprintf("server killed (SIGKILL) and started again, answering after %.2fs", sr.RestartSeconds)
	}
	line("storm", "%s at %.1fs; %d clients (%d sockets of one user)", what, sr.AtSeconds, sr.Clients, sr.UserSockets)
	rate := 0.0
	if sr.BackSeconds > 0 {
		rate = float64(sr.Back) / sr.BackSeconds
	}
	line("back", "%d/%d in %.2fs (%.0f/s); first %d in %.2fs, last %d in %.2fs",
		sr.Back, sr.Clients, sr.BackSeconds, rate, sr.K, sr.FirstKSeconds, sr.K, sr.LastKSeconds)
	line("storm cpu", "until all back: server %.2f cores, bench %.2f cores, other processes %.2f cores", sr.ServerCPUCores, sr.ClientCPUCores, sr.OtherCPUCores)
	line("reconnects", "%d attempts, %d succeeded, %d could not reach the server", sr.Attempts, sr.Reconnects, sr.TransportErrors)
	line("refused", "%d logins, %d answers 429; %s", sr.LoginsRefused, sr.TooManyRequests, refusedText(sr.Refused))
	line("presence", "%s: %s", consistentText(sr), onlineText(sr.Online))
	line("storm events", "%d published (%d failed), deliveries to live sockets expected %d, received %d, lost %d (%d on the sockets the storm broke, in flight then)",
		sr.PublishedEvents, sr.PublishErrors, sr.ExpectedDeliveries, sr.ReceivedDeliveries, sr.LostDeliveries, sr.LostOnBroken)
	if r := sr.Resume; r != nil {
		line("storm resume", "resuming clients: events expected %d (published from each client's first socket on), delivered %d, missing %d, duplicates %d, ResumeFailed %d",
			r.Expected, r.Delivered, r.Missing, r.Duplicates, r.ResumeFailed)
	}
}

func refusedText(m map[string]int64) string {
	if len(m) == 0 {
		return "no refusal"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func consistentText(sr *StormReport) string {
	if sr.PresenceConsistent {
		return fmt.Sprintf("consistent %.2fs after all were back", sr.PresenceSeconds)
	}
	return fmt.Sprintf("NOT consistent after %.1fs", sr.PresenceSeconds)
}

func onlineText(m map[string][2]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("online %s %d (sockets' %d)", k, m[k][0], m[k][1]))
	}
	return strings.Join(parts, ", ")
}
