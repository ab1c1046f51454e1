package stations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// ClusterConfig puts the manager in cluster mode: the stations' state is kept in Redis and the
// admin API of any node reaches every station (see "Cluster" in the package documentation).
type ClusterConfig struct {
	// Client is the shared Redis. Required; not closed by the manager.
	Client *redis.Client
	// NodeID is this node's id in the cluster (the presence registry's). Required.
	NodeID string
	// Alive reports whether a node's heartbeat is alive (the presence registry's dead-node
	// detection): the stations of a dead node are shown offline and edited as offline. Required.
	Alive func(ctx context.Context, node string) (bool, error)
}

// Redis keys and bus channels of the cluster mode.
const (
	redisIDs           = "teragate:stations:ids"      // set of the uuids of every station stored
	redisStationPrefix = "teragate:stations:station:" // + uuid: hash of one station (fields below)
	topicNodePrefix    = "teragate.stations.node."    // + node id: requests to the node
	topicAnswerPrefix  = "teragate.stations.answer."  // + node id: answers to the node's requests

	// Fields of a station's hash.
	fieldRecord = "record"        // the persisted record (JSON): config, hostname, mac, ip, blocked roles
	fieldNode   = "node"          // the node holding its connection ("" or absent: none)
	fieldConn   = "conn"          // the id of that connection
	fieldLive   = "live"          // the holder's admin view (JSON StationView): running, status, last result, jobs
	fieldRegs   = "registrations" // registers, counted by every node
)

// Operations a node asks of the node holding a station's connection.
const (
	opEdit  = "edit"  // PUT or PATCH of the station's roles: answered as the HTTP answer
	opOffer = "offer" // a job offer to the station: answered with offerAnswer
	opClose = "close" // close the station's connection Conn: it reconnected elsewhere (no answer)
)

// errMoved: the station's connection is held by node, which must serve the change.
type errMoved struct{ node string }

func (e errMoved) Error() string { return "stations: the station is connected to node " + e.node }

// clusterMsg is a request between nodes (Op set) or its answer (Op empty), JSON on the bus.
type clusterMsg struct {
	ID     uint64          `json:"id"`
	From   string          `json:"from"`
	Op     string          `json:"op,omitempty"`
	UUID   string          `json:"uuid,omitempty"`
	Conn   string          `json:"conn,omitempty"`
	Patch  bool            `json:"patch,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	Status int             `json:"status,omitempty"`
}

// offerAnswer answers opOffer.
type offerAnswer struct {
	Accepted bool   `json:"accepted"`
	Instance string `json:"instance"`
}

// cluster is the manager's Redis side in cluster mode.
type cluster struct {
	cfg ClusterConfig
	bus bus.Bus
	m   *Manager

	ids     atomic.Uint64
	pmu     sync.Mutex
	pending map[uint64]chan clusterMsg
}

func newCluster(cfg ClusterConfig, b bus.Bus, m *Manager) (*cluster, error) {
	if cfg.Client == nil || cfg.NodeID == "" || cfg.Alive == nil || b == nil {
		return nil, errors.New("stations: cluster mode needs a Redis client, a node id, a liveness check and the bus")
	}
	return &cluster{cfg: cfg, bus: b, m: m, pending: map[uint64]chan clusterMsg{}}, nil
}

func stationKey(uuid string) string { return redisStationPrefix + uuid }

// newConnID returns a random id for a station connection.
func newConnID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// importRecords copies the station files of the data directory into Redis, for the stations
// Redis does not know yet (moving a single node to a cluster keeps its configs).
func (cl *cluster) importRecords(ctx context.Context, recs map[string]*record) (int, error) {
	n := 0
	for uuid, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return n, err
		}
		set, err := cl.cfg.Client.HSetNX(ctx, stationKey(uuid), fieldRecord, b).Result()
		if err != nil {
			return n, err
		}
		if err := cl.cfg.Client.SAdd(ctx, redisIDs, uuid).Err(); err != nil {
			return n, err
		}
		if set {
			n++
		}
	}
	return n, nil
}

// claimScript records that node ARGV[1] holds the station's connection ARGV[2] and returns the
// previous holder, its connection and the stored record.
var claimScript = redis.NewScript(`
local prev = redis.call('HMGET', KEYS[1], 'node', 'conn', 'record')
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'conn', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return {prev[1] or '', prev[2] or '', prev[3] or ''}`)

// claim makes this node the holder of uuid's connection conn; it returns the stored record
// (nil when none) and the previous holder and connection.
func (cl *cluster) claim(ctx context.Context, uuid, conn string) (rec *record, prevNode, prevConn string, err error) {
	vals, err := claimScript.Run(ctx, cl.cfg.Client, []string{stationKey(uuid), redisIDs}, cl.cfg.NodeID, conn, uuid).StringSlice()
	if err != nil {
		return nil, "", "", err
	}
	if len(vals) != 3 {
		return nil, "", "", fmt.Errorf("stations: claim answered %d values", len(vals))
	}
	rec, err = decodeRecord(uuid, vals[2])
	return rec, vals[0], vals[1], err
}

// decodeRecord decodes a stored record; "" is no record (nil).
func decodeRecord(uuid, s string) (*record, error) {
	if s == "" {
		return nil, nil
	}
	var r record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("stations: record of %s in Redis: %w", uuid, err)
	}
	r.UUID = uuid
	if r.Roles == nil {
		r.Roles = Roles{}
	}
	return &r, nil
}

// heldScript sets the fields ARGV[2…] (name, value pairs) of the station's hash if the
// connection ARGV[1] still holds it.
var heldScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'conn') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1`)

// setHeld sets fields of uuid's hash while connection conn holds it; it reports whether it did.
func (cl *cluster) setHeld(ctx context.Context, uuid, conn string, fields ...any) (bool, error) {
	n, err := heldScript.Run(ctx, cl.cfg.Client, []string{stationKey(uuid)}, append([]any{conn}, fields...)...).Int()
	return n == 1, err
}

// releaseScript clears the holder if it is still the connection ARGV[1] and stores its last
// view ARGV[2].
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'conn') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'node', 'conn')
redis.call('HSET', KEYS[1], 'live', ARGV[2])
return 1`)

// release records that connection conn of uuid closed (unless another connection took over).
func (cl *cluster) release(ctx context.Context, uuid, conn string, live []byte) error {
	return releaseScript.Run(ctx, cl.cfg.Client, []string{stationKey(uuid)}, conn, live).Err()
}

// countRegister counts a register of uuid and returns the count.
func (cl *cluster) countRegister(ctx context.Context, uuid string) (int, error) {
	n, err := cl.cfg.Client.HIncrBy(ctx, stationKey(uuid), fieldRegs, 1).Result()
	return int(n), err
}

// record returns uuid's stored record (nil when none).
func (cl *cluster) record(ctx context.Context, uuid string) (*record, error) {
	s, err := cl.cfg.Client.HGet(ctx, stationKey(uuid), fieldRecord).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord(uuid, s)
}

// exists reports whether Redis holds uuid.
func (cl *cluster) exists(ctx context.Context, uuid string) (bool, error) {
	return cl.cfg.Client.SIsMember(ctx, redisIDs, uuid).Result()
}

// alive reports whether node is alive (this node always is). A failed check counts as dead.
func (cl *cluster) alive(ctx context.Context, node string, cache map[string]bool) bool {
	if node == "" {
		return false
	}
	if node == cl.cfg.NodeID {
		return true
	}
	if v, ok := cache[node]; ok {
		return v
	}
	ok, err := cl.cfg.Alive(ctx, node)
	if err != nil {
		cl.m.log.Warn("checking a node's heartbeat", "node", node, "error", err)
	}
	if cache != nil {
		cache[node] = ok
	}
	return ok
}

// holder returns the node serving uuid's changes: another live node holding its connection, or
// "" when this node serves them (it holds the connection, or nobody does).
func (cl *cluster) holder(ctx context.Context, uuid string) (string, error) {
	node, err := cl.cfg.Client.HGet(ctx, stationKey(uuid), fieldNode).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if node == cl.cfg.NodeID || !cl.alive(ctx, node, nil) {
		return "", nil
	}
	return node, nil
}

// editOffline applies prepare to uuid's stored config in one Redis transaction, when no live
// node holds its connection; when one does, it returns [errMoved] naming it (this node, when
// its own connection arrived meanwhile).
func (cl *cluster) editOffline(ctx context.Context, uuid string, prepare func(Roles) (Roles, error)) (*record, error) {
	key := stationKey(uuid)
	var out *record
	txf := func(tx *redis.Tx) error {
		vals, err := tx.HMGet(ctx, key, fieldRecord, fieldNode).Result()
		if err != nil {
			return err
		}
		s, _ := vals[0].(string)
		node, _ := vals[1].(string)
		switch {
		case node == cl.cfg.NodeID && cl.m.connected(uuid):
			return errMoved{node}
		case node != "" && node != cl.cfg.NodeID && cl.alive(ctx, node, nil):
			return errMoved{node}
		}
		rec, err := decodeRecord(uuid, s)
		if err != nil {
			return err
		}
		if rec == nil {
			rec = &record{UUID: uuid, Roles: Roles{}}
		}
		next, err := prepare(rec.Roles.Clone())
		if err != nil {
			return err
		}
		rec.Roles = next
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, fieldRecord, b)
			p.SAdd(ctx, redisIDs, uuid)
			return nil
		})
		out = rec
		return err
	}
	for range 10 {
		err := cl.cfg.Client.Watch(ctx, txf, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // the hash changed meanwhile (a connection, another edit): again
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, errors.New("stations: the station's record kept changing; try again")
}

// shared is one station as Redis holds it.
type shared struct {
	uuid, node string
	rec        *record
	live       *StationView
	regs       int
}

// load returns the stations of uuids (all the stored ones when uuids is nil), sorted by uuid.
func (cl *cluster) load(ctx context.Context, uuids []string) ([]*shared, error) {
	if uuids == nil {
		var err error
		if uuids, err = cl.cfg.Client.SMembers(ctx, redisIDs).Result(); err != nil {
			return nil, err
		}
	}
	slices.Sort(uuids)
	cmds := make([]*redis.MapStringStringCmd, len(uuids))
	_, err := cl.cfg.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, uuid := range uuids {
			cmds[i] = p.HGetAll(ctx, stationKey(uuid))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*shared, 0, len(uuids))
	for i, uuid := range uuids {
		h := cmds[i].Val()
		if len(h) == 0 {
			continue
		}
		s := &shared{uuid: uuid, node: h[fieldNode]}
		s.regs, _ = strconv.Atoi(h[fieldRegs])
		rec, err := decodeRecord(uuid, h[fieldRecord])
		if err != nil {
			cl.m.log.Warn("station record in Redis not readable", "uuid", uuid, "error", err)
		}
		s.rec = rec
		if l := h[fieldLive]; l != "" {
			var v StationView
			if err := json.Unmarshal([]byte(l), &v); err == nil {
				s.live = &v
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// view is the admin view of a station stored in Redis: online while a live node holds it.
func (cl *cluster) view(snap *directory.Snapshot, s *shared, online bool) StationView {
	v := StationView{}
	if s.live != nil {
		v = *s.live
	}
	v.UUID, v.Online, v.Registrations, v.Name, v.Node = s.uuid, online, s.regs, "", ""
	if d, ok := snap.Device(s.uuid); ok {
		v.Name = d.Name
	}
	if online {
		v.Node = s.node
	} else {
		v.ConnectedAt, v.Running, v.Status = nil, nil, nil
	}
	if s.rec != nil {
		v.Hostname, v.MAC, v.IP, v.BlockedRoles, v.Roles = s.rec.Hostname, s.rec.MAC, s.rec.IP, s.rec.BlockedRoles, s.rec.Roles
	}
	if v.Roles == nil {
		v.Roles = Roles{}
	}
	v.BlockedRoles = nonNil(v.BlockedRoles)
	if v.Running == nil {
		v.Running = []RunningView{}
	}
	if v.Jobs == nil {
		v.Jobs = []JobView{}
	}
	if len(v.Status) == 0 {
		v.Status = json.RawMessage("null")
	}
	return v
}

// start subscribes this node's request and answer channels until ctx is done.
func (cl *cluster) start(ctx context.Context) ([]bus.Subscription, error) {
	var subs []bus.Subscription
	for _, topic := range []string{topicNodePrefix + cl.cfg.NodeID, topicAnswerPrefix + cl.cfg.NodeID} {
		sub, err := cl.bus.Subscribe(ctx, topic, cl.onMessage)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe(context.Background())
			}
			return nil, err
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// onMessage takes a request (served on its own goroutine: a push may take PushTimeout) or an
// answer.
func (cl *cluster) onMessage(msg bus.Message) {
	var cm clusterMsg
	if err := json.Unmarshal(msg.Payload, &cm); err != nil || cm.From == "" {
		cl.m.met.clusterInvalid.Inc()
		cl.m.log.Warn("invalid station request or answer from the bus", "channel", msg.Channel, "bytes", len(msg.Payload), "error", err)
		return
	}
	if cm.Op == "" {
		cl.pmu.Lock()
		ch := cl.pending[cm.ID]
		delete(cl.pending, cm.ID)
		cl.pmu.Unlock()
		if ch != nil {
			ch <- cm
		}
		return
	}
	if !cl.m.goServe(func() { cl.serve(cm) }) {
		return
	}
}

// serve serves one request of another node and answers it.
func (cl *cluster) serve(req clusterMsg) {
	ctx := context.Background()
	var status int
	var body any
	switch req.Op {
	case opEdit:
		status, body = cl.m.edit(ctx, req.UUID, req.Patch, req.Body, false)
	case opOffer:
		var jr JobRequest
		if err := json.Unmarshal(req.Body, &jr); err != nil {
			status, body = http.StatusBadRequest, "bad offer: "+err.Error()
			break
		}
		st, c := cl.m.local(req.UUID)
		if c == nil {
			status, body = http.StatusNotFound, "the station is not connected to node "+cl.cfg.NodeID
			break
		}
		accepted, instance, err := cl.m.offerTo(st, c, jr.Role, jr.Job, jr.Config)
		if err != nil {
			status, body = http.StatusGatewayTimeout, err.Error()
			break
		}
		status, body = http.StatusOK, offerAnswer{Accepted: accepted, Instance: instance}
	case opClose:
		if st, c := cl.m.local(req.UUID); c != nil && c.id == req.Conn {
			cl.m.log.Info("station reconnected to another node; closing its connection here", "uuid", st.uuid, "node", req.From)
			c.close(websocket.ClosePolicyViolation, "replaced by a new connection of the same station")
		}
		return
	default:
		cl.m.met.clusterInvalid.Inc()
		cl.m.log.Warn("unknown station request from the bus", "op", req.Op, "from", req.From)
		status, body = http.StatusBadRequest, "unknown operation "+strconv.Quote(req.Op)
	}
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(strconv.Quote(err.Error()))
	}
	cl.publish(req.From, topicAnswerPrefix+req.From, clusterMsg{ID: req.ID, From: cl.cfg.NodeID, Status: status, Body: b})
}

// publish sends m on channel (logged when it fails).
func (cl *cluster) publish(node, channel string, m clusterMsg) bool {
	b, err := json.Marshal(m)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = cl.bus.Publish(ctx, channel, b)
		cancel()
	}
	if err != nil {
		cl.m.log.Warn("publishing a station message to another node", "node", node, "op", m.Op, "error", err)
		return false
	}
	return true
}

// notify sends a request that has no answer.
func (cl *cluster) notify(node string, m clusterMsg) {
	m.From = cl.cfg.NodeID
	cl.publish(node, topicNodePrefix+node, m)
}

// request sends m to node and waits up to timeout for its answer; a missing answer is
// [ErrNoAnswer].
func (cl *cluster) request(ctx context.Context, node string, m clusterMsg, timeout time.Duration) (clusterMsg, error) {
	m.ID, m.From = cl.ids.Add(1), cl.cfg.NodeID
	ch := make(chan clusterMsg, 1)
	cl.pmu.Lock()
	cl.pending[m.ID] = ch
	cl.pmu.Unlock()
	defer func() { cl.pmu.Lock(); delete(cl.pending, m.ID); cl.pmu.Unlock() }()
	if !cl.publish(node, topicNodePrefix+node, m) {
		cl.m.met.forwarded.WithLabelValues(m.Op, "error").Inc()
		return clusterMsg{}, fmt.Errorf("%w: the request to node %s was not sent", ErrNoAnswer, node)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-ch:
		cl.m.met.forwarded.WithLabelValues(m.Op, "answered").Inc()
		return a, nil
	case <-ctx.Done():
		cl.m.met.forwarded.WithLabelValues(m.Op, "no_answer").Inc()
		return clusterMsg{}, fmt.Errorf("%w: %w", ErrNoAnswer, ctx.Err())
	case <-t.C:
		cl.m.met.forwarded.WithLabelValues(m.Op, "no_answer").Inc()
		return clusterMsg{}, fmt.Errorf("%w: node %s did not answer within %s", ErrNoAnswer, node, timeout)
	}
}

// claim records in Redis that this node holds st's new connection c and loads the station's
// stored record; it asks the node that held the previous connection, if another, to close it.
// When Redis cannot be reached the connection is closed (1013, try again later): a station
// other nodes cannot find would be an island.
func (m *Manager) claim(ctx context.Context, st *station, c *sconn) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rec, prevNode, prevConn, err := m.cl.claim(ctx, st.uuid, c.id)
	if err != nil {
		m.log.Error("recording a station's connection in Redis; closing it", "uuid", st.uuid, "error", err)
		c.close(websocket.CloseTryAgainLater, "the manager's store is unavailable")
		return false
	}
	if rec != nil {
		st.mu.Lock()
		st.rec = rec
		st.mu.Unlock()
	}
	if prevNode != "" && prevNode != m.cl.cfg.NodeID && prevConn != "" {
		m.cl.notify(prevNode, clusterMsg{Op: opClose, UUID: st.uuid, Conn: prevConn})
	}
	return true
}

// release records in Redis that c, st's connection to this node, closed.
func (m *Manager) release(st *station, c *sconn) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, err := json.Marshal(m.view(m.cfg.Directory.Current(), st))
	if err == nil {
		err = m.cl.release(ctx, st.uuid, c.id, live)
	}
	if err != nil {
		m.log.Warn("recording a station's disconnection in Redis", "uuid", st.uuid, "error", err)
	}
}

// persist stores rec, the config station c accepted: in the data directory, or in Redis while
// c still holds the station.
func (m *Manager) persist(c *sconn, rec *record) error {
	if m.cl == nil {
		return m.store.save(rec)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	held, err := m.cl.setHeld(ctx, rec.UUID, c.id, fieldRecord, b)
	if err == nil && !held {
		m.log.Warn("station config not stored: the station reconnected meanwhile (its new connection's register stores it)", "uuid", rec.UUID)
	}
	return err
}

// changed writes st's admin view to Redis (cluster mode) for the other nodes, from one
// goroutine per station that writes again while changes keep coming: the last write carries the
// latest state, and only while this node's connection holds the station.
func (m *Manager) changed(st *station) {
	if m.cl == nil {
		return
	}
	st.mu.Lock()
	if st.flushing {
		st.dirty = true
		st.mu.Unlock()
		return
	}
	st.flushing = true
	st.mu.Unlock()
	ok := m.goServe(func() {
		for {
			st.mu.Lock()
			st.dirty = false
			c := st.conn
			st.mu.Unlock()
			if c != nil {
				live, err := json.Marshal(m.view(m.cfg.Directory.Current(), st))
				if err == nil {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err = m.cl.setHeld(ctx, st.uuid, c.id, fieldLive, live)
					cancel()
				}
				if err != nil {
					m.log.Warn("writing a station's state to Redis", "uuid", st.uuid, "error", err)
				}
			}
			st.mu.Lock()
			if !st.dirty {
				st.flushing = false
				st.mu.Unlock()
				return
			}
			st.mu.Unlock()
		}
	})
	if !ok {
		st.mu.Lock()
		st.flushing = false
		st.mu.Unlock()
	}
}

// stationsView is Stations in cluster mode: every station Redis holds (this node's connected
// ones from memory, the freshest).
func (m *Manager) clusterStations(ctx context.Context) ([]StationView, error) {
	all, err := m.cl.load(ctx, nil)
	if err != nil {
		return nil, err
	}
	snap := m.cfg.Directory.Current()
	alive := map[string]bool{}
	out := make([]StationView, 0, len(all))
	for _, s := range all {
		if st, c := m.local(s.uuid); c != nil {
			out = append(out, m.view(snap, st))
			continue
		}
		online := s.node != m.cl.cfg.NodeID && m.cl.alive(ctx, s.node, alive)
		out = append(out, m.cl.view(snap, s, online))
	}
	return out, nil
}

// stationView is the admin view of st: from memory on a single node or while it is connected
// here, else from Redis.
func (m *Manager) stationView(ctx context.Context, st *station) (StationView, error) {
	snap := m.cfg.Directory.Current()
	if m.cl == nil || m.connected(st.uuid) {
		return m.view(snap, st), nil
	}
	ss, err := m.cl.load(ctx, []string{st.uuid})
	if err != nil {
		return StationView{}, err
	}
	if len(ss) == 0 {
		return m.view(snap, st), nil // a station device never seen
	}
	online := ss[0].node != m.cl.cfg.NodeID && m.cl.alive(ctx, ss[0].node, nil)
	return m.cl.view(snap, ss[0], online), nil
}
