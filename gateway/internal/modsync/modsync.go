// Package modsync keeps one kind of Wasm module (filter/RPC plugins, station role plugins) the
// same on every node of a Redis cluster. A module a node accepted (a file dropped in its
// directory, or an upload) is stored in Redis by content hash (sha256) and named the current
// version of its id; every node is told, loads that version and writes down in Redis what it
// serves, or why it refused it, so an operator can see when the cluster has converged.
//
// Redis layout, for a kind K ("plugins", "roles"):
//
//	teragate:modules:K:current     hash: id → sha256 hex of the current version, "-" when deleted
//	teragate:modules:K:blob:<hex>  string: the module's bytes (a replaced version expires later)
//	teragate:modules:K:nodes       sorted set: node ids, scored by their last status write (ms)
//	teragate:modules:K:node:<id>   string: the node's status (JSON, see [NodeStatus]), with a TTL
//	teragate:modules:K:changed     pub/sub channel: the id whose current version changed
//
// A change is published only when the current version of its id really changes, so the same
// file dropped on two nodes is one version and one notification, and a node never writes what it
// received back: there is no feedback loop. Nodes also re-read the current versions periodically,
// so a notification lost to a reconnect delays a node but does not leave it behind.
package modsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
)

// Deleted is the current version of an id that was deleted: every node serves its default (the
// built-in of a plugin, nothing for a role).
const Deleted = "-"

// ErrTooLarge is returned by [Store.Publish] for a module larger than [Config.MaxBytes].
var ErrTooLarge = errors.New("modsync: module too large")

// Target is what a store keeps in step: one node's registry of one kind of module.
type Target interface {
	// Apply makes data (whose sha256 hex is hash) serve id. It does nothing when that version
	// already serves. An error is this node's rejection: the version serving before stays.
	Apply(id, hash string, data []byte) error
	// Remove makes the default of id serve: its built-in, or nothing.
	Remove(id string)
	// Serving returns the hash each id is served with on this node.
	Serving() map[string]string
}

// Config configures a [Store].
type Config struct {
	// Client is the cluster's Redis.
	Client *redis.Client
	// Kind names the modules ("plugins", "roles"): it is part of every key.
	Kind string
	// NodeID is this node's id in the cluster.
	NodeID string
	// Target is this node's registry.
	Target Target
	// MaxBytes bounds a module's size; a larger one is not shared. Zero means 32 MiB.
	MaxBytes int64
	// StatusTTL is how long a node's status outlives its last write: a node that stopped is
	// dropped from the view after it. The status is rewritten every StatusTTL/3. Zero means 30s.
	StatusTTL time.Duration
	// Resync is the period of the full re-read of the current versions. Zero means 5s.
	Resync time.Duration
	// Grace is how long a replaced version's bytes stay in Redis, for nodes still fetching it.
	// Zero means 10 minutes.
	Grace time.Duration
	// OnApply, if set, counts a node's load of a cluster version: result is "loaded",
	// "rejected", "removed" or "missing" (its bytes were no longer in Redis).
	OnApply func(result string)
	// Logger is the store's logger. Nil means none.
	Logger hclog.Logger
}

// DefaultMaxBytes is the default of [Config.MaxBytes].
const DefaultMaxBytes = 32 << 20

// ModuleStatus is what one node serves for one id.
type ModuleStatus struct {
	// Hash is the sha256 hex of the version the node serves ("" for none).
	Hash string `json:"version_hash,omitempty"`
	// RejectedHash is the last version the node refused (a file dropped on it, or the cluster's
	// current version), and Error why. Both clear once the node serves the version it was given.
	RejectedHash string `json:"rejected_hash,omitempty"`
	Error        string `json:"error,omitempty"`
}

// NodeStatus is one node's status, as stored in Redis.
type NodeStatus struct {
	Node    string                  `json:"node"`
	At      time.Time               `json:"at"`
	Modules map[string]ModuleStatus `json:"modules"`
}

// Store shares one kind of module through Redis. Create it with [New], start it with
// [Store.Start].
type Store struct {
	cfg Config
	log hclog.Logger
	k   keys

	mu       sync.Mutex              // serialises changes (applies, publishes): one at a time per node
	applied  map[string]string       // id → the cluster version last acted on
	rejected map[string]ModuleStatus // id → the last rejection (RejectedHash, Error)
	started  bool
	wg       sync.WaitGroup
}

type keys struct{ current, blob, nodes, node, changed string }

func keysOf(kind, node string) keys {
	p := "teragate:modules:" + kind + ":"
	return keys{current: p + "current", blob: p + "blob:", nodes: p + "nodes", node: p + "node:", changed: p + "changed"}
}

// New returns a store; it does nothing until [Store.Start].
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil || cfg.Kind == "" || cfg.NodeID == "" || cfg.Target == nil {
		return nil, errors.New("modsync: Client, Kind, NodeID and Target are required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.StatusTTL <= 0 {
		cfg.StatusTTL = 30 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Store{cfg: cfg, log: cfg.Logger, k: keysOf(cfg.Kind, cfg.NodeID), applied: map[string]string{}, rejected: map[string]ModuleStatus{}}, nil
}

// Hash returns the sha256 hex of data, the version name of a module.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// publish sets the current version of an id (ARGV[1]) to ARGV[2] (a hash, or "-" to delete it),
// storing the bytes ARGV[3] under KEYS[2] unless deleting; the bytes of the version it replaces
// expire after ARGV[5] seconds unless another id uses them. It notifies KEYS[3] and returns 1 only
// when the current version changed.
var publish = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then
  if ARGV[2] ~= '-' then redis.call('PERSIST', KEYS[2]) end
  return 0
end
if ARGV[2] ~= '-' then
  redis.call('SET', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if old and old ~= '-' then
  local used = false
  for _, h in ipairs(redis.call('HVALS', KEYS[1])) do
    if h == old then used = true end
  end
  if not used then redis.call('EXPIRE', ARGV[4] .. old, tonumber(ARGV[5])) end
end
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1`)

// Start subscribes to the changes, brings this node in line with the cluster and follows it
// until ctx is done. local are the modules this node loaded from its own directory at start: one
// whose id the cluster does not know yet is published (the first node of a cluster seeds it);
// for an id the cluster knows, the cluster's version wins (a node that was down missed it). It
// returns once the node serves the cluster's versions.
func (s *Store) Start(ctx context.Context, local map[string][]byte) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("modsync: already started")
	}
	s.started = true
	s.mu.Unlock()
	sub := s.cfg.Client.Subscribe(ctx, s.k.changed)
	if _, err := sub.Receive(ctx); err != nil { // the subscription is live before the first read
		_ = sub.Close()
		return fmt.Errorf("modsync: subscribe: %w", err)
	}
	cur, err := s.cfg.Client.HGetAll(ctx, s.k.current).Result()
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("modsync: read the current %s: %w", s.cfg.Kind, err)
	}
	for _, id := range slices.Sorted(maps.Keys(local)) {
		data := local[id]
		h := Hash(data)
		if want, ok := cur[id]; ok {
			if want != h {
				s.log.Info("a local file differs from the cluster's version: the cluster's serves (write the file again to publish it)", "id", id, "file", short(h), "cluster", short(want))
			}
			continue
		}
		s.mu.Lock()
		if _, err := s.publishLocked(ctx, id, data); err != nil {
			s.log.Warn("could not publish a local module", "id", id, "error", err)
		}
		s.mu.Unlock()
	}
	for _, id := range slices.Sorted(maps.Keys(cur)) {
		s.sync(ctx, id, cur[id])
	}
	s.mu.Lock()
	s.writeStatus(ctx)
	s.mu.Unlock()
	s.wg.Add(2)
	go s.listen(ctx, sub)
	go s.loop(ctx)
	return nil
}

// Wait waits for the store's goroutines, which end with the context given to Start.
func (s *Store) Wait() { s.wg.Wait() }

func (s *Store) listen(ctx context.Context, sub *redis.PubSub) {
	defer s.wg.Done()
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			s.syncID(ctx, m.Payload)
		}
	}
}

// loop re-reads the current versions every Resync and rewrites the node's status every
// StatusTTL/3.
func (s *Store) loop(ctx context.Context) {
	defer s.wg.Done()
	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	status := time.NewTicker(s.cfg.StatusTTL / 3)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			// Leave the view at once rather than after StatusTTL.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = s.cfg.Client.Del(dctx, s.k.node+s.cfg.NodeID).Err()
			_ = s.cfg.Client.ZRem(dctx, s.k.nodes, s.cfg.NodeID).Err()
			cancel()
			return
		case <-resync.C:
			cur, err := s.cfg.Client.HGetAll(ctx, s.k.current).Result()
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("could not re-read the cluster's modules", "error", err)
				}
				continue
			}
			for _, id := range slices.Sorted(maps.Keys(cur)) {
				s.sync(ctx, id, cur[id])
			}
		case <-status.C:
			s.mu.Lock()
			s.writeStatus(ctx)
			s.mu.Unlock()
		}
	}
}

// syncID brings id in line with its current version in Redis.
func (s *Store) syncID(ctx context.Context, id string) {
	want, err := s.cfg.Client.HGet(ctx, s.k.current, id).Result()
	if errors.Is(err, redis.Nil) {
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not read a module's current version", "id", id, "error", err)
		}
		return
	}
	s.sync(ctx, id, want)
}

// sync makes this node serve want (a hash or [Deleted]) for id, unless it already acted on it.
func (s *Store) sync(ctx context.Context, id, want string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applied[id] == want {
		return
	}
	if want == Deleted {
		s.cfg.Target.Remove(id)
		s.applied[id] = want
		delete(s.rejected, id)
		s.log.Info("module deleted in the cluster: the default serves", "id", id)
		s.count("removed")
		s.writeStatus(ctx)
		return
	}
	data, err := s.cfg.Client.Get(ctx, s.k.blob+want).Bytes()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		// Not marked applied: the next resync tries again (a newer version may have replaced it).
		s.log.Warn("could not fetch a module's bytes", "id", id, "hash", short(want), "error", err)
		s.count("missing")
		return
	}
	if got := Hash(data); got != want {
		s.reject(id, want, fmt.Errorf("the stored bytes hash to %s", short(got)))
		s.applied[id] = want
		s.writeStatus(ctx)
		return
	}
	s.applied[id] = want
	if err := s.cfg.Target.Apply(id, want, data); err != nil {
		s.reject(id, want, err)
	} else {
		delete(s.rejected, id)
		s.log.Info("cluster module loaded", "id", id, "hash", short(want))
		s.count("loaded")
	}
	s.writeStatus(ctx)
}

func (s *Store) reject(id, hash string, err error) {
	s.rejected[id] = ModuleStatus{RejectedHash: hash, Error: err.Error()}
	s.log.Warn("module rejected on this node; its previous version keeps serving", "id", id, "hash", short(hash), "error", err)
	s.count("rejected")
}

func (s *Store) count(result string) {
	if s.cfg.OnApply != nil {
		s.cfg.OnApply(result)
	}
}

// Publish makes data, which this node has accepted, the current version of id in the cluster,
// and serves it here too (a version received meanwhile would otherwise serve on this node
// only). It returns the version's hash and whether the current version changed.
func (s *Store) Publish(ctx context.Context, id string, data []byte) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Hash(data)
	changed, err := s.publishLocked(ctx, id, data)
	if err != nil {
		s.reject(id, h, err)
		s.writeStatus(ctx)
		return h, false, err
	}
	if err := s.cfg.Target.Apply(id, h, data); err != nil { // no-op unless a sync came in between
		s.reject(id, h, err)
	} else {
		delete(s.rejected, id)
	}
	s.writeStatus(ctx)
	return h, changed, nil
}

func (s *Store) publishLocked(ctx context.Context, id string, data []byte) (bool, error) {
	if int64(len(data)) > s.cfg.MaxBytes {
		return false, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), s.cfg.MaxBytes)
	}
	h := Hash(data)
	n, err := publish.Run(ctx, s.cfg.Client, []string{s.k.current, s.k.blob + h, s.k.changed},
		id, h, data, s.k.blob, int64(s.cfg.Grace/time.Second)).Int()
	if err != nil {
		return false, fmt.Errorf("modsync: publish %s: %w", id, err)
	}
	s.applied[id] = h
	if n == 1 {
		s.log.Info("module published to the cluster", "id", id, "hash", short(h), "bytes", len(data))
	}
	return n == 1, nil
}

// Delete makes every node serve the default of id (its built-in, or nothing), this one included.
// It reports whether the cluster had a version of id.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := publish.Run(ctx, s.cfg.Client, []string{s.k.current, s.k.blob + Deleted, s.k.changed},
		id, Deleted, "", s.k.blob, int64(s.cfg.Grace/time.Second)).Int()
	if err != nil {
		return false, fmt.Errorf("modsync: delete %s: %w", id, err)
	}
	s.cfg.Target.Remove(id)
	s.applied[id] = Deleted
	delete(s.rejected, id)
	if n == 1 {
		s.log.Info("module deleted from the cluster", "id", id)
	}
	s.writeStatus(ctx)
	return n == 1, nil
}

// Rejected records that this node refused data for id (a file dropped on it): the node's status
// shows the reason, and nothing is published.
func (s *Store) Rejected(ctx context.Context, id string, data []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := ""
	if data != nil {
		h = Hash(data)
	}
	s.reject(id, h, err)
	s.writeStatus(ctx)
}

// Current returns the cluster's current version of id: a hash, [Deleted], or "" when unknown.
func (s *Store) Current(ctx context.Context, id string) (string, error) {
	h, err := s.cfg.Client.HGet(ctx, s.k.current, id).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return h, err
}

// writeStatus writes this node's status (s.mu held).
func (s *Store) writeStatus(ctx context.Context) {
	st := NodeStatus{Node: s.cfg.NodeID, At: time.Now().UTC(), Modules: map[string]ModuleStatus{}}
	for id, h := range s.cfg.Target.Serving() {
		st.Modules[id] = ModuleStatus{Hash: h}
	}
	for id, r := range s.rejected {
		m := st.Modules[id]
		m.RejectedHash, m.Error = r.RejectedHash, r.Error
		st.Modules[id] = m
	}
	b, _ := json.Marshal(st)
	_, err := s.cfg.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.k.node+s.cfg.NodeID, b, s.cfg.StatusTTL)
		p.ZAdd(ctx, s.k.nodes, redis.Z{Score: float64(st.At.UnixMilli()), Member: s.cfg.NodeID})
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("could not write the node's module status", "error", err)
	}
}

// View is the cluster's state of one kind of module.
type View struct {
	// Current maps ids to their current version (a hash, or [Deleted]).
	Current map[string]string
	// Nodes are the live nodes' statuses, by node id.
	Nodes map[string]NodeStatus
}

// IDView is the cluster's state of one id.
type IDView struct {
	// Hash is the cluster's current version ("" when deleted or never shared: the default).
	Hash string `json:"cluster_version_hash"`
	// Converged is true when every live node serves the same version, the current one if any.
	Converged bool `json:"converged"`
	// Nodes is what each live node serves, and its last rejection.
	Nodes map[string]ModuleStatus `json:"nodes"`
}

// View reads the cluster's state. Nodes whose status expired are dropped from the node set.
func (s *Store) View(ctx context.Context) (View, error) {
	v := View{Nodes: map[string]NodeStatus{}}
	cur, err := s.cfg.Client.HGetAll(ctx, s.k.current).Result()
	if err != nil {
		return v, err
	}
	v.Current = cur
	ids, err := s.cfg.Client.ZRange(ctx, s.k.nodes, 0, -1).Result()
	if err != nil || len(ids) == 0 {
		return v, err
	}
	ks := make([]string, len(ids))
	for i, id := range ids {
		ks[i] = s.k.node + id
	}
	vals, err := s.cfg.Client.MGet(ctx, ks...).Result()
	if err != nil {
		return v, err
	}
	for i, val := range vals {
		str, ok := val.(string)
		if !ok {
			_ = s.cfg.Client.ZRem(ctx, s.k.nodes, ids[i]).Err() // expired: the node stopped
			continue
		}
		var st NodeStatus
		if json.Unmarshal([]byte(str), &st) == nil {
			v.Nodes[ids[i]] = st
		}
	}
	return v, nil
}

// IDs returns every id the view knows of (current or served by a node), sorted.
func (v View) IDs() []string {
	set := map[string]bool{}
	for id := range v.Current {
		set[id] = true
	}
	for _, n := range v.Nodes {
		for id := range n.Modules {
			set[id] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// ID returns the view of one id.
func (v View) ID(id string) IDView {
	out := IDView{Nodes: map[string]ModuleStatus{}}
	if h := v.Current[id]; h != Deleted {
		out.Hash = h
	}
	out.Converged = true
	first, seen := "", false
	for node, st := range v.Nodes {
		m := st.Modules[id]
		out.Nodes[node] = m
		if out.Hash != "" && m.Hash != out.Hash {
			out.Converged = false
		}
		if seen && m.Hash != first {
			out.Converged = false
		}
		first, seen = m.Hash, true
	}
	return out
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
