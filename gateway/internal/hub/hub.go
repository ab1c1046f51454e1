package hub

import (
	"context"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// Config configures a [Hub]. Zero values get the documented defaults.
type Config struct {
	// MaxQueueFrames bounds the frames waiting for one connection. Zero value means 1024.
	MaxQueueFrames int
	// MaxQueueBytes bounds the bytes waiting for one connection. Zero value means 4 MiB.
	MaxQueueBytes int
	// WriteTimeout is how long one write to a client may block. Zero value means 10s.
	WriteTimeout time.Duration
	// PingInterval is the time between two server pings to a client. Zero value means 10s.
	PingInterval time.Duration
	// PongTimeout closes a connection that sent nothing (pongs included) for that long.
	// Zero value means 30s.
	PongTimeout time.Duration
	// CloseGrace is how long a close handshake may take before the connection is torn down.
	// Zero value means 2s.
	CloseGrace time.Duration
	// Metrics receives the hub's counters. Nil means a private, unexported set.
	Metrics *metrics.Metrics
	// Logger is the hub's logger. Nil means no logging.
	Logger hclog.Logger
}

func (c *Config) defaults() {
	if c.MaxQueueFrames <= 0 {
		c.MaxQueueFrames = 1024
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 4 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = 30 * time.Second
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = 2 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

const numShards = 64

// pingSlots is how many ticks one ping interval is spread over.
const pingSlots = 10

// Hub is the index of open connections, sharded by uuid: "every socket of kind K" and "every socket
// of entity U" without a global lock.
type Hub struct {
	cfg    Config
	seed   maphash.Seed
	shards [numShards]shard
	nextID atomic.Uint64
	count  [directory.KindService + 1]atomic.Int64
	ix     index
}

type shard struct {
	mu     sync.RWMutex
	byUUID map[string][]*Conn
	byKind [directory.KindService + 1][]*Conn
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	cfg.defaults()
	h := &Hub{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].byUUID = map[string][]*Conn{}
	}
	h.ix.init()
	return h
}

// Config returns the hub's configuration with defaults applied.
func (h *Hub) Config() Config { return h.cfg }

func (h *Hub) shardOf(uuid string) *shard {
	return &h.shards[maphash.String(h.seed, uuid)%numShards]
}

// Register adds a connection for an authenticated entity. nc is the connection's net.Conn, to
// which the hub writes frames directly; the caller keeps reading from it.
func (h *Hub) Register(nc net.Conn, kind directory.Kind, uuid string, format Format, access directory.Access) *Conn {
	return h.RegisterWith(nc, kind, uuid, access, ConnOptions{Format: format})
}

// RegisterWith is [Hub.Register] with options (positioned frames, replay mode).
func (h *Hub) RegisterWith(nc net.Conn, kind directory.Kind, uuid string, access directory.Access, o ConnOptions) *Conn {
	c := &Conn{hub: h, id: h.nextID.Add(1), kind: kind, uuid: uuid, format: o.Format, nc: nc,
		positions: o.Positions, replaying: o.Positions && o.Replay}
	_, c.vectored = nc.(*net.TCPConn)
	c.access.Store(&access)
	c.Touch()
	// Indexed before it can be found (and removed) by uuid or kind.
	h.ix.mu.Lock()
	h.ix.add(c, access)
	h.ix.mu.Unlock()
	s := h.shardOf(uuid)
	s.mu.Lock()
	c.shard = s
	s.byUUID[uuid] = append(s.byUUID[uuid], c)
	c.kindPos = len(s.byKind[kind])
	s.byKind[kind] = append(s.byKind[kind], c)
	s.mu.Unlock()
	h.count[kind].Add(1)
	h.cfg.Metrics.ConnOpened(kind)
	return c
}

// Remove takes a connection out of the index and counts its close reason. It is idempotent and
// reports whether this call removed it.
func (h *Hub) Remove(c *Conn) bool {
	s := c.shard
	s.mu.Lock()
	if c.removed {
		s.mu.Unlock()
		return false
	}
	c.removed = true
	list := s.byUUID[c.uuid]
	for i, x := range list {
		if x == c {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(s.byUUID, c.uuid)
	} else {
		s.byUUID[c.uuid] = list
	}
	kl := s.byKind[c.kind]
	last := len(kl) - 1
	kl[c.kindPos] = kl[last]
	kl[c.kindPos].kindPos = c.kindPos
	kl[last] = nil
	s.byKind[c.kind] = kl[:last]
	s.mu.Unlock()
	h.ix.mu.Lock()
	h.ix.remove(c)
	h.ix.mu.Unlock()
	h.count[c.kind].Add(-1)
	h.cfg.Metrics.ConnClosed(c.kind, c.CloseReason())
	return true
}

// AppendKind appends every open connection of kind k to dst and returns it.
func (h *Hub) AppendKind(dst []*Conn, k directory.Kind) []*Conn {
	if !k.Valid() {
		return dst
	}
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		dst = append(dst, s.byKind[k]...)
		s.mu.RUnlock()
	}
	return dst
}

// AppendEntity appends the open connections of the entity uuid to dst, only those of kind k unless
// k is 0.
func (h *Hub) AppendEntity(dst []*Conn, k directory.Kind, uuid string) []*Conn {
	s := h.shardOf(uuid)
	s.mu.RLock()
	for _, c := range s.byUUID[uuid] {
		if k == 0 || c.kind == k {
			dst = append(dst, c)
		}
	}
	s.mu.RUnlock()
	return dst
}

// Count returns the number of open connections of kind k (all kinds when k is 0).
func (h *Hub) Count(k directory.Kind) int {
	if k == 0 {
		var n int64
		for i := range h.count {
			n += h.count[i].Load()
		}
		return int(n)
	}
	if !k.Valid() {
		return 0
	}
	return int(h.count[k].Load())
}

// CloseEntity closes every connection of the entity uuid (of kind k, or all kinds when k is 0)
// with code and text, counting reason. It returns how many it closed.
func (h *Hub) CloseEntity(k directory.Kind, uuid string, code int, text, reason string) int {
	conns := h.AppendEntity(nil, k, uuid)
	for _, c := range conns {
		c.Close(code, text, reason)
	}
	return len(conns)
}

// CloseAll closes every connection with code and text, counting reason.
func (h *Hub) CloseAll(code int, text, reason string) int {
	var all []*Conn
	for k := directory.KindUser; k <= directory.KindService; k++ {
		all = h.AppendKind(all, k)
	}
	for _, c := range all {
		c.Close(code, text, reason)
	}
	return len(all)
}

// UpdateDirectory refreshes every connection's access handle from snap and closes (code 4000) the
// connections of entities that left the directory or were disabled, as OpenTera does on delete.
// Handles and the index change together, a chunk of connections at a time, so the router is
// never held up for the whole reload.
func (h *Hub) UpdateDirectory(snap *directory.Snapshot) {
	var all, closing []*Conn
	for k := directory.KindUser; k <= directory.KindService; k++ {
		all = h.AppendKind(all, k)
	}
	const chunk = 256
	for len(all) > 0 {
		part := all[:min(chunk, len(all))]
		all = all[len(part):]
		h.ix.mu.Lock()
		for _, c := range part {
			a, ok := snap.Principal(c.kind, c.uuid)
			if !ok || !snap.Enabled(c.kind, c.uuid) {
				closing = append(closing, c)
				continue
			}
			c.access.Store(&a)
			if c.ixIn { // not removed meanwhile
				h.ix.remove(c)
				h.ix.add(c, a)
			}
		}
		h.ix.mu.Unlock()
	}
	for _, c := range closing {
		c.Close(CloseDisconnect, "CMD_CLIENT_DISCONNECT", metrics.DisconnectDirectory)
	}
}

// Run pings connections and enforces the pong timeout until ctx is done: every tick it handles
// one tenth of the shards, so each connection is pinged once per PingInterval with no per-socket
// timer.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.PingInterval / pingSlots)
	defer t.Stop()
	var slot int
	var scratch []*Conn
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			scratch = h.pingSlot(slot, now, scratch[:0])
			slot = (slot + 1) % pingSlots
		}
	}
}

func (h *Hub) pingSlot(slot int, now time.Time, scratch []*Conn) []*Conn {
	for i := slot; i < numShards; i += pingSlots {
		s := &h.shards[i]
		s.mu.RLock()
		for k := range s.byKind {
			scratch = append(scratch, s.byKind[k]...)
		}
		s.mu.RUnlock()
	}
	deadline := now.Add(-h.cfg.PongTimeout).UnixNano()
	for _, c := range scratch {
		if c.lastSeen.Load() < deadline {
			h.cfg.Logger.Debug("pong timeout", "kind", c.kind, "uuid", c.uuid, "conn", c.id)
			c.Abort(metrics.DisconnectPongTimeout)
			continue
		}
		c.ping()
	}
	clear(scratch)
	return scratch
}
