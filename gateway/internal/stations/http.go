package stations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/teragate/teragate/gateway/internal/api"
	"github.com/teragate/teragate/gateway/internal/directory"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
	stationsdk "github.com/teragate/teragate/sdk/station"
)

// Mount registers the manager's routes through handle (net/http ServeMux patterns; name is the
// metrics label — the websocket route is named "websocket" so that it gets the raw writer):
//
//	GET   /wss/station                   the station protocol
//	GET   /api/stations                  admin: every station (StationsView)
//	GET   /api/stations/{uuid}           admin: one station (StationView)
//	PUT   /api/stations/{uuid}/roles     admin: replace its role config, pushed live
//	PATCH /api/stations/{uuid}/roles     admin: merge into it (null removes a role or a uuid)
//	GET   /api/stations/roles/{hash}     a role plugin by sha256 hex (stations and admins)
//	POST  /api/stations/jobs             admin: offer a job to the stations running a role
func (m *Manager) Mount(handle func(pattern, name string, h http.HandlerFunc)) {
	handle("GET /wss/station", "websocket", m.ServeStation)
	handle("GET /api/stations", "stations", m.admin(m.handleList))
	handle("GET /api/stations/{uuid}", "stations", m.admin(m.handleOne))
	handle("PUT /api/stations/{uuid}/roles", "stations", m.admin(m.handleEdit(false)))
	handle("PATCH /api/stations/{uuid}/roles", "stations", m.admin(m.handleEdit(true)))
	handle("GET /api/stations/roles/{hash}", "station_roles", m.handleRole)
	handle("POST /api/stations/jobs", "stations", m.admin(m.handleOffer))
}

// writeJSON answers code with v in JSON. v is encoded before anything is written: when it
// cannot be, the answer is a 500 naming the reason (logged), never a 200 with an empty body.
func (m *Manager) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		m.log.Error("encoding an answer", "status", code, "error", err)
		code = http.StatusInternalServerError
		b, _ = json.Marshal("Could not encode the answer: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// maxBody bounds the body of PUT, PATCH and POST requests.
const maxBody = 1 << 20

// readBody reads r's body up to maxBody bytes; on failure it answers 413 (too large) or 400 and
// returns false.
func (m *Manager) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		m.writeJSON(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Body too large: the limit is %d bytes.", maxBody))
		return nil, false
	case err != nil:
		m.writeJSON(w, http.StatusBadRequest, "Could not read the body.")
		return nil, false
	}
	return body, true
}

// admin wraps h: only a superadmin user or an admin service may call it.
func (m *Manager) admin(h http.HandlerFunc) http.HandlerFunc {
	return api.AdminOnly(m.cfg.Authenticate, h)
}

// StationsView is the body of GET /api/stations.
type StationsView struct {
	// Stations are the stations that connected since the manager started or have a stored
	// config (or an admin edit), sorted by uuid.
	Stations []StationView `json:"stations"`
	// Roles are the role plugins loaded from the roles directory (current versions).
	Roles []RoleVersion `json:"roles"`
	// Rejected maps a role to why its last file was refused (the previous version stays).
	Rejected map[string]string `json:"rejected"`
}

// StationView is one station in the admin API.
type StationView struct {
	UUID string `json:"uuid"`
	// Name is the device's name in the directory.
	Name string `json:"name"`
	// Online is true while the station holds a /wss/station connection (in a cluster: to a
	// node whose heartbeat is alive).
	Online bool `json:"online"`
	// Node is the cluster node holding the connection (cluster mode, while online).
	Node string `json:"node,omitempty"`
	// ConnectedAt is when the current connection opened (absent when offline).
	ConnectedAt *time.Time `json:"connected_at,omitempty"`
	// Registrations counts the registers since the manager started (a reconnect adds one); in
	// a cluster, since Redis first stored the station, on any node.
	Registrations int    `json:"registrations"`
	Hostname      string `json:"hostname"`
	MAC           string `json:"mac"`
	IP            string `json:"ip"`
	// BlockedRoles are the roles the station's own config refuses.
	BlockedRoles []string `json:"blocked_roles"`
	// Roles is the stored role config: role → uuid → {timestamp, script, options}.
	Roles Roles `json:"roles"`
	// Running are the role instances the station reported running, with their plugin hashes.
	Running []RunningView `json:"running"`
	// Status is the station device's status as set in presence (null when none).
	Status json.RawMessage `json:"status"`
	// LastResult is the station's answer to the last push (null before any).
	LastResult *ResultView `json:"last_result"`
	// Jobs are the last programs the station's roles ran (at most 20).
	Jobs []JobView `json:"jobs"`
}

// RunningView is a role instance running on a station.
type RunningView struct {
	Role   string `json:"role"`
	UUID   string `json:"uuid"`
	Script string `json:"script"`
	State  string `json:"state"`
}

// ResultView is a station's answer to a push.
type ResultView struct {
	// Code is OK, ROLE_BLOCKED, MISSING_ROLE_FACTORY or INVALID_CONFIGURATION.
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Roles   []string `json:"roles"`
}

// JobView is a program a role ran (Completed or Failed{exit_code, signal}).
type JobView struct {
	Role      string `json:"role"`
	UUID      string `json:"uuid"`
	Job       string `json:"job"`
	Program   string `json:"program"`
	Completed bool   `json:"completed"`
	ExitCode  int32  `json:"exit_code"`
	Signal    int32  `json:"signal"`
	Error     string `json:"error,omitempty"`
}

func resultView(r *stationv1.ConfigResult) *ResultView {
	if r == nil {
		return nil
	}
	return &ResultView{Code: r.Code.String(), Message: r.Message, Roles: nonNil(r.Roles)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// view returns the admin view of a station.
func (m *Manager) view(snap *directory.Snapshot, st *station) StationView {
	st.mu.Lock()
	defer st.mu.Unlock()
	v := StationView{UUID: st.uuid, Online: st.conn != nil, Registrations: st.registrations,
		Hostname: st.rec.Hostname, MAC: st.rec.MAC, IP: st.rec.IP, BlockedRoles: nonNil(slices.Clone(st.rec.BlockedRoles)),
		Roles: st.rec.Roles.Clone(), Running: []RunningView{}, Status: json.RawMessage("null"),
		LastResult: resultView(st.lastResult), Jobs: []JobView{}}
	if v.Roles == nil {
		v.Roles = Roles{}
	}
	if d, ok := snap.Device(st.uuid); ok {
		v.Name = d.Name
	}
	if st.conn != nil {
		if m.cl != nil {
			v.Node = m.cl.cfg.NodeID
		}
		t := st.connectedAt
		v.ConnectedAt = &t
		if len(st.statuses) > 0 {
			v.Status = json.RawMessage(st.statusJSON())
		}
	}
	for _, r := range st.running {
		v.Running = append(v.Running, RunningView{Role: r.Role, UUID: r.Uuid, Script: r.Script, State: r.State})
	}
	for _, j := range st.jobs {
		v.Jobs = append(v.Jobs, JobView{Role: j.Role, UUID: j.Uuid, Job: j.Job, Program: j.Program,
			Completed: j.Completed, ExitCode: j.ExitCode, Signal: j.Signal, Error: j.Error})
	}
	return v
}

// Stations returns the admin view of every station (in a cluster, of every node's stations:
// the error is Redis's).
func (m *Manager) Stations(ctx context.Context) (StationsView, error) {
	if m.cl != nil {
		sts, err := m.clusterStations(ctx)
		if err != nil {
			return StationsView{}, err
		}
		out := StationsView{Stations: sts}
		out.Roles, out.Rejected = m.lib.list()
		return out, nil
	}
	snap := m.cfg.Directory.Current()
	m.mu.Lock()
	sts := make([]*station, 0, len(m.stations))
	for _, st := range m.stations {
		sts = append(sts, st)
	}
	m.mu.Unlock()
	slices.SortFunc(sts, func(a, b *station) int { return strings.Compare(a.uuid, b.uuid) })
	out := StationsView{Stations: make([]StationView, 0, len(sts))}
	for _, st := range sts {
		out.Stations = append(out.Stations, m.view(snap, st))
	}
	out.Roles, out.Rejected = m.lib.list()
	return out, nil
}

// unavailable is the answer when the cluster's Redis fails.
const unavailable = "The stations' store (Redis) is unavailable: "

func (m *Manager) handleList(w http.ResponseWriter, r *http.Request) {
	v, err := m.Stations(r.Context())
	if err != nil {
		m.writeJSON(w, http.StatusServiceUnavailable, unavailable+err.Error())
		return
	}
	m.writeJSON(w, http.StatusOK, v)
}

// known returns the station of uuid when it is a station device or has a stored config.
func (m *Manager) known(ctx context.Context, uuid string) (*station, bool, error) {
	if m.isStation(uuid) {
		return m.get(uuid), true, nil
	}
	m.mu.Lock()
	st := m.stations[uuid]
	m.mu.Unlock()
	if st != nil || m.cl == nil {
		return st, st != nil, nil
	}
	ok, err := m.cl.exists(ctx, uuid)
	if err != nil || !ok {
		return nil, false, err
	}
	return m.get(uuid), true, nil
}

func (m *Manager) handleOne(w http.ResponseWriter, r *http.Request) {
	st, ok, err := m.known(r.Context(), r.PathValue("uuid"))
	if err != nil {
		m.writeJSON(w, http.StatusServiceUnavailable, unavailable+err.Error())
		return
	}
	if !ok {
		m.writeJSON(w, http.StatusNotFound, "Unknown station: "+r.PathValue("uuid"))
		return
	}
	v, err := m.stationView(r.Context(), st)
	if err != nil {
		m.writeJSON(w, http.StatusServiceUnavailable, unavailable+err.Error())
		return
	}
	m.writeJSON(w, http.StatusOK, v)
}

// EditInstance is one uuid's entry in a PUT or PATCH body: only the options are set by the
// admin; the manager fills timestamp and script.
type EditInstance struct {
	// Options is a JSON object (absent or null means {}).
	Options json.RawMessage `json:"options"`
}

// EditResult is the body answering PUT and PATCH.
type EditResult struct {
	// Pushed is true when the station was online and accepted the config; false when it was
	// stored for the station's next registration.
	Pushed bool `json:"pushed"`
	// Result is the station's answer (null when offline).
	Result *ResultView `json:"result"`
	// Station is the station after the edit.
	Station StationView `json:"station"`
}

// handleEdit serves PUT (replace) and PATCH (merge) of /api/stations/{uuid}/roles. The body is
// role → uuid → {"options": {...}}; in a PATCH, a null role removes the role and a null uuid the
// instance. Answers 200 when pushed and accepted, 202 when stored for an offline station, 409
// with the station's error when it refused (nothing changes), 504 when it did not answer, 400
// when the body or the resulting config is invalid (names, options, [Limits]), 413 when the
// body is over 1 MiB. In a cluster, the change of a station connected to another node is served
// by that node (its answer is this one), 503 when Redis fails.
func (m *Manager) handleEdit(patch bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := m.readBody(w, r)
		if !ok {
			return
		}
		code, v := m.edit(r.Context(), r.PathValue("uuid"), patch, body, true)
		m.writeJSON(w, code, v)
	}
}

// edit serves a PUT or PATCH of uuid's roles and returns the HTTP status and body. A node
// serving another node's request does not forward it again.
func (m *Manager) edit(ctx context.Context, uuid string, patch bool, body []byte, forward bool) (int, any) {
	st, ok, err := m.known(ctx, uuid)
	if err != nil {
		return http.StatusServiceUnavailable, unavailable + err.Error()
	}
	if !ok {
		return http.StatusNotFound, "Unknown station: " + uuid
	}
	edits, err := decodeEdit(body)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	var res *stationv1.ConfigResult
	for attempt := 0; ; attempt++ {
		node := ""
		if m.cl != nil && !m.connected(uuid) {
			if node, err = m.cl.holder(ctx, uuid); err != nil {
				return http.StatusServiceUnavailable, unavailable + err.Error()
			}
		}
		if node == "" {
			res, err = m.update(st, func(cur Roles) (Roles, error) { return applyEdit(cur, edits, patch), nil })
			var moved errMoved
			if !errors.As(err, &moved) {
				break
			}
			node = moved.node
		}
		switch {
		case attempt >= 3:
			return http.StatusServiceUnavailable, "The station keeps moving between nodes; try again."
		case node == m.cl.cfg.NodeID:
			continue // its connection to this node arrived meanwhile
		case !forward:
			return http.StatusServiceUnavailable, "The station moved to node " + node + "; try again."
		}
		return m.forwardEdit(ctx, node, uuid, patch, body)
	}
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNoAnswer):
			code = http.StatusGatewayTimeout
		case errors.Is(err, ErrBadConfig):
			code = http.StatusBadRequest
		case m.cl != nil:
			code = http.StatusServiceUnavailable // Redis failed, or the record kept changing
		}
		return code, err.Error()
	}
	out := EditResult{Pushed: res != nil && res.Code == stationv1.ErrorCode_OK, Result: resultView(res)}
	if out.Station, err = m.stationView(ctx, st); err != nil {
		return http.StatusServiceUnavailable, unavailable + err.Error()
	}
	code := http.StatusOK
	switch {
	case res == nil:
		code = http.StatusAccepted
	case res.Code != stationv1.ErrorCode_OK:
		code = http.StatusConflict
	}
	return code, out
}

// forwardEdit has node, which holds uuid's connection, serve the edit; its answer is returned
// as it is (504 when it does not answer).
func (m *Manager) forwardEdit(ctx context.Context, node, uuid string, patch bool, body []byte) (int, any) {
	raw := json.RawMessage(body)
	if !json.Valid(raw) {
		return http.StatusBadRequest, "the body is not JSON"
	}
	m.log.Debug("station edit served by the node holding its connection", "uuid", uuid, "node", node)
	a, err := m.cl.request(ctx, node, clusterMsg{Op: opEdit, UUID: uuid, Patch: patch, Body: raw}, m.cfg.PushTimeout+10*time.Second)
	if err != nil {
		return http.StatusGatewayTimeout, err.Error()
	}
	if a.Status < 100 || a.Status > 599 {
		return http.StatusBadGateway, fmt.Sprintf("node %s answered status %d", node, a.Status)
	}
	return a.Status, a.Body
}

// decodeEdit decodes and checks a PUT/PATCH body (role → uuid → instance, nulls kept as nil)
// with the checks a station's Register gets (role names, uuids, options).
func decodeEdit(body []byte) (map[string]map[string]*EditInstance, error) {
	var raw map[string]*map[string]*EditInstance
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errors.Join(ErrBadConfig, err)
	}
	out := map[string]map[string]*EditInstance{}
	for role, us := range raw {
		if err := checkRole(role); err != nil {
			return nil, err
		}
		if us == nil {
			out[role] = nil
			continue
		}
		m := map[string]*EditInstance{}
		for uuid, in := range *us {
			if err := checkUUID(role, uuid); err != nil {
				return nil, err
			}
			if in != nil {
				if err := checkOptions(role, uuid, in.Options); err != nil {
					return nil, err
				}
			}
			m[uuid] = in
		}
		out[role] = m
	}
	return out, nil
}

// applyEdit returns cur with edits applied (replacing everything unless patch).
func applyEdit(cur Roles, edits map[string]map[string]*EditInstance, patch bool) Roles {
	if !patch {
		cur = Roles{}
	}
	for role, us := range edits {
		if us == nil {
			delete(cur, role)
			continue
		}
		if cur[role] == nil {
			cur[role] = map[string]Instance{}
		}
		for uuid, in := range us {
			if in == nil {
				delete(cur[role], uuid)
				continue
			}
			opts := stationsdk.CompactJSON(in.Options)
			if string(opts) == "null" {
				opts = nil
			}
			cur[role][uuid] = Instance{Options: opts}
		}
		if len(cur[role]) == 0 {
			delete(cur, role)
		}
	}
	return cur
}

// handleRole serves a role plugin by its sha256 (hex) to a station device or an admin.
func (m *Manager) handleRole(w http.ResponseWriter, r *http.Request) {
	p, err := m.cfg.Authenticate(r)
	if err != nil {
		m.writeJSON(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if !p.Admin && !(p.Kind == directory.KindDevice && m.isStation(p.UUID)) {
		m.writeJSON(w, http.StatusForbidden, "Forbidden: stations and admins only")
		return
	}
	h := strings.TrimPrefix(r.PathValue("hash"), HashPrefix)
	data, ok := m.lib.byHex(strings.ToLower(h))
	if !ok {
		m.writeJSON(w, http.StatusNotFound, "Unknown role plugin: "+h)
		return
	}
	w.Header().Set("Content-Type", "application/wasm")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(data)
}

// roleStatus records a role instance's status and sets the station device's status in presence
// to the statuses of all its instances:
//
//	{"hostname": "enc-1", "roles": {"<uuid>": {"role": "encode", "status": <the role's JSON>}}}
//
// A status with a bad role or uuid, or larger than Limits.MaxStatusBytes, is an invalid frame
// (its reason and error are returned); one that would make the device's status larger than
// Limits.MaxDeviceStatusBytes is refused (counted, logged once until one is accepted again).
// Either way nothing is stored or fanned out.
func (m *Manager) roleStatus(st *station, s *stationv1.RoleStatus) (string, error) {
	if err := checkRole(s.Role); err != nil {
		return "status_invalid", err
	}
	if err := checkUUID(s.Role, s.Uuid); err != nil {
		return "status_invalid", err
	}
	if n := len(s.Status); n > m.cfg.Limits.MaxStatusBytes {
		return "status_too_large", fmt.Errorf("a status of %d bytes, the limit is %d", n, m.cfg.Limits.MaxStatusBytes)
	}
	raw := json.RawMessage(s.Status)
	if !json.Valid(raw) {
		b, _ := json.Marshal(s.Status)
		raw = b
	}
	st.mu.Lock()
	if st.conn == nil {
		st.mu.Unlock()
		return "", nil
	}
	prev, had := st.statuses[s.Uuid]
	st.statuses[s.Uuid] = roleStatus{Role: s.Role, Status: raw}
	text := st.statusJSON()
	if len(text) > m.cfg.Limits.MaxDeviceStatusBytes {
		if had {
			st.statuses[s.Uuid] = prev
		} else {
			delete(st.statuses, s.Uuid)
		}
		first := !st.statusRefused
		st.statusRefused = true
		st.mu.Unlock()
		m.met.refused.WithLabelValues("device_status_too_large").Inc()
		if first {
			m.log.Warn("station status refused: the device status would be too large", "uuid", st.uuid, "role", s.Role,
				"instance", s.Uuid, "bytes", len(text), "limit", m.cfg.Limits.MaxDeviceStatusBytes)
		}
		return "", nil
	}
	st.statusRefused = false
	st.statusSeq++
	st.statusTS = max(st.statusTS, s.Timestamp)
	ts := st.statusTS
	st.mu.Unlock()
	m.changed(st)
	if m.cfg.SetStatus == nil {
		return "", nil
	}
	if m.cfg.SetStatus(context.Background(), st.uuid, text, ts) {
		return "", nil
	}
	// Presence learns that the device is online through the bus, a moment after the socket
	// opened; retry briefly, from one goroutine per station that always sets the latest status.
	st.mu.Lock()
	busy := st.statusRetry
	st.statusRetry = true
	st.mu.Unlock()
	if busy {
		return "", nil
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { st.mu.Lock(); st.statusRetry = false; st.mu.Unlock() }()
		for range 40 {
			time.Sleep(50 * time.Millisecond)
			st.mu.Lock()
			online, text, ts, seq := st.conn != nil, st.statusJSON(), st.statusTS, st.statusSeq
			st.mu.Unlock()
			if !online {
				return // gone
			}
			if m.cfg.SetStatus(context.Background(), st.uuid, text, ts) {
				st.mu.Lock()
				latest := st.statusSeq == seq
				if latest {
					st.statusRetry = false
				}
				st.mu.Unlock()
				if latest {
					return
				}
			}
		}
	}()
	return "", nil
}

// statusJSON is the aggregate status text. st.mu is held.
func (st *station) statusJSON() string {
	b, _ := json.Marshal(struct {
		Hostname string                `json:"hostname"`
		Roles    map[string]roleStatus `json:"roles"`
	}{st.rec.Hostname, st.statuses})
	return string(b)
}
