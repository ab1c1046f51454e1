package stations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
	stationsdk "github.com/teragate/teragate/sdk/station"
)

// Errors of the manager.
var (
	// ErrNotStation: the device is unknown, disabled or not marked station: true.
	ErrNotStation = errors.New("stations: not a station device")
	// ErrOffline: the station has no open /wss/station connection.
	ErrOffline = errors.New("stations: station offline")
	// ErrNoAnswer: the station did not answer a push in time, or disconnected meanwhile.
	ErrNoAnswer = errors.New("stations: no answer from the station")
	// ErrBadConfig: an admin edit is not a valid role configuration.
	ErrBadConfig = errors.New("stations: invalid role configuration")
)

// Config configures a [Manager].
type Config struct {
	// StateDir holds one JSON file per station. Required.
	StateDir string
	// RolesDir is the watched directory of role plugins (<role>.wasm). Required.
	RolesDir string
	// Directory is the identity directory (stations are devices with station: true). Required.
	Directory *directory.Store
	// Tickets redeems the websocket tickets of device logins. Required.
	Tickets auth.Tickets
	// Authenticate resolves an HTTP request's token (admin API, role downloads). Required.
	Authenticate func(r *http.Request) (auth.Principal, error)
	// Bus, when set, carries OpenTera's server commands: CMD_CLIENT_DISCONNECT on
	// module.TeraServer.TwistedModule.events.<uuid> (a logout, a forced disconnect) closes that
	// station's connection with 4000, as it closes the entity's other websockets.
	Bus bus.Bus
	// Announce publishes the station device's CONNECTED (true) or DISCONNECTED event to
	// presence. Nil means none.
	Announce func(uuid string, connected bool)
	// SetStatus sets the station device's status in presence (status is JSON text, ts in ms);
	// it returns false when presence does not know the device online yet. Nil means none.
	SetStatus func(ctx context.Context, uuid, status string, tsMS int64) bool
	// PushTimeout bounds the wait for a station's answer to a push (it may fetch and compile
	// role plugins first). Zero value means 60s.
	PushTimeout time.Duration
	// PingInterval is how often the manager pings a station. Zero value means 10s.
	PingInterval time.Duration
	// PongTimeout closes a station silent for this long. Zero value means 30s.
	PongTimeout time.Duration
	// Debounce delays reloading a role file after its last change. Zero means fswatch.DefaultDebounce.
	Debounce time.Duration
	// Limits bound what a station may make the manager store, push and fan out (zero fields
	// take their defaults: see [Limits]).
	Limits Limits
	// Cluster, when set, keeps the stations' state in Redis instead of StateDir and routes the
	// admin API's changes and job offers to the node holding a station's connection, over Bus
	// (required then). Nil means a single node.
	Cluster *ClusterConfig
	// Registerer receives the manager's metrics (teragate_stations_*). Nil means none.
	Registerer prometheus.Registerer
	// Logger is the manager's logger. Nil means no logging.
	Logger hclog.Logger
}

// Manager is the conference manager: see the package documentation.
type Manager struct {
	cfg   Config
	log   hclog.Logger
	store store
	lib   *library
	up    websocket.Upgrader
	ready chan struct{}
	done  chan struct{} // closed when Run returns
	met   *metricsSet

	cl *cluster // nil on a single node

	mu       sync.Mutex
	stations map[string]*station // device uuid → station (cluster mode: those seen by this node)
	closing  bool                // Run is ending: no new goroutine (guarded by mu)
	wg       sync.WaitGroup
}

// station is the manager's state of one station device.
type station struct {
	uuid string
	op   sync.Mutex // serialises configuration changes (register, admin edits, role reloads)

	mu            sync.Mutex
	rec           *record
	conn          *sconn
	running       []*stationv1.RunningRole
	statuses      map[string]roleStatus // role uuid → latest status
	statusTS      int64
	registrations int
	statusSeq     uint64 // counts the statuses accepted
	statusRetry   bool   // a goroutine retries setting the status in presence
	statusRefused bool   // the last status was refused (logged once until one is accepted)
	connectedAt   time.Time
	lastResult    *stationv1.ConfigResult
	jobs          []*stationv1.JobResult
	flushing      bool // cluster mode: a goroutine is writing the station's view to Redis
	dirty         bool // … and must write it again
}

type roleStatus struct {
	Role   string          `json:"role"`
	Status json.RawMessage `json:"status"`
}

// New returns a manager and loads the stored station records. Call [Manager.Run] to watch the
// roles directory and [Manager.Mount] to serve it.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" || cfg.RolesDir == "" || cfg.Directory == nil || cfg.Tickets == nil || cfg.Authenticate == nil {
		return nil, errors.New("stations: StateDir, RolesDir, Directory, Tickets and Authenticate are required")
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = 60 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	cfg.Limits = cfg.Limits.withDefaults()
	m := &Manager{cfg: cfg, log: cfg.Logger, store: store{dir: cfg.StateDir}, stations: map[string]*station{}, ready: make(chan struct{}), done: make(chan struct{}),
		met: newMetrics(cfg.Registerer)}
	m.lib = newLibrary(cfg.RolesDir, cfg.Logger.Named("roles"), m.roleChanged)
	m.lib.counted = func(ok bool) {
		if ok {
			m.met.loads.WithLabelValues("loaded").Inc()
		} else {
			m.met.loads.WithLabelValues("rejected").Inc()
		}
	}
	m.up = websocket.Upgrader{HandshakeTimeout: 10 * time.Second, CheckOrigin: func(*http.Request) bool { return true }}
	recs, errs := m.store.loadAll()
	for _, err := range errs {
		m.log.Warn("station record not loaded", "error", err)
	}
	if cfg.Cluster != nil {
		cl, err := newCluster(*cfg.Cluster, cfg.Bus, m)
		if err != nil {
			return nil, err
		}
		m.cl = cl
		// The files of the data directory are the single-node store: a cluster keeps the
		// stations in Redis, and takes over the files' records it does not know yet.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := cl.importRecords(ctx, recs)
		if err != nil {
			return nil, fmt.Errorf("stations: importing station records into Redis: %w", err)
		}
		if n > 0 {
			m.log.Info("station records of the data directory imported into Redis", "records", n, "dir", cfg.StateDir)
		}
		return m, nil
	}
	for uuid, r := range recs {
		// A record written before the limits existed (or edited by hand) may hold what a
		// station or an admin may no longer set: it is not loaded, rather than pushed.
		if err := cfg.Limits.checkRoles(r.Roles); err != nil {
			m.log.Warn("station record not loaded", "uuid", uuid, "error", err)
			continue
		}
		if err := cfg.Limits.checkSize(r.Roles); err != nil {
			m.log.Warn("station record not loaded", "uuid", uuid, "error", err)
			continue
		}
		m.stations[uuid] = &station{uuid: uuid, rec: r, statuses: map[string]roleStatus{}}
	}
	return m, nil
}

// Run loads the roles directory and follows it until ctx is done; then it closes every station
// connection and waits for the manager's goroutines.
func (m *Manager) Run(ctx context.Context) error {
	defer close(m.done)
	var subs []bus.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe(context.Background())
		}
	}()
	if m.cfg.Bus != nil {
		sub, err := m.cfg.Bus.Subscribe(ctx, topic.PatternCommands, m.onCommand)
		if err != nil {
			return err
		}
		subs = append(subs, sub)
	}
	if m.cl != nil {
		cs, err := m.cl.start(ctx)
		if err != nil {
			return err
		}
		subs = append(subs, cs...)
	}
	err := m.lib.watchReady(ctx, m.cfg.Debounce, func() { close(m.ready) })
	m.mu.Lock()
	m.closing = true
	for _, st := range m.stations {
		st.mu.Lock()
		if st.conn != nil {
			st.conn.close(websocket.CloseGoingAway, "server shutdown")
		}
		st.mu.Unlock()
	}
	m.mu.Unlock()
	m.wg.Wait()
	return err
}

// goServe runs f on a goroutine of the manager, unless Run is ending (then it reports false).
func (m *Manager) goServe(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false
	}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); f() }()
	return true
}

// local returns the station of uuid and its connection to this node (nil when none).
func (m *Manager) local(uuid string) (*station, *sconn) {
	m.mu.Lock()
	st := m.stations[uuid]
	m.mu.Unlock()
	if st == nil {
		return nil, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st, st.conn
}

// connected reports whether uuid holds a connection to this node.
func (m *Manager) connected(uuid string) bool {
	_, c := m.local(uuid)
	return c != nil
}

// Done is closed when [Manager.Run] has returned: every station connection is closed and its
// disconnection recorded (the gateway waits for it before closing Redis).
func (m *Manager) Done() <-chan struct{} { return m.done }

// Ready is closed once the roles directory has been loaded.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// now is the manager's clock in ms.
func now() int64 { return time.Now().UnixMilli() }

// get returns the station of uuid, creating it.
func (m *Manager) get(uuid string) *station {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stations[uuid]
	if st == nil {
		st = &station{uuid: uuid, rec: &record{UUID: uuid, Roles: Roles{}}, statuses: map[string]roleStatus{}}
		m.stations[uuid] = st
	}
	return st
}

// isStation reports whether uuid is an enabled station device of the directory.
func (m *Manager) isStation(uuid string) bool {
	snap := m.cfg.Directory.Current()
	d, ok := snap.Device(uuid)
	return ok && d.Station && snap.Enabled(directory.KindDevice, uuid)
}

// sconn is one open /wss/station connection.
type sconn struct {
	id      string // random: tells this connection from the station's next ones (cluster mode)
	ws      *websocket.Conn
	wmu     sync.Mutex
	ids     atomic.Uint64
	pmu     sync.Mutex
	pending map[uint64]chan *stationv1.StationMessage // requests (pushes, offers) awaiting their answer
	done    chan struct{}
	once    sync.Once
	// registering is set while a Register of this connection is being served: one at a time.
	registering atomic.Bool
}

func (c *sconn) send(msg *stationv1.ManagerMessage) error {
	b, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

func (c *sconn) close(code int, reason string) {
	c.once.Do(func() {
		close(c.done)
		c.wmu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = c.ws.Close()
	})
}

// ServeStation serves GET /wss/station?id=<ticket>: a device ticket of a station device.
func (m *Manager) ServeStation(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		m.writeJSON(w, http.StatusUpgradeRequired, "Upgrade Required")
		return
	}
	uuid, err := m.cfg.Tickets.Redeem(r.Context(), r.URL.Query().Get("id"), directory.KindDevice)
	if err != nil {
		m.writeJSON(w, http.StatusForbidden, "Websocket authentication failed (key, uuid).")
		return
	}
	if !m.isStation(uuid) {
		m.writeJSON(w, http.StatusForbidden, "Not a station: the device must be marked station: true.")
		return
	}
	ws, err := m.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(m.cfg.Limits.readLimit())
	c := &sconn{id: newConnID(), ws: ws, pending: map[uint64]chan *stationv1.StationMessage{}, done: make(chan struct{})}
	st := m.get(uuid)
	if m.cl != nil && !m.claim(r.Context(), st, c) {
		return
	}
	st.mu.Lock()
	old := st.conn
	st.conn, st.connectedAt = c, time.Now().UTC()
	st.mu.Unlock()
	m.changed(st)
	if old != nil {
		old.close(websocket.ClosePolicyViolation, "replaced by a new connection of the same station")
	}
	if old == nil {
		m.met.online.Inc()
	}
	m.log.Info("station connected", "uuid", uuid, "remote", r.RemoteAddr)
	if m.cfg.Announce != nil && old == nil {
		m.cfg.Announce(uuid, true)
	}
	m.wg.Add(2)
	go func() { defer m.wg.Done(); m.pinger(uuid, c) }()
	go func() { defer m.wg.Done(); m.readLoop(st, c) }()
}

// CloseDisconnect is the close code of a station disconnected by CMD_CLIENT_DISCONNECT, a logout
// or the removal of its device (OpenTera's 4000: do not reconnect with the same credentials).
const CloseDisconnect = 4000

// onCommand closes a station's connection on CMD_CLIENT_DISCONNECT for its uuid.
func (m *Manager) onCommand(msg bus.Message) {
	uuid := topic.CommandTarget(msg.Channel)
	var mm opentera.TeraModuleMessage
	if proto.Unmarshal(msg.Payload, &mm) != nil {
		return
	}
	for _, a := range mm.GetData() {
		var cmd opentera.ServerCommand
		if a.MessageIs(&cmd) && a.UnmarshalTo(&cmd) == nil && cmd.GetType() == opentera.ServerCommand_CMD_CLIENT_DISCONNECT {
			m.mu.Lock()
			st := m.stations[uuid]
			m.mu.Unlock()
			if st == nil {
				return
			}
			st.mu.Lock()
			c := st.conn
			st.mu.Unlock()
			if c != nil {
				m.log.Info("station disconnected by command", "uuid", uuid)
				c.close(CloseDisconnect, "CMD_CLIENT_DISCONNECT")
			}
			return
		}
	}
}

// pinger pings the station and closes it when its device is no longer an enabled station of the
// directory (removed, disabled or unmarked by a reload).
func (m *Manager) pinger(uuid string, c *sconn) {
	t := time.NewTicker(m.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if !m.isStation(uuid) {
				m.log.Info("station device removed or disabled; closing", "uuid", uuid)
				c.close(CloseDisconnect, "device removed or disabled")
				return
			}
			c.wmu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
			c.wmu.Unlock()
			if err != nil {
				c.close(websocket.CloseGoingAway, "ping failed")
				return
			}
		}
	}
}

// CloseInvalidFrames is the close reason of a station closed for sending too many invalid
// frames (with code 1008, policy violation).
const CloseInvalidFrames = "too many invalid frames"

func (m *Manager) readLoop(st *station, c *sconn) {
	extend := func() { _ = c.ws.SetReadDeadline(time.Now().Add(m.cfg.PongTimeout)) }
	extend()
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
	invalid := 0
	for {
		mt, b, err := c.ws.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			m.met.invalid.WithLabelValues("too_large").Inc()
			m.log.Warn("station sent a frame over the read limit; closed (1009)", "uuid", st.uuid, "limit", m.cfg.Limits.readLimit())
		}
		if err != nil {
			break
		}
		extend()
		var reason string
		if mt != websocket.BinaryMessage {
			reason, err = "text", errors.New("a text frame (the protocol is binary protobuf)")
		} else {
			var msg stationv1.StationMessage
			if err = proto.Unmarshal(b, &msg); err != nil {
				reason = "undecodable"
			} else {
				reason, err = m.handle(st, c, &msg)
			}
		}
		if reason == "" {
			continue
		}
		invalid++
		m.met.invalid.WithLabelValues(reason).Inc()
		m.log.Warn("station sent an invalid frame", "uuid", st.uuid, "reason", reason, "error", err,
			"count", invalid, "limit", m.cfg.Limits.MaxInvalidFrames)
		if invalid >= m.cfg.Limits.MaxInvalidFrames {
			m.met.closedInvalid.Inc()
			m.log.Warn("closing a station that keeps sending invalid frames", "uuid", st.uuid, "count", invalid)
			c.close(websocket.ClosePolicyViolation, CloseInvalidFrames)
			break
		}
	}
	c.close(websocket.CloseNormalClosure, "")
	c.pmu.Lock()
	c.pending = nil
	c.pmu.Unlock()
	st.mu.Lock()
	last := st.conn == c
	if last {
		st.conn = nil
		st.running = nil
		clear(st.statuses)
	}
	st.mu.Unlock()
	if last {
		m.met.online.Dec()
		if m.cl != nil {
			m.release(st, c)
		}
	}
	m.log.Info("station disconnected", "uuid", st.uuid)
	if last && m.cfg.Announce != nil {
		m.cfg.Announce(st.uuid, false)
	}
}

// handle dispatches one frame from a station (on its read goroutine: nothing here may wait for
// another frame). It returns a reason (a metric label) and an error when the frame is invalid.
func (m *Manager) handle(st *station, c *sconn, msg *stationv1.StationMessage) (string, error) {
	switch b := msg.Body.(type) {
	case *stationv1.StationMessage_Register:
		if err := m.cfg.Limits.checkRegister(b.Register); err != nil {
			m.replyRegister(st, c, msg.Id, configResult(err))
			return "register_invalid", err
		}
		if !c.registering.CompareAndSwap(false, true) {
			err := errors.New("a registration is already in progress on this connection")
			m.replyRegister(st, c, msg.Id, configResult(err))
			return "register_in_flight", err
		}
		m.met.registering.Inc()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer func() { c.registering.Store(false); m.met.registering.Dec() }()
			m.register(st, c, msg.Id, b.Register)
		}()
	case *stationv1.StationMessage_ConfigResult, *stationv1.StationMessage_JobReply:
		var reason string
		var err error
		if r := msg.GetConfigResult(); r != nil {
			// An answer with invalid running instances still answers its push (which would
			// otherwise wait for its timeout), without them.
			if err = m.checkRunning(r.Running); err != nil {
				reason, r.Running = "running_invalid", nil
			}
			r.Message = cut(r.Message)
			for i, role := range r.Roles {
				r.Roles[i] = cut(role)
			}
		}
		c.pmu.Lock()
		ch := c.pending[msg.Id]
		delete(c.pending, msg.Id)
		c.pmu.Unlock()
		if ch != nil {
			ch <- msg
			return reason, err
		}
		// A late answer (the push timed out, e.g. on a slow first compile): the station runs
		// what it says; keep the admin view true (the config is not stored: it was not
		// confirmed in time).
		if r := msg.GetConfigResult(); r != nil && r.Code == stationv1.ErrorCode_OK {
			st.mu.Lock()
			if st.conn == c {
				st.running = r.Running
				st.pruneStatuses()
			}
			st.mu.Unlock()
			m.changed(st)
		}
		return reason, err
	case *stationv1.StationMessage_Status:
		return m.roleStatus(st, b.Status)
	case *stationv1.StationMessage_Running:
		if err := m.checkRunning(b.Running.GetRoles()); err != nil {
			return "running_invalid", err
		}
		st.mu.Lock()
		if st.conn == c {
			st.running = b.Running.GetRoles()
			st.pruneStatuses()
		}
		st.mu.Unlock()
		m.changed(st)
	case *stationv1.StationMessage_Job:
		j := b.Job
		j.Role, j.Uuid, j.Job, j.Program, j.Error = cut(j.Role), cut(j.Uuid), cut(j.Job), cut(j.Program), cut(j.Error)
		m.log.Info("station job ended", "uuid", st.uuid, "role", j.Role, "instance", j.Uuid, "job", j.Job,
			"program", j.Program, "completed", j.Completed, "exit_code", j.ExitCode, "signal", j.Signal, "error", j.Error)
		st.mu.Lock()
		st.jobs = append(st.jobs, j)
		if len(st.jobs) > 20 {
			st.jobs = slices.Delete(st.jobs, 0, len(st.jobs)-20)
		}
		st.mu.Unlock()
		m.changed(st)
	default:
		return "empty", errors.New("a frame without a known body")
	}
	return "", nil
}

// checkRunning checks the running instances a station reports: at most the instances its
// config may hold, with valid names.
func (m *Manager) checkRunning(rs []*stationv1.RunningRole) error {
	if n, limit := len(rs), m.cfg.Limits.MaxRoles*m.cfg.Limits.MaxInstancesPerRole; n > limit {
		return fmt.Errorf("%d running instances, the limit is %d", n, limit)
	}
	for _, r := range rs {
		if err := checkRole(r.GetRole()); err != nil {
			return err
		}
		if err := checkUUID(r.GetRole(), r.GetUuid()); err != nil {
			return err
		}
		r.Script, r.State = cut(r.Script), cut(r.State)
	}
	return nil
}

// replyRegister answers a Register.
func (m *Manager) replyRegister(st *station, c *sconn, id uint64, res *stationv1.ConfigResult) {
	if err := c.send(&stationv1.ManagerMessage{Id: id, Body: &stationv1.ManagerMessage_RegisterReply{
		RegisterReply: &stationv1.RegisterReply{Result: res}}}); err != nil {
		m.log.Debug("register reply not sent", "uuid", st.uuid, "error", err)
	}
}

// pruneStatuses drops the statuses of instances no longer running. st.mu is held.
func (st *station) pruneStatuses() {
	for uuid := range st.statuses {
		if !slices.ContainsFunc(st.running, func(r *stationv1.RunningRole) bool { return r.Uuid == uuid }) {
			delete(st.statuses, uuid)
		}
	}
}

// register runs the handshake: merge, stamp, push, persist, then answer the Register (whose
// names, options and size were checked).
func (m *Manager) register(st *station, c *sconn, id uint64, reg *stationv1.Register) {
	st.op.Lock()
	defer st.op.Unlock()
	if m.cl != nil {
		// The stored config as Redis has it now (the claim read it when the socket opened).
		rec, err := m.cl.record(context.Background(), st.uuid)
		if err != nil {
			m.log.Error("reading a station's record from Redis", "uuid", st.uuid, "error", err)
			m.replyRegister(st, c, id, &stationv1.ConfigResult{Code: stationv1.ErrorCode_INVALID_CONFIGURATION,
				Message: "the manager could not read the stored configuration; try again"})
			return
		}
		if rec != nil {
			st.mu.Lock()
			st.rec.Roles = rec.Roles
			st.mu.Unlock()
		}
	}
	st.mu.Lock()
	if st.conn != c {
		st.mu.Unlock()
		return
	}
	stored := st.rec.Roles.Clone()
	st.mu.Unlock()

	merged := Merge(stored, stationsdk.RolesFromProto(reg.Roles))
	m.fillScripts(merged)
	stamp(merged, now())
	if err := m.cfg.Limits.checkSize(merged); err != nil {
		// The stored config and the reported one are each within the limits, their union is
		// not: nothing changes.
		m.met.refused.WithLabelValues("config_too_large").Inc()
		m.log.Warn("station register refused", "uuid", st.uuid, "error", err)
		m.replyRegister(st, c, id, configResult(err))
		return
	}
	regs := 0
	if m.cl != nil {
		n, err := m.cl.countRegister(context.Background(), st.uuid)
		if err != nil {
			m.log.Warn("counting a station's register in Redis", "uuid", st.uuid, "error", err)
		}
		regs = n
	}
	st.mu.Lock()
	st.registrations++
	if m.cl != nil {
		st.registrations = regs
	}
	st.rec.Hostname, st.rec.MAC, st.rec.IP = reg.Hostname, reg.Mac, reg.Ip
	st.rec.BlockedRoles = slices.Clone(reg.BlockedRoles)
	st.mu.Unlock()
	res, err := m.push(st, c, merged)
	if err != nil {
		m.log.Warn("station register: push failed", "uuid", st.uuid, "error", err)
		res = &stationv1.ConfigResult{Code: stationv1.ErrorCode_INVALID_CONFIGURATION, Message: err.Error()}
	}
	m.log.Info("station registered", "uuid", st.uuid, "hostname", reg.Hostname, "mac", reg.Mac,
		"roles", merged.Names(), "result", res.Code.String(), "message", res.Message)
	m.replyRegister(st, c, id, res)
}

// fillScripts sets every entry's script to the current hash of its role's plugin ("" when the
// manager has none: the station answers MISSING_ROLE_FACTORY).
func (m *Manager) fillScripts(r Roles) {
	for role, us := range r {
		s := m.lib.script(role)
		for uuid, in := range us {
			in.Script = s
			us[uuid] = in
		}
	}
}

// push sends roles to the station on c and waits for its answer; on success the config is the
// station's new stored config (persisted). st.op is held.
func (m *Manager) push(st *station, c *sconn, roles Roles) (*stationv1.ConfigResult, error) {
	answer, err := c.request(&stationv1.ManagerMessage{Body: &stationv1.ManagerMessage_UpdateConfiguration{
		UpdateConfiguration: &stationv1.UpdateConfiguration{Roles: roles.ToProto()}}}, m.cfg.PushTimeout)
	if err != nil {
		m.met.pushes.WithLabelValues("no_answer").Inc()
		return nil, err
	}
	res := answer.GetConfigResult()
	if res == nil {
		res = &stationv1.ConfigResult{}
	}
	m.met.pushes.WithLabelValues(res.Code.String()).Inc()
	st.mu.Lock()
	st.lastResult = res
	var rec record
	ok := res.Code == stationv1.ErrorCode_OK
	if ok {
		st.rec.Roles = roles.Clone()
		if st.conn == c {
			st.running = res.Running
			st.pruneStatuses()
		}
		rec = *st.rec
		rec.Roles = st.rec.Roles.Clone()
	}
	st.mu.Unlock()
	m.changed(st)
	if ok {
		if err := m.persist(c, &rec); err != nil {
			m.log.Error("persisting station config", "uuid", st.uuid, "error", err)
		}
	} else {
		m.log.Warn("station refused its configuration", "uuid", st.uuid, "code", res.Code.String(), "message", res.Message, "roles", res.Roles)
	}
	return res, nil
}

// request sends msg with a new id and waits up to timeout for the station's answer.
func (c *sconn) request(msg *stationv1.ManagerMessage, timeout time.Duration) (*stationv1.StationMessage, error) {
	id := c.ids.Add(1)
	msg.Id = id
	ch := make(chan *stationv1.StationMessage, 1)
	c.pmu.Lock()
	if c.pending == nil {
		c.pmu.Unlock()
		return nil, fmt.Errorf("%w: disconnected", ErrNoAnswer)
	}
	c.pending[id] = ch
	c.pmu.Unlock()
	defer func() { c.pmu.Lock(); delete(c.pending, id); c.pmu.Unlock() }()
	if err := c.send(msg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res := <-ch:
		return res, nil
	case <-c.done:
		return nil, fmt.Errorf("%w: disconnected", ErrNoAnswer)
	case <-t.C:
		return nil, fmt.Errorf("%w: no answer within %s", ErrNoAnswer, timeout)
	}
}

// roleChanged pushes a role's new plugin to every online station running that role.
func (m *Manager) roleChanged(role, script string) {
	m.mu.Lock()
	var targets []*station
	for _, st := range m.stations {
		st.mu.Lock()
		if st.conn != nil && len(st.rec.Roles[role]) > 0 {
			targets = append(targets, st)
		}
		st.mu.Unlock()
	}
	m.mu.Unlock()
	for _, st := range targets {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_, err := m.update(st, func(r Roles) (Roles, error) { return r, nil })
			if err != nil {
				m.log.Warn("pushing a reloaded role", "uuid", st.uuid, "role", role, "error", err)
				return
			}
			m.log.Info("reloaded role pushed", "uuid", st.uuid, "role", role, "script", script)
			m.met.reloads.Inc()
		}()
	}
}

// update applies edit to a station's stored config, fills the scripts, stamps the entries and
// pushes it when the station is online (then stores it only if the station accepts it), or
// stores it for the next registration. It returns the station's answer (nil when offline).
func (m *Manager) update(st *station, edit func(Roles) (Roles, error)) (*stationv1.ConfigResult, error) {
	st.op.Lock()
	defer st.op.Unlock()
	st.mu.Lock()
	cur, c := st.rec.Roles.Clone(), st.conn
	st.mu.Unlock()
	if cur == nil {
		cur = Roles{}
	}
	prepare := func(cur Roles) (Roles, error) {
		next, err := edit(cur)
		if err != nil {
			return nil, err
		}
		m.fillScripts(next)
		stamp(next, now())
		if err := m.cfg.Limits.checkSize(next); err != nil {
			m.met.refused.WithLabelValues("config_too_large").Inc()
			return nil, err
		}
		return next, nil
	}
	if c == nil && m.cl != nil {
		// Offline here: the record in Redis is edited in one transaction, unless a node holds
		// the station's connection meanwhile (errMoved: that node serves the change).
		rec, err := m.cl.editOffline(context.Background(), st.uuid, prepare)
		if err != nil {
			return nil, err
		}
		st.mu.Lock()
		st.rec = rec
		st.mu.Unlock()
		return nil, nil
	}
	next, err := prepare(cur)
	if err != nil {
		return nil, err
	}
	if c == nil {
		st.mu.Lock()
		st.rec.Roles = next.Clone()
		rec := *st.rec
		st.mu.Unlock()
		return nil, m.store.save(&rec)
	}
	return m.push(st, c, next)
}

// RolesDir returns the watched directory of role plugins.
func (m *Manager) RolesDir() string { return m.cfg.RolesDir }
