package presence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/proto/opentera"
)

// Module topics of the user manager.
const (
	// TopicMessages is where the user manager receives TeraModuleMessages.
	TopicMessages = "module.TeraServer.UserManagerModule.messages"
	// TopicEvents is where it publishes presence events.
	TopicEvents = "module.TeraServer.UserManagerModule.events"
)

// Config configures a [Registry].
type Config struct {
	// Bus carries the module's messages and events. Required.
	Bus bus.Bus
	// Directory resolves names for JOINED/LEFT events. Required.
	Directory *directory.Store
	// Logger is the registry's logger. Nil means no logging.
	Logger hclog.Logger
	// OnPublish, if set, is called after each event the registry publishes (for metrics).
	OnPublish func()
	// Cluster, if set, makes the registry one replica of a cluster-wide registry (Redis mode,
	// SPEC §9): it starts from the cluster's snapshot and publishes an event only for the messages
	// it claims, so N nodes consuming one shared bus publish each event once. Nil means a single
	// node: every event is published.
	Cluster Cluster
}

// Cluster is what a replica of the registry needs from the cluster (see [RedisCluster] and
// RATIONALE.md "Presence across nodes").
type Cluster interface {
	// Claim reports whether this node publishes the events that follow from the module message
	// payload. Of all the nodes consuming the same message exactly one claims it.
	Claim(ctx context.Context, payload []byte) bool
	// Snapshot returns every open connection of the cluster, counted per entity, and atomically
	// with that read publishes marker on [TopicMessages]: the messages before the marker are in
	// the snapshot, the ones after it are not.
	Snapshot(ctx context.Context, marker []byte) ([]Count, error)
	// Announce publishes payload, the module message announcing that a connection of the entity
	// opened (connected) or closed, and records the connection as this node's.
	Announce(ctx context.Context, kind directory.Kind, uuid string, connected bool, payload []byte) error
}

// Count is an entity's number of open connections in a [Cluster] snapshot.
type Count struct {
	Kind directory.Kind
	UUID string
	N    int
}

// claim decides lazily, once per incoming message, whether this node publishes its events.
type claim struct {
	r       *Registry
	payload []byte
	decided bool
	mine    bool
}

func (c *claim) ok(ctx context.Context) bool {
	if c == nil || c.r.cfg.Cluster == nil {
		return true
	}
	if !c.decided {
		c.decided, c.mine = true, c.r.cfg.Cluster.Claim(ctx, c.payload)
	}
	return c.mine
}

type key struct {
	kind directory.Kind
	uuid string
}

// onlineVal is the state of an online entity.
type onlineVal struct {
	conns     int32        // open connections
	busy      bool         // also in the busy list (kept in step, so status_* needs no lookup)
	hasStatus bool         // devices: status is set
	status    DeviceStatus // devices: the last status, only while online
}

// kindState is the registry of one kind of entity.
type kindState struct {
	online olist[onlineVal] // in connection order
	busy   olist[busyVal]   // uuid → session, in join order
}

// busyVal is the state of a busy entity.
type busyVal struct {
	session string
	online  bool // also in the online list
}

// members is the set of entities a session invited, in invitation order.
type members struct {
	set   map[key]struct{}
	order []key
}

// DeviceStatus is a device's last reported status (OpenTera's {"status", "timestamp"}).
type DeviceStatus struct {
	// Status is the JSON text the device sent (a string; OpenTera double-encodes it in events).
	Status string
	// Timestamp is the device's timestamp, an integer or a float as received.
	Timestamp rpc.Number
}

// UpdateResult is the outcome of [Registry.UpdateDeviceStatus].
type UpdateResult int

// The outcomes of a device status update.
const (
	// StatusUpdated means the status was stored and DEVICE_STATUS_CHANGED published.
	StatusUpdated UpdateResult = iota
	// StatusStale means the timestamp was older than the stored one: nothing changed.
	StatusStale
	// StatusOffline means the device is not online: nothing was stored.
	StatusOffline
)

// Registry is the presence registry.
type Registry struct {
	cfg Config
	log hclog.Logger

	mu       sync.RWMutex
	kinds    [directory.KindDevice + 1]kindState
	sessions map[string]*members // session uuid → invited entities

	sub  bus.Subscription
	also map[string]bus.Handler // more patterns in the same ordered subscription ([Registry.Also])

	// syncing: until the snapshot marker comes by, messages are already in the snapshot.
	syncMu     sync.Mutex
	syncMarker []byte        // the marker awaited; nil once synced (or without a cluster)
	syncCounts chan snapshot // the snapshot, handed from Resync to the delivery goroutine
	resyncMu   sync.Mutex    // one Resync at a time
}

// New returns an empty registry; call [Registry.Start] to consume the module topic.
func New(cfg Config) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	r := &Registry{cfg: cfg, log: cfg.Logger, sessions: map[string]*members{}}
	for k := range r.kinds {
		r.kinds[k] = kindState{online: newOList[onlineVal](), busy: newOList[busyVal]()}
	}
	return r
}

// Also adds pattern to the registry's subscription, with its own handler: its messages and the
// module's messages reach their handlers one at a time, in publish order across both (one Redis
// connection). The gateway adds the user manager's RPC channel, so that a reply reflects every
// presence message published before its request, as in OpenTera, whose user manager reads both
// on one connection. Call it before [Registry.Start].
func (r *Registry) Also(pattern string, h bus.Handler) {
	if r.also == nil {
		r.also = map[string]bus.Handler{}
	}
	r.also[pattern] = h
}

// Start subscribes to the module's message topic. With a [Cluster], it then loads the
// cluster's snapshot: when Start returns, the registry counts every connection of the cluster.
func (r *Registry) Start(ctx context.Context) error {
	if r.cfg.Cluster != nil {
		r.syncCounts = make(chan snapshot, 1)
	}
	patterns := []string{TopicMessages}
	for p := range r.also {
		patterns = append(patterns, p)
	}
	h := r.onMessage
	if len(r.also) > 0 {
		h = func(m bus.Message) {
			if f, ok := r.also[m.Pattern]; ok {
				f(m)
				return
			}
			r.onMessage(m)
		}
	}
	sub, err := r.cfg.Bus.SubscribeAll(ctx, patterns, h)
	if err != nil {
		return fmt.Errorf("presence: subscribe: %w", err)
	}
	r.sub = sub
	if r.cfg.Cluster == nil {
		return nil
	}
	if err := r.Resync(ctx); err != nil {
		_ = sub.Unsubscribe(ctx)
		return err
	}
	return nil
}

// Resync replaces the replica's online counts with the cluster's snapshot (Redis mode; a no-op on
// a single node). The gateway calls it when its presence subscription was restored (messages were
// lost meanwhile), once every node has had a heartbeat to rewrite its ownership. It returns once
// the snapshot is applied. It must not be called from a bus handler.
func (r *Registry) Resync(ctx context.Context) error {
	if r.cfg.Cluster == nil {
		return nil
	}
	r.resyncMu.Lock()
	defer r.resyncMu.Unlock()
	marker, err := snapshotMarker()
	if err != nil {
		return err
	}
	// The marker is awaited before the snapshot is taken: every message delivered until the marker
	// was published before it, hence is in the snapshot, and is skipped.
	r.syncMu.Lock()
	r.syncMarker = marker
	r.syncMu.Unlock()
	counts, err := r.cfg.Cluster.Snapshot(ctx, marker)
	if err != nil {
		r.syncMu.Lock()
		r.syncMarker = nil
		r.syncMu.Unlock()
		return fmt.Errorf("presence: cluster snapshot: %w", err)
	}
	r.syncCounts <- snapshot{marker, counts}
	// Wait until the delivery goroutine has passed the marker and applied the snapshot.
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		r.syncMu.Lock()
		synced := r.syncMarker == nil
		r.syncMu.Unlock()
		if synced {
			return nil
		}
		select {
		case <-ctx.Done():
			// The marker was lost (the subscription dropped meanwhile): stop skipping messages.
			r.syncMu.Lock()
			if bytes.Equal(r.syncMarker, marker) {
				r.syncMarker = nil
				select {
				case <-r.syncCounts:
				default:
				}
			}
			r.syncMu.Unlock()
			return fmt.Errorf("presence: cluster snapshot not applied: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// ResyncSource is the source of the module message (without data) a node publishes after
// rewriting its ownership (its registration was lost: Redis restarted, or it was taken for dead),
// for the record; replicas do nothing with it.
const ResyncSource = "teragate.presence.resync"

// snapshotMarker returns a TeraModuleMessage without data, unique to this start, that tells the
// snapshot's place in the message stream (other replicas find nothing to do in it).
func snapshotMarker() ([]byte, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	return proto.Marshal(&opentera.TeraModuleMessage{Head: &opentera.TeraModuleMessage_Header{
		Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Source: "teragate.presence.snapshot", Dest: hex.EncodeToString(nonce[:])}})
}

// syncing handles a message that arrives before the registry has applied its snapshot: it
// reports true while the message must be skipped (it is already counted in the snapshot).
func (r *Registry) syncing(payload []byte) bool {
	r.syncMu.Lock()
	marker := r.syncMarker
	r.syncMu.Unlock()
	if marker == nil {
		return false
	}
	if !bytes.Equal(payload, marker) {
		return true
	}
	// Resync hands the snapshot over once its script returns; it never comes if the call failed
	// after the script ran (then the messages go on unapplied-snapshot, and the next resync fixes).
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for waiting := true; waiting; {
		select {
		case sn := <-r.syncCounts:
			if bytes.Equal(sn.marker, marker) {
				r.loadSnapshot(sn.counts)
				waiting = false
			}
		case <-timeout.C:
			r.log.Warn("cluster snapshot not received; going on without it")
			waiting = false
		}
	}
	r.syncMu.Lock()
	r.syncMarker = nil
	r.syncMu.Unlock()
	return true
}

// snapshot is a cluster snapshot and the marker that places it in the stream.
type snapshot struct {
	marker []byte
	counts []Count
}

// loadSnapshot replaces the online counts with a cluster snapshot. Device statuses are kept for
// the devices still online.
func (r *Registry) loadSnapshot(counts []Count) {
	r.mu.Lock()
	defer r.mu.Unlock()
	statuses := map[string]DeviceStatus{}
	for k := range r.kinds {
		st := &r.kinds[k]
		for n := st.online.head; n != nil; {
			next := n.next
			if n.val.hasStatus {
				statuses[n.uuid] = n.val.status
			}
			if b := st.busy.get(n.uuid); b != nil {
				b.val.online = false
			}
			st.online.remove(n)
			n = next
		}
	}
	defer func() {
		for uuid, ds := range statuses {
			if n := r.kinds[directory.KindDevice].online.get(uuid); n != nil {
				n.val.status, n.val.hasStatus = ds, true
			}
		}
	}()
	for _, c := range counts {
		st := r.state(c.Kind)
		if st == nil || c.UUID == "" || c.N <= 0 {
			continue
		}
		if n := st.online.get(c.UUID); n != nil {
			n.val.conns += int32(c.N)
			continue
		}
		v := onlineVal{conns: int32(c.N)}
		if b := st.busy.get(c.UUID); b != nil {
			b.val.online, v.busy = true, true
		}
		st.online.add(c.UUID, v)
	}
	r.log.Debug("cluster snapshot loaded", "entities", len(counts))
}

// Stop unsubscribes.
func (r *Registry) Stop(ctx context.Context) error {
	if r.sub == nil {
		return nil
	}
	return r.sub.Unsubscribe(ctx)
}

// state returns the registry of kind, or nil for services and invalid kinds.
func (r *Registry) state(kind directory.Kind) *kindState {
	if kind < directory.KindUser || kind > directory.KindDevice {
		return nil
	}
	return &r.kinds[kind]
}

// Online reports whether the entity has at least one open connection.
func (r *Registry) Online(kind directory.Kind, uuid string) bool {
	return r.Connections(kind, uuid) > 0
}

// Connections returns the entity's open connection count.
func (r *Registry) Connections(kind directory.Kind, uuid string) int {
	st := r.state(kind)
	if st == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := st.online.get(uuid); n != nil {
		return int(n.val.conns)
	}
	return 0
}

// OnlineList returns the uuids of the online entities of kind, in connection order.
func (r *Registry) OnlineList(kind directory.Kind) []string {
	return r.onlineList(kind, nil)
}

// onlineList returns the online uuids of kind that visible accepts (all when visible is nil).
func (r *Registry) onlineList(kind directory.Kind, visible func(directory.Kind, string) bool) []string {
	st := r.state(kind)
	if st == nil {
		return []string{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, st.online.len())
	for n := st.online.head; n != nil; n = n.next {
		if visible == nil || visible(kind, n.uuid) {
			out = append(out, n.uuid)
		}
	}
	return out
}

// Busy returns the session the entity is busy in, if any.
func (r *Registry) Busy(kind directory.Kind, uuid string) (string, bool) {
	st := r.state(kind)
	if st == nil {
		return "", false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := st.busy.get(uuid); n != nil {
		return n.val.session, true
	}
	return "", false
}

// DeviceStatus returns the device's last status; false when it is offline or has none.
func (r *Registry) DeviceStatus(uuid string) (DeviceStatus, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.kinds[directory.KindDevice].online.get(uuid); n != nil && n.val.hasStatus {
		return n.val.status, true
	}
	return DeviceStatus{}, false
}

// InSession implements filter.Sessions: the entity was invited to the session and the session
// has not been stopped.
func (r *Registry) InSession(kind directory.Kind, uuid, session string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := r.sessions[session]
	if m == nil {
		return false
	}
	_, ok := m.set[key{kind, uuid}]
	return ok
}

// UpdateDeviceStatus stores an online device's status and publishes DEVICE_STATUS_CHANGED, as
// OpenTera's update_device_status, except that a timestamp older than the stored one is ignored
// (equal timestamps are accepted). It returns the status now in force (the new one, or the kept
// one when stale) and the outcome; an offline device gets [StatusOffline] and nothing is stored.
func (r *Registry) UpdateDeviceStatus(ctx context.Context, uuid, status string, ts rpc.Number) (DeviceStatus, UpdateResult) {
	if r.cfg.Cluster != nil {
		return r.updateClustered(ctx, uuid, status, ts)
	}
	r.mu.Lock()
	n := r.kinds[directory.KindDevice].online.get(uuid)
	if n == nil {
		r.mu.Unlock()
		return DeviceStatus{}, StatusOffline
	}
	if n.val.hasStatus && ts.Less(n.val.status.Timestamp) {
		cur := n.val.status
		r.mu.Unlock()
		return cur, StatusStale
	}
	ds := DeviceStatus{Status: status, Timestamp: ts}
	n.val.status, n.val.hasStatus = ds, true
	r.mu.Unlock()

	ev := &opentera.DeviceEvent{DeviceUuid: uuid, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: EncodeDeviceStatus(ds)}
	if d, ok := r.cfg.Directory.Current().Device(uuid); ok {
		ev.DeviceName = d.Name
	}
	r.publish(ctx, ev)
	return ds, StatusUpdated
}

// updateClustered is UpdateDeviceStatus on a replica: the outcome is decided on the local
// replica for the reply, and the status travels as a DEVICE_STATUS_CHANGED module message on the
// stream, so every replica stores it in the same order (applyStatus) and one publishes the event.
func (r *Registry) updateClustered(ctx context.Context, uuid, status string, ts rpc.Number) (DeviceStatus, UpdateResult) {
	r.mu.RLock()
	n := r.kinds[directory.KindDevice].online.get(uuid)
	var cur DeviceStatus
	stale := false
	if n != nil && n.val.hasStatus && ts.Less(n.val.status.Timestamp) {
		cur, stale = n.val.status, true
	}
	r.mu.RUnlock()
	switch {
	case n == nil:
		return DeviceStatus{}, StatusOffline
	case stale:
		return cur, StatusStale
	}
	ds := DeviceStatus{Status: status, Timestamp: ts}
	ev := &opentera.DeviceEvent{DeviceUuid: uuid, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: EncodeDeviceStatus(ds)}
	if d, ok := r.cfg.Directory.Current().Device(uuid); ok {
		ev.DeviceName = d.Name
	}
	payload, err := EncodeModuleMessage("teragate.presence", TopicMessages, ev)
	if err == nil {
		err = r.cfg.Bus.Publish(ctx, TopicMessages, payload)
	}
	if err != nil {
		r.log.Error("publishing a device status to the cluster", "uuid", uuid, "error", err)
	}
	return ds, StatusUpdated
}

// applyStatus stores a device status received on the stream (cluster mode), with the same rules
// as UpdateDeviceStatus, and publishes DEVICE_STATUS_CHANGED if this node claims the message.
func (r *Registry) applyStatus(ctx context.Context, c *claim, ev *opentera.DeviceEvent, a *anypb.Any) {
	ds, ok := parseStatusEvent(ev.GetDeviceStatus())
	if !ok {
		r.log.Warn("undecodable device status ignored", "uuid", ev.GetDeviceUuid())
		return
	}
	r.mu.Lock()
	n := r.kinds[directory.KindDevice].online.get(ev.GetDeviceUuid())
	if n == nil || (n.val.hasStatus && ds.Timestamp.Less(n.val.status.Timestamp)) {
		r.mu.Unlock()
		return
	}
	n.val.status, n.val.hasStatus = ds, true
	r.mu.Unlock()
	if c.ok(ctx) {
		r.publishAny(ctx, ev, a)
	}
}

// parseStatusEvent parses the device_status text of a DEVICE_STATUS_CHANGED event (the inverse
// of [EncodeDeviceStatus]).
func parseStatusEvent(s string) (DeviceStatus, bool) {
	var v struct {
		Status    *string     `json:"status"`
		Timestamp json.Number `json:"timestamp"`
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&v); err != nil || v.Status == nil || v.Timestamp == "" {
		return DeviceStatus{}, false
	}
	ds := DeviceStatus{Status: *v.Status}
	if i, err := v.Timestamp.Int64(); err == nil && !strings.ContainsAny(string(v.Timestamp), ".eE") {
		ds.Timestamp = rpc.Int(i)
	} else if f, err := v.Timestamp.Float64(); err == nil {
		ds.Timestamp = rpc.Float(f)
	} else {
		return DeviceStatus{}, false
	}
	return ds, true
}

// EncodeDeviceStatus returns the device_status text of a DEVICE_STATUS_CHANGED event as OpenTera
// writes it: json.dumps({"status": <status string>, "timestamp": <ts>}), so the status, already
// JSON text, is encoded twice:
//
//	{"status": "{\"battery\": 10.4}", "timestamp": 1732145425.5}
func EncodeDeviceStatus(ds DeviceStatus) string {
	b := make([]byte, 0, len(ds.Status)+48)
	b = ds.appendJSON(b)
	return string(b)
}

// appendJSON appends {"status": "<status>", "timestamp": <ts>}.
func (ds DeviceStatus) appendJSON(b []byte) []byte {
	b = append(b, `{"status": `...)
	b = rpc.AppendString(b, ds.Status)
	b = append(b, `, "timestamp": `...)
	b, _ = ds.Timestamp.AppendJSON(b)
	return append(b, '}')
}

func (r *Registry) onMessage(m bus.Message) {
	if r.syncing(m.Payload) {
		return
	}
	var msg opentera.TeraModuleMessage
	if err := proto.Unmarshal(m.Payload, &msg); err != nil {
		r.log.Warn("undecodable module message", "topic", m.Channel, "error", err)
		return
	}
	ctx := context.Background()
	c := &claim{r: r, payload: m.Payload}
	for _, a := range msg.GetData() {
		r.handle(ctx, a, c)
	}
}

func (r *Registry) handle(ctx context.Context, a *anypb.Any, c *claim) {
	m, err := a.UnmarshalNew()
	if err != nil {
		r.log.Debug("ignoring module message data", "type", a.GetTypeUrl(), "error", err)
		return
	}
	switch ev := m.(type) {
	case *opentera.UserEvent:
		switch ev.GetType() {
		case opentera.UserEvent_USER_CONNECTED:
			r.connect(ctx, c, key{directory.KindUser, ev.GetUserUuid()}, ev, a)
		case opentera.UserEvent_USER_DISCONNECTED:
			r.disconnect(ctx, c, key{directory.KindUser, ev.GetUserUuid()}, ev, a)
		}
	case *opentera.ParticipantEvent:
		switch ev.GetType() {
		case opentera.ParticipantEvent_PARTICIPANT_CONNECTED:
			r.connect(ctx, c, key{directory.KindParticipant, ev.GetParticipantUuid()}, ev, a)
		case opentera.ParticipantEvent_PARTICIPANT_DISCONNECTED:
			r.disconnect(ctx, c, key{directory.KindParticipant, ev.GetParticipantUuid()}, ev, a)
		}
	case *opentera.DeviceEvent:
		switch ev.GetType() {
		case opentera.DeviceEvent_DEVICE_CONNECTED:
			r.connect(ctx, c, key{directory.KindDevice, ev.GetDeviceUuid()}, ev, a)
		case opentera.DeviceEvent_DEVICE_DISCONNECTED:
			r.disconnect(ctx, c, key{directory.KindDevice, ev.GetDeviceUuid()}, ev, a)
		case opentera.DeviceEvent_DEVICE_STATUS_CHANGED:
			if r.cfg.Cluster != nil { // a replica's update (updateClustered)
				r.applyStatus(ctx, c, ev, a)
			}
		}
	case *opentera.JoinSessionEvent:
		r.join(ctx, c, ev)
	case *opentera.StopSessionEvent:
		r.stop(ctx, c, ev.GetSessionUuid())
	case *opentera.LeaveSessionEvent:
		for _, k := range memberKeys(ev.GetLeavingUsers(), ev.GetLeavingParticipants(), ev.GetLeavingDevices()) {
			r.leave(ctx, c, k, ev.GetSessionUuid())
		}
	case *opentera.JoinSessionReplyEvent:
		if ev.GetJoinReply() == opentera.JoinSessionReplyEvent_REPLY_ACCEPTED {
			return
		}
		for _, k := range memberKeys(nonEmpty(ev.GetUserUuid()), nonEmpty(ev.GetParticipantUuid()), nonEmpty(ev.GetDeviceUuid())) {
			r.leave(ctx, c, k, ev.GetSessionUuid())
		}
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func memberKeys(users, participants, devices []string) []key {
	out := make([]key, 0, len(users)+len(participants)+len(devices))
	for _, u := range users {
		out = append(out, key{directory.KindUser, u})
	}
	for _, u := range participants {
		out = append(out, key{directory.KindParticipant, u})
	}
	for _, u := range devices {
		out = append(out, key{directory.KindDevice, u})
	}
	return out
}

// connect counts one more connection of k and republishes its CONNECTED event (every socket
// sees its own). a is the event as received, republished without re-encoding.
func (r *Registry) connect(ctx context.Context, c *claim, k key, ev proto.Message, a *anypb.Any) {
	if k.uuid == "" {
		return
	}
	st := &r.kinds[k.kind]
	r.mu.Lock()
	if n := st.online.get(k.uuid); n != nil {
		n.val.conns++
	} else {
		v := onlineVal{conns: 1}
		if b := st.busy.get(k.uuid); b != nil {
			b.val.online, v.busy = true, true
		}
		st.online.add(k.uuid, v)
	}
	r.mu.Unlock()
	if c.ok(ctx) {
		r.publishAny(ctx, ev, a)
	}
}

// disconnect counts one connection of k less; the last one takes k offline (clearing a device's
// status) and republishes DISCONNECTED. Busy is kept, as in OpenTera.
func (r *Registry) disconnect(ctx context.Context, c *claim, k key, ev proto.Message, a *anypb.Any) {
	st := &r.kinds[k.kind]
	r.mu.Lock()
	n := st.online.get(k.uuid)
	if n == nil {
		r.mu.Unlock()
		return
	}
	n.val.conns--
	last := n.val.conns <= 0
	if last {
		if n.val.busy {
			if b := st.busy.get(k.uuid); b != nil {
				b.val.online = false
			}
		}
		st.online.remove(n)
	}
	r.mu.Unlock()
	if last && c.ok(ctx) {
		r.publishAny(ctx, ev, a)
	}
}

func (r *Registry) join(ctx context.Context, c *claim, ev *opentera.JoinSessionEvent) {
	session := ev.GetSessionUuid()
	if session == "" {
		return
	}
	list := memberKeys(ev.GetSessionUsers(), ev.GetSessionParticipants(), ev.GetSessionDevices())
	r.mu.Lock()
	m := r.sessions[session]
	if m == nil {
		m = &members{set: map[key]struct{}{}}
		r.sessions[session] = m
	}
	for _, k := range list {
		if k.uuid == "" {
			continue
		}
		if _, in := m.set[k]; !in {
			m.set[k] = struct{}{}
			m.order = append(m.order, k)
		}
		if st := &r.kinds[k.kind]; st.busy.get(k.uuid) == nil { // first session wins
			bv := busyVal{session: session}
			if o := st.online.get(k.uuid); o != nil {
				o.val.busy, bv.online = true, true
			}
			st.busy.add(k.uuid, bv)
		}
	}
	r.mu.Unlock()
	if !c.ok(ctx) {
		return
	}
	for _, k := range list {
		if k.uuid != "" {
			r.publish(ctx, r.sessionEvent(k, true))
		}
	}
}

// leave clears k's busy state if it is busy in session, and publishes LEFT_SESSION either way
// (as OpenTera does).
func (r *Registry) leave(ctx context.Context, c *claim, k key, session string) {
	if k.uuid == "" {
		return
	}
	r.mu.Lock()
	st := &r.kinds[k.kind]
	if n := st.busy.get(k.uuid); n != nil && n.val.session == session {
		st.unbusy(n)
	} else if n != nil {
		r.log.Debug("leave for another session than the busy one", "kind", k.kind, "uuid", k.uuid, "busy", n.val.session, "leave", session)
	}
	r.mu.Unlock()
	if c.ok(ctx) {
		r.publish(ctx, r.sessionEvent(k, false))
	}
}

// stop clears the busy state of every entity busy in session, in invitation order, publishing
// their LEFT_SESSION, and forgets the session's membership.
func (r *Registry) stop(ctx context.Context, c *claim, session string) {
	r.mu.Lock()
	var left []key
	if m := r.sessions[session]; m != nil {
		for _, k := range m.order {
			st := &r.kinds[k.kind]
			if n := st.busy.get(k.uuid); n != nil && n.val.session == session {
				st.unbusy(n)
				left = append(left, k)
			}
		}
		delete(r.sessions, session)
	}
	r.mu.Unlock()
	if len(left) == 0 || !c.ok(ctx) {
		return
	}
	for _, k := range left {
		r.publish(ctx, r.sessionEvent(k, false))
	}
}

// unbusy removes a busy entity, keeping its online entry's flag in step.
func (st *kindState) unbusy(n *onode[busyVal]) {
	if n.val.online {
		if o := st.online.get(n.uuid); o != nil {
			o.val.busy = false
		}
	}
	st.busy.remove(n)
}

// sessionEvent builds the JOINED_SESSION / LEFT_SESSION event of an entity, with the names
// OpenTera fills in from its database.
func (r *Registry) sessionEvent(k key, joined bool) proto.Message {
	change := LeftSession
	if joined {
		change = JoinedSession
	}
	return EntityEvent(r.cfg.Directory.Current(), k.kind, k.uuid, change)
}

// Change is a presence change of an entity, as the per-kind OpenTera event types express it.
type Change uint8

// The presence changes [EntityEvent] builds.
const (
	Connected Change = iota
	Disconnected
	JoinedSession
	LeftSession
)

var (
	userTypes        = [...]opentera.UserEvent_EventType{opentera.UserEvent_USER_CONNECTED, opentera.UserEvent_USER_DISCONNECTED, opentera.UserEvent_USER_JOINED_SESSION, opentera.UserEvent_USER_LEFT_SESSION}
	participantTypes = [...]opentera.ParticipantEvent_EventType{opentera.ParticipantEvent_PARTICIPANT_CONNECTED, opentera.ParticipantEvent_PARTICIPANT_DISCONNECTED, opentera.ParticipantEvent_PARTICIPANT_JOINED_SESSION, opentera.ParticipantEvent_PARTICIPANT_LEFT_SESSION}
	deviceTypes      = [...]opentera.DeviceEvent_EventType{opentera.DeviceEvent_DEVICE_CONNECTED, opentera.DeviceEvent_DEVICE_DISCONNECTED, opentera.DeviceEvent_DEVICE_JOINED_SESSION, opentera.DeviceEvent_DEVICE_LEFT_SESSION}
)

// EntityEvent builds the UserEvent, ParticipantEvent or DeviceEvent of a presence change, with
// the names OpenTera fills in from its database (user full name; participant, project and site
// names; device name). It returns nil for a service or an invalid kind.
func EntityEvent(snap *directory.Snapshot, kind directory.Kind, uuid string, change Change) proto.Message {
	switch kind {
	case directory.KindUser:
		ev := &opentera.UserEvent{UserUuid: uuid, Type: userTypes[change]}
		if u, ok := snap.User(uuid); ok {
			ev.UserFullname = u.Fullname
		}
		return ev
	case directory.KindParticipant:
		ev := &opentera.ParticipantEvent{ParticipantUuid: uuid, Type: participantTypes[change]}
		ev.ParticipantName, ev.ParticipantProjectName, ev.ParticipantSiteName = ParticipantNames(snap, uuid)
		return ev
	case directory.KindDevice:
		ev := &opentera.DeviceEvent{DeviceUuid: uuid, Type: deviceTypes[change]}
		if d, ok := snap.Device(uuid); ok {
			ev.DeviceName = d.Name
		}
		return ev
	}
	return nil
}

// ParticipantNames returns a participant's name, project name and site name from the directory.
func ParticipantNames(snap *directory.Snapshot, uuid string) (name, project, site string) {
	p, ok := snap.Participant(uuid)
	if !ok {
		return "", "", ""
	}
	name = p.Name
	if pr, ok := snap.Project(p.Project); ok {
		project = pr.Name
		if s, ok := snap.Site(pr.Site); ok {
			site = s.Name
		}
	}
	return name, project, site
}

// publish sends one event in its own TeraEvent on the module's event topic.
func (r *Registry) publish(ctx context.Context, m proto.Message) {
	r.publishAny(ctx, m, nil)
}

// publishAny publishes m, reusing a (m as received) when it is packed with the standard type URL.
func (r *Registry) publishAny(ctx context.Context, m proto.Message, a *anypb.Any) {
	if a == nil || a.GetTypeUrl() != opentera.TypeURL(m) {
		var err error
		if a, err = opentera.NewAny(m); err != nil {
			r.log.Error("encoding presence event", "error", err)
			return
		}
	}
	payload, err := encodeAny(TopicEvents, a)
	if err != nil {
		r.log.Error("encoding presence event", "error", err)
		return
	}
	if err := r.cfg.Bus.Publish(ctx, TopicEvents, payload); err != nil {
		if errors.Is(err, bus.ErrClosed) {
			r.log.Debug("presence event not published: bus closed (shutting down)")
			return
		}
		r.log.Error("publishing presence event", "error", err)
		return
	}
	if r.cfg.OnPublish != nil {
		r.cfg.OnPublish()
	}
}

// EncodeEvent returns the binary TeraEvent (version 1, current time, topic) holding m.
func EncodeEvent(topic string, m proto.Message) ([]byte, error) {
	a, err := opentera.NewAny(m)
	if err != nil {
		return nil, err
	}
	return encodeAny(topic, a)
}

func encodeAny(topic string, a *anypb.Any) ([]byte, error) {
	te := opentera.TeraEvent{
		Header: &opentera.TeraEvent_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Topic: topic},
		Events: []*anypb.Any{a},
	}
	return proto.Marshal(&te)
}

// EncodeModuleMessage returns the binary TeraModuleMessage from source to dest holding m.
func EncodeModuleMessage(source, dest string, m proto.Message) ([]byte, error) {
	a, err := opentera.NewAny(m)
	if err != nil {
		return nil, err
	}
	mm := &opentera.TeraModuleMessage{
		Head: &opentera.TeraModuleMessage_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Source: source, Dest: dest},
		Data: []*anypb.Any{a},
	}
	return proto.Marshal(mm)
}
