package presence

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
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
	// Cluster, if set, makes the registry one replica of a cluster-wide registry (Redis mode):
	// it starts from the cluster's snapshot and publishes an event only for the messages
	// it claims, so N nodes consuming one shared bus publish each event once. Nil means a single
	// node: every event is published.
	Cluster Cluster
	// ResyncDelay is how long [Registry.ScheduleResync] waits before reloading the cluster's
	// snapshot, so that every live node has rewritten its ownership by then (after a Redis
	// restart each does so within a heartbeat period). Zero means one second.
	ResyncDelay time.Duration
}

// Cluster is what a replica of the registry needs from the cluster (see [RedisCluster] and
// RATIONALE.md "Presence across nodes").
type Cluster interface {
	// Claim reports whether this node publishes the events that follow from the module message
	// payload. Of all the nodes consuming the same message exactly one claims it.
	Claim(ctx context.Context, payload []byte) bool
	// Snapshot returns every open connection of the cluster, counted per entity, and atomically
	// with that read publishes marker on [topic.UserManagerMessages]: the messages before the marker are in
	// the snapshot, the ones after it are not.
	Snapshot(ctx context.Context, marker []byte) ([]Count, error)
	// Announce publishes payload, the module message announcing that a connection of the entity
	// opened (connected) or closed, and records the connection as this node's.
	Announce(ctx context.Context, kind directory.Kind, uuid string, connected bool, payload []byte) error
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

	seq        atomic.Uint32 // announce numbers ([Registry.Announce]), from a random start
	greetMu    sync.Mutex
	greets     map[uint32]greeting // this node's announces awaiting their greeting decision
	greetSwept time.Time

	blockMu sync.Mutex
	blocked map[key]any // entities a database event disabled or deleted → their record then

	sub  bus.Subscription
	also map[string]bus.Handler // more patterns in the same ordered subscription ([Registry.Also])

	// syncing: until the snapshot marker comes by, messages are already in the snapshot.
	syncMu     sync.Mutex
	syncMarker []byte        // the marker awaited; nil once synced (or without a cluster)
	syncCounts chan snapshot // the snapshot, handed from Resync to the delivery goroutine
	resyncMu   sync.Mutex    // one Resync at a time
	loaded     bool          // a snapshot was applied: the next ones publish what changed

	// ScheduleResync: at most one resync waiting; stopped and waited for by Stop.
	resyncPending atomic.Bool
	bgCtx         context.Context // cancelled by Stop
	bgCancel      context.CancelFunc
	bgMu          sync.Mutex
	bg            sync.WaitGroup
}

// New returns an empty registry; call [Registry.Start] to consume the module topic.
func New(cfg Config) *Registry {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.ResyncDelay <= 0 {
		cfg.ResyncDelay = time.Second
	}
	r := &Registry{cfg: cfg, log: cfg.Logger, sessions: map[string]*members{}}
	r.bgCtx, r.bgCancel = context.WithCancel(context.Background())
	r.seq.Store(rand.Uint32())
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
	patterns := []string{topic.UserManagerMessages, topic.PatternDatabaseEvents}
	for p := range r.also {
		patterns = append(patterns, p)
	}
	h := func(m bus.Message) {
		if f, ok := r.also[m.Pattern]; ok {
			f(m)
			return
		}
		if m.Pattern == topic.PatternDatabaseEvents {
			r.onDatabaseEvent(m)
			return
		}
		r.onMessage(m)
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

// Stop unsubscribes, and ends and waits for a scheduled resync ([Registry.ScheduleResync]).
func (r *Registry) Stop(ctx context.Context) error {
	r.bgMu.Lock()
	r.bgCancel()
	r.bgMu.Unlock()
	var err error
	if r.sub != nil {
		err = r.sub.Unsubscribe(ctx)
	}
	done := make(chan struct{})
	go func() { r.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("presence: waiting for a resync: %w", ctx.Err()))
	}
	return err
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
