package stations

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	stationv1 "github.com/teragate/teragate/proto/station/v1"
	stationsdk "github.com/teragate/teragate/sdk/station"
)

// ErrNoTaker: no online station running the role accepted the job.
var ErrNoTaker = errors.New("stations: no station accepted the job")

// JobRequest is the body of POST /api/stations/jobs.
type JobRequest struct {
	// Role is the role whose running instances are offered the job.
	Role string `json:"role"`
	// Job is the job's id; empty means a random one.
	Job string `json:"job"`
	// Config is the job's config, a JSON object given to the role (absent means {}).
	Config json.RawMessage `json:"config"`
}

// JobOffered is the answer of POST /api/stations/jobs.
type JobOffered struct {
	// Job is the job's id; its programs report under it in the station's jobs.
	Job string `json:"job"`
	// Station and Instance are the station and the role uuid that took it (empty when none).
	Station  string `json:"station"`
	Instance string `json:"instance"`
	// Offered counts the stations asked.
	Offered int `json:"offered"`
}

// Offer offers a job to the online stations running role, in random order, until one accepts
// (the reference's queue offered one job to several stations; here the first acceptance ends
// the round). It returns [ErrNoTaker] when nobody accepted.
func (m *Manager) Offer(role, job string, config []byte) (JobOffered, error) {
	if job == "" {
		var b [16]byte
		_, _ = crand.Read(b[:])
		job = hex.EncodeToString(b[:])
	}
	if len(config) == 0 {
		config = []byte("{}")
	}
	out := JobOffered{Job: job}
	type target struct {
		st *station
		c  *sconn
	}
	var targets []target
	m.mu.Lock()
	for _, st := range m.stations {
		st.mu.Lock()
		if st.conn != nil && slices.ContainsFunc(st.running, func(r *stationv1.RunningRole) bool {
			return r.Role == role && r.State == "running"
		}) {
			targets = append(targets, target{st, st.conn})
		}
		st.mu.Unlock()
	}
	m.mu.Unlock()
	rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	for _, t := range targets {
		out.Offered++
		ans, err := t.c.request(&stationv1.ManagerMessage{Body: &stationv1.ManagerMessage_JobOffer{JobOffer: &stationv1.JobOffer{
			Role: role, Job: job, Config: string(config)}}}, 10*time.Second)
		if err != nil {
			m.log.Warn("job offer not answered", "uuid", t.st.uuid, "role", role, "job", job, "error", err)
			continue
		}
		if r := ans.GetJobReply(); r.GetAccepted() {
			out.Station, out.Instance = t.st.uuid, r.GetUuid()
			m.log.Info("job accepted", "uuid", t.st.uuid, "role", role, "instance", r.GetUuid(), "job", job)
			return out, nil
		}
	}
	return out, ErrNoTaker
}

// handleOffer serves POST /api/stations/jobs: 200 with the taker, 503 when nobody accepted.
func (m *Manager) handleOffer(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	body, ok := m.readBody(w, r)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &req); err != nil || !roleName.MatchString(req.Role) || len(req.Job) > 200 {
		m.writeJSON(w, http.StatusBadRequest, "Want {\"role\": <role>, \"job\": <optional id>, \"config\": {...}}.")
		return
	}
	if len(req.Config) > 0 {
		var obj map[string]any
		if json.Unmarshal(req.Config, &obj) != nil {
			m.writeJSON(w, http.StatusBadRequest, "config must be a JSON object")
			return
		}
	}
	out, err := m.Offer(req.Role, req.Job, stationsdk.CompactJSON(req.Config))
	if err != nil {
		m.writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	m.writeJSON(w, http.StatusOK, out)
}
