package presence

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// Redis keys of the cluster registry (per-node ownership + heartbeat).
const (
	redisNodes        = "teragate:presence:nodes"   // set of registered node ids
	redisAlivePrefix  = "teragate:presence:alive:"  // + node: heartbeat key with a TTL
	redisConnsPrefix  = "teragate:presence:conns:"  // + node: hash "<kind>:<uuid>" → sockets open there
	redisReapedPrefix = "teragate:presence:reaped:" // + node: tombstone of a node taken for dead
	redisClaimPrefix  = "teragate:presence:claim:"  // + sha256(message): the node publishing its events
	claimTTL          = 2 * time.Minute             // longer than any bus delivery delay
	defaultNodeTTL    = 10 * time.Second            // a dead node's sockets go offline within ~NodeTTL + NodeTTL/3
)

// RedisClusterConfig configures [NewRedisCluster].
type RedisClusterConfig struct {
	// Client is the shared Redis. Required; not closed by the cluster.
	Client *redis.Client
	// Directory names the entities of the DISCONNECTED events of a dead node. Required.
	Directory *directory.Store
	// NodeID names this node; empty means a random id.
	NodeID string
	// NodeTTL is how long this node's heartbeat key lives: a node silent for that long is dead and
	// its connections are taken offline by the others. It is refreshed every NodeTTL/3.
	// Zero value means 10s.
	NodeTTL time.Duration
	// Logger logs registrations, reaped nodes and Redis errors. Nil means no logging.
	Logger hclog.Logger
	// OnReaped, if set, is called with the number of connections of a dead node this node took
	// offline.
	OnReaped func(n int)
}

// RedisCluster is the Redis side of a cluster-wide presence registry (see RATIONALE.md
// "Presence across nodes"). Every node's [Registry] is a replica fed by the one ordered stream of
// module messages that Redis pub/sub delivers to all nodes; this type keeps what the stream
// cannot:
//
//   - ownership: each node counts its own open sockets in a hash (teragate:presence:conns:<node>),
//     updated in the same Lua script that publishes the CONNECTED/DISCONNECTED message, so the
//     hashes and the stream never disagree;
//   - liveness: a heartbeat key per node with a TTL; a node whose key expired is dead, and one
//     live node (atomically, once) deletes its hash and publishes a DISCONNECTED message per socket
//     it held, which every replica applies like any other;
//   - publish-once: of the N replicas consuming a message, the one whose SET NX on the message's
//     hash succeeds publishes the resulting events;
//   - snapshots for a replica that starts while others run.
//
// The scripts read keys they are not passed, so they need a single Redis, not Redis Cluster.
type RedisCluster struct {
	cfg  RedisClusterConfig
	log  hclog.Logger
	id   string
	seq  atomic.Uint32 // numbers the resync messages
	stop chan struct{}

	// own is what this node has announced and Redis executed: its sockets per entity, the
	// authority to rewrite its hash from when Redis lost it. Announces hold ownMu for reading
	// (they run concurrently), a rewrite holds it for writing.
	ownMu   sync.RWMutex
	ownLock sync.Mutex
	own     map[string]int
	wg      sync.WaitGroup
	once    sync.Once
}

// NewRedisCluster returns the cluster side of this node; call [RedisCluster.Start] before the
// node accepts sockets.
func NewRedisCluster(cfg RedisClusterConfig) (*RedisCluster, error) {
	if cfg.Client == nil || cfg.Directory == nil {
		return nil, errors.New("presence: redis cluster needs a client and a directory")
	}
	if cfg.NodeTTL <= 0 {
		cfg.NodeTTL = defaultNodeTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.NodeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.NodeID = hex.EncodeToString(b[:])
	}
	c := &RedisCluster{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), id: cfg.NodeID, stop: make(chan struct{}), own: map[string]int{}}
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	c.seq.Store(uint32(seed[0]) | uint32(seed[1])<<8 | uint32(seed[2])<<16 | uint32(seed[3])<<24) // nodes' sequences apart
	return c, nil
}

// NodeID returns this node's id.
func (c *RedisCluster) NodeID() string { return c.id }

// Start registers the node, then heartbeats and looks for dead nodes every NodeTTL/3 until Stop.
func (c *RedisCluster) Start(ctx context.Context) error {
	if _, err := c.heartbeat(ctx); err != nil {
		return fmt.Errorf("presence: register node: %w", err)
	}
	c.log.Info("presence node registered", "ttl", c.cfg.NodeTTL)
	c.wg.Add(1)
	go c.loop()
	return nil
}

// heartbeat refreshes the node's key and registration. It reports lost = true when the node was
// no longer registered: Redis lost its data (a restart without persistence) or another node took
// it for dead and reaped its sockets.
func (c *RedisCluster) heartbeat(ctx context.Context) (lost bool, err error) {
	var added *redis.IntCmd
	_, err = c.cfg.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, redisAlivePrefix+c.id, strconv.FormatInt(time.Now().Unix(), 10), c.cfg.NodeTTL)
		added = p.SAdd(ctx, redisNodes, c.id)
		return nil
	})
	if err != nil {
		return false, err
	}
	return added.Val() == 1, nil
}

// Check refreshes the node's heartbeat and, if its registration was lost, rewrites its ownership
// from its own sockets and has every replica resynchronised. The heartbeat runs it every
// NodeTTL/3; the gateway also runs it as soon as its bus is back after a Redis restart.
func (c *RedisCluster) Check(ctx context.Context) error {
	lost, err := c.heartbeat(ctx)
	if err == nil && lost {
		err = c.rewrite(ctx)
	}
	return err
}

// rewriteScript replaces the node's hash with ARGV[3…] (field, count pairs), registers it, and
// publishes the resync message (ARGV[2]) on ARGV[1], in one step.
var rewriteScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SADD', KEYS[2], KEYS[3])
redis.call('DEL', KEYS[4])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1`)

// rewrite restores the node's hash from what it has announced, after its registration was
// lost, and tells every replica to reload the snapshot.
func (c *RedisCluster) rewrite(ctx context.Context) error {
	msg, err := proto.Marshal(&opentera.TeraModuleMessage{Head: &opentera.TeraModuleMessage_Header{
		Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Seq: c.seq.Add(1), Source: ResyncSource, Dest: topic.UserManagerMessages}})
	if err != nil {
		return err
	}
	c.ownMu.Lock()
	defer c.ownMu.Unlock()
	args := []any{topic.UserManagerMessages, msg}
	for f, n := range c.own {
		args = append(args, f, n)
	}
	if err := rewriteScript.Run(ctx, c.cfg.Client, []string{redisConnsPrefix + c.id, redisNodes, c.id, redisReapedPrefix + c.id}, args...).Err(); err != nil {
		return err
	}
	c.log.Warn("presence registration was lost (Redis restarted, or this node was taken for dead): ownership rewritten, replicas resynchronised",
		"entities", len(c.own))
	return nil
}

func (c *RedisCluster) loop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.NodeTTL / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.NodeTTL/3)
		err := c.Check(ctx)
		if err == nil {
			err = c.reap(ctx)
		}
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			c.log.Warn("presence heartbeat failing", "error", err)
		case err == nil && failing:
			failing = false
			c.log.Info("presence heartbeat restored")
		}
	}
}

// NodeAlive reports whether node's heartbeat key lives (this node's always does while it runs).
// Other components holding per-node state (the stations' connections) use it to tell a dead
// node's state from a live one's, with the same NodeTTL.
func (c *RedisCluster) NodeAlive(ctx context.Context, node string) (bool, error) {
	if node == c.id {
		return true, nil
	}
	n, err := c.cfg.Client.Exists(ctx, redisAlivePrefix+node).Result()
	return n == 1, err
}

// Stop ends the heartbeat and unregisters the node. Its sockets must have been closed (and
// announced) before: whatever is left in its hash is taken offline by the other nodes.
func (c *RedisCluster) Stop(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		err = c.cfg.Client.Del(ctx, redisAlivePrefix+c.id).Err()
	})
	return err
}

// announceScript counts one socket more or less in the node's hash and publishes the module
// message, atomically. A close of a socket the node no longer holds (the node was taken for dead
// and reaped meanwhile: its tombstone says so) is not published: the replicas have already
// counted it out. When Redis lost the hash instead (a restart), there is no tombstone and the close
// is published.
var announceScript = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if n < 0 and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`)

// Announce records that a socket of the entity opened (or closed) on this node and publishes
// payload, its CONNECTED (DISCONNECTED) module message, on [topic.UserManagerMessages].
func (c *RedisCluster) Announce(ctx context.Context, kind directory.Kind, uuid string, connected bool, payload []byte) error {
	delta := "1"
	if !connected {
		delta = "-1"
	}
	f := field(kind, uuid)
	c.ownMu.RLock()
	defer c.ownMu.RUnlock()
	err := announceScript.Run(ctx, c.cfg.Client, []string{redisConnsPrefix + c.id, redisReapedPrefix + c.id}, f, delta, topic.UserManagerMessages, payload).Err()
	// The socket is open (closed) here whether or not Redis heard of it: own follows the sockets,
	// and a rewrite after Redis comes back tells the cluster.
	c.ownLock.Lock()
	if connected {
		c.own[f]++
	} else if c.own[f]--; c.own[f] <= 0 {
		delete(c.own, f)
	}
	c.ownLock.Unlock()
	return err
}

func field(kind directory.Kind, uuid string) string { return strconv.Itoa(int(kind)) + ":" + uuid }

// Claim implements [Cluster]: SET NX on the message's hash.
func (c *RedisCluster) Claim(ctx context.Context, payload []byte) bool {
	h := sha256.Sum256(payload)
	ok, err := c.cfg.Client.SetNX(ctx, redisClaimPrefix+hex.EncodeToString(h[:16]), c.id, claimTTL).Result()
	if err != nil {
		// Better twice than never: without Redis, every node publishes.
		c.log.Warn("presence claim failed; publishing anyway", "error", err)
		return true
	}
	return ok
}

// snapshotScript returns every node's hash, flattened, and publishes the marker in the same step.
var snapshotScript = redis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HGETALL', ARGV[3] .. id)
  for i = 1, #h do out[#out + 1] = h[i] end
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return out`)

// Snapshot implements [Cluster].
func (c *RedisCluster) Snapshot(ctx context.Context, marker []byte) ([]Count, error) {
	flat, err := snapshotScript.Run(ctx, c.cfg.Client, []string{redisNodes}, topic.UserManagerMessages, marker, redisConnsPrefix).StringSlice()
	if err != nil {
		return nil, err
	}
	sum := map[string]int{}
	var order []string
	for i := 0; i+1 < len(flat); i += 2 {
		n, _ := strconv.Atoi(flat[i+1])
		if _, ok := sum[flat[i]]; !ok {
			order = append(order, flat[i])
		}
		sum[flat[i]] += n
	}
	out := make([]Count, 0, len(order))
	for _, f := range order {
		kind, uuid, ok := parseField(f)
		if ok {
			out = append(out, Count{Kind: kind, UUID: uuid, N: sum[f]})
		}
	}
	return out, nil
}

func parseField(f string) (directory.Kind, string, bool) {
	k, uuid, ok := strings.Cut(f, ":")
	n, err := strconv.Atoi(k)
	if !ok || err != nil || uuid == "" {
		return 0, "", false
	}
	return directory.Kind(n), uuid, true
}

// reapScript takes a dead node's sockets offline, once: unless the node came back or another node
// got there first, it unregisters the node, deletes its hash and publishes the DISCONNECTED
// messages (ARGV[3…]) built from that hash.
var reapScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return -2 end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[4], '1', 'EX', 86400)
for i = 3, #ARGV do redis.call('PUBLISH', ARGV[2], ARGV[i]) end
return #ARGV - 2`)

// reap looks for registered nodes without a heartbeat and takes their sockets offline.
func (c *RedisCluster) reap(ctx context.Context) error {
	nodes, err := c.cfg.Client.SMembers(ctx, redisNodes).Result()
	if err != nil {
		return err
	}
	for _, id := range nodes {
		if id == c.id {
			continue
		}
		alive, err := c.cfg.Client.Exists(ctx, redisAlivePrefix+id).Result()
		if err != nil {
			return err
		}
		if alive == 1 {
			continue
		}
		conns, err := c.cfg.Client.HGetAll(ctx, redisConnsPrefix+id).Result()
		if err != nil {
			return err
		}
		args := []any{id, topic.UserManagerMessages}
		snap := c.cfg.Directory.Current()
		for f, v := range conns {
			kind, uuid, ok := parseField(f)
			n, _ := strconv.Atoi(v)
			if !ok {
				continue
			}
			ev := EntityEvent(snap, kind, uuid, Disconnected)
			if ev == nil {
				continue
			}
			for range n {
				payload, err := c.encode(topic.Socket(kind, uuid), ev)
				if err != nil {
					return err
				}
				args = append(args, payload)
			}
		}
		n, err := reapScript.Run(ctx, c.cfg.Client, []string{redisNodes, redisAlivePrefix + id, redisConnsPrefix + id, redisReapedPrefix + id}, args...).Int()
		if err != nil {
			return err
		}
		if n >= 0 {
			c.log.Warn("presence node dead (no heartbeat): its connections are offline", "dead_node", id, "connections", n)
			if c.cfg.OnReaped != nil {
				c.cfg.OnReaped(n)
			}
		}
	}
	return nil
}

// encode returns a module message to the user manager, unique thanks to its sequence number (so
// that claims, keyed by the message's hash, tell the messages apart).
func (c *RedisCluster) encode(source string, m proto.Message) ([]byte, error) {
	a, err := opentera.NewAny(m)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(&opentera.TeraModuleMessage{
		Head: &opentera.TeraModuleMessage_Header{Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Seq: c.seq.Add(1), Source: source, Dest: topic.UserManagerMessages},
		Data: []*anypb.Any{a},
	})
}

var _ Cluster = (*RedisCluster)(nil)

// Heartbeats returns, for each of ids whose heartbeat key is alive, the time of its last
// heartbeat (to the second); a node missing from the map has no live heartbeat: it is dead by the
// same rule the reaper applies. The node list of the admin page reads liveness through it.
func (c *RedisCluster) Heartbeats(ctx context.Context, ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = redisAlivePrefix + id
	}
	vals, err := c.cfg.Client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			out[ids[i]] = time.Unix(sec, 0)
		}
	}
	return out, nil
}
