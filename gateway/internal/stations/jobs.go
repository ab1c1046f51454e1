package stations

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
// the round). In a cluster, the stations of every live node are offered it (through their
// node). It returns [ErrNoTaker] when nobody accepted.
func (m *Manager) Offer(ctx context.Context, role, job string, config []byte) (JobOffered, error) {
	if job == "" {
		var b [16]byte
		_, _ = crand.Read(b[:])
		job = hex.EncodeToString(b[:])
	}
	if len(config) == 0 {
		config = []byte("{}")
	}
	out := JobOffered{Job: job}
	// A target is a station connected here (c set) or to another live node (node set).
	type target struct {
		st   *station
		c    *sconn
		uuid string
		node string
	}
	var targets []target
	runs := func(rs []*stationv1.RunningRole) bool {
		return slices.ContainsFunc(rs, func(r *stationv1.RunningRole) bool { return r.Role == role && r.State == "running" })
	}
	m.mu.Lock()
	for _, st := range m.stations {
		st.mu.Lock()
		if st.conn != nil && runs(st.running) {
			targets = append(targets, target{st: st, c: st.conn, uuid: st.uuid})
		}
		st.mu.Unlock()
	}
	m.mu.Unlock()
	if m.cl != nil {
		all, err := m.cl.load(ctx, nil)
		if err != nil {
			m.log.Warn("job offer: the other nodes' stations are not known (Redis)", "role", role, "job", job, "error", err)
		}
		alive := map[string]bool{}
		for _, s := range all {
			if s.node == "" || s.node == m.cl.cfg.NodeID || s.live == nil || !m.cl.alive(ctx, s.node, alive) {
				continue
			}
			if slices.ContainsFunc(s.live.Running, func(r RunningView) bool { return r.Role == role && r.State == "running" }) {
				targets = append(targets, target{uuid: s.uuid, node: s.node})
			}
		}
	}
	rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	for _, t := range targets {
		out.Offered++
		var accepted bool
		var instance string
		var err error
		if t.c != nil {
			accepted, instance, err = m.offerTo(t.st, t.c, role, job, config)
		} else {
			accepted, instance, err = m.offerRemote(ctx, t.node, t.uuid, role, job, config)
		}
		if err != nil {
			m.log.Warn("job offer not answered", "uuid", t.uuid, "node", t.node, "role", role, "job", job, "error", err)
			continue
		}
		if accepted {
			out.Station, out.Instance = t.uuid, instance
			m.log.Info("job accepted", "uuid", t.uuid, "node", t.node, "role", role, "instance", instance, "job", job)
			return out, nil
		}
	}
	return out, ErrNoTaker
}

// offerTimeout bounds a station's answer to a job offer.
const offerTimeout = 10 * time.Second

// offerTo offers the job to the station on c, connected to this node.
func (m *Manager) offerTo(st *station, c *sconn, role, job string, config []byte) (accepted bool, instance string, err error) {
	ans, err := c.request(&stationv1.ManagerMessage{Body: &stationv1.ManagerMessage_JobOffer{JobOffer: &stationv1.JobOffer{
		Role: role, Job: job, Config: string(config)}}}, offerTimeout)
	if err != nil {
		return false, "", err
	}
	r := ans.GetJobReply()
	return r.GetAccepted(), r.GetUuid(), nil
}

// offerRemote has node offer the job to station uuid, connected there.
func (m *Manager) offerRemote(ctx context.Context, node, uuid, role, job string, config []byte) (bool, string, error) {
	body, err := json.Marshal(JobRequest{Role: role, Job: job, Config: config})
	if err != nil {
		return false, "", err
	}
	a, err := m.cl.request(ctx, node, clusterMsg{Op: opOffer, UUID: uuid, Body: body}, offerTimeout+5*time.Second)
	if err != nil {
		return false, "", err
	}
	if a.Status != http.StatusOK {
		return false, "", fmt.Errorf("%w: node %s answered %d: %s", ErrNoAnswer, node, a.Status, a.Body)
	}
	var oa offerAnswer
	if err := json.Unmarshal(a.Body, &oa); err != nil {
		return false, "", fmt.Errorf("node %s: %w", node, err)
	}
	return oa.Accepted, oa.Instance, nil
}

// handleOffer serves POST /api/stations/jobs: 200 with the taker, 503 when nobody accepted.
func (m *Manager) handleOffer(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	body, ok := m.readBody(w, r)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &req); err != nil || !ValidRoleName(req.Role) || len(req.Job) > 200 {
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
	out, err := m.Offer(r.Context(), req.Role, req.Job, stationsdk.CompactJSON(req.Config))
	if err != nil {
		m.writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	m.writeJSON(w, http.StatusOK, out)
}
