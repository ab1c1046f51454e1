package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/teragate/teragate/gateway/internal/api"
	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// Defaults of [Config].
const (
	DefaultInterval   = time.Second     // how often a node publishes its record
	DefaultRateWindow = 5 * time.Second // the span the rates are computed over
	DefaultTTL        = 30 * time.Second
	// MaxNodes bounds the list (a cluster has a handful of nodes; this is a guard).
	MaxNodes = 1000
)

// Redis keys.
const (
	keyPrefix = "teragate:nodes:stats:" // + node id: the record, JSON, with a TTL
	keyIndex  = "teragate:nodes:index"  // sorted set: node id scored by its record's expiry (unix ms)
)

// Record is what one node publishes about itself.
type Record struct {
	// ID is the node's id: its presence node id with Redis, else its host name.
	ID string `json:"id"`
	// Addr is the address the node advertises (public host, else its listening address).
	Addr string `json:"addr"`
	// StartedAt is when the node started.
	StartedAt time.Time `json:"started_at"`
	// SampledAt is when the figures below were read.
	SampledAt time.Time `json:"sampled_at"`
	// Connections is the number of open websocket connections.
	Connections int64 `json:"connections"`
	// Connects and Deliveries are the cumulative websocket connects and frames queued to clients
	// since the start (teragate_connections_opened_total, teragate_deliveries_total).
	Connects   uint64 `json:"connects_total"`
	Deliveries uint64 `json:"deliveries_total"`
	// ConnectsPerSec and DeliveriesPerSec are their rates over the last rate window.
	ConnectsPerSec   float64 `json:"connects_per_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
}

// Node is one entry of the list: a record and its liveness.
type Node struct {
	Record
	// Up reports whether the node's heartbeat is alive (always true on a single node).
	Up bool `json:"up"`
	// Self marks the node that answered.
	Self bool `json:"self"`
	// HeartbeatAt is the node's last presence heartbeat (to the second), absent when it expired;
	// on a single node, the time of its last sample.
	HeartbeatAt *time.Time `json:"heartbeat_at,omitempty"`
	// UptimeSeconds is SampledAt − StartedAt.
	UptimeSeconds float64 `json:"uptime_s"`
}

// Totals sums the nodes that are up.
type Totals struct {
	Nodes            int     `json:"nodes"`
	Up               int     `json:"up"`
	Connections      int64   `json:"connections"`
	Connects         uint64  `json:"connects_total"`
	Deliveries       uint64  `json:"deliveries_total"`
	ConnectsPerSec   float64 `json:"connects_per_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
}

// List is the answer of GET /api/admin/nodes.
type List struct {
	Now    time.Time `json:"now"`
	Nodes  []Node    `json:"nodes"`
	Totals Totals    `json:"totals"`
}

// Config configures [New].
type Config struct {
	// NodeID names this node. Required.
	NodeID string
	// Addr returns the node's advertised address; it is called at each sample (the listening
	// port is known only once the node listens). Required.
	Addr func() string
	// Sample reads the node's counters. Required.
	Sample func() metrics.NodeTotals
	// Redis, when set, is where the records of every node are kept; nil means a single node.
	Redis *redis.Client
	// Heartbeats returns the last heartbeat of each of ids that has a live one (the presence
	// cluster's). Required with Redis.
	Heartbeats func(ctx context.Context, ids []string) (map[string]time.Time, error)
	// TTL is how long a record lives in Redis without a refresh (with Redis). Zero means 30s.
	TTL time.Duration
	// Interval is how often the node samples and publishes. Zero means 1s.
	Interval time.Duration
	// RateWindow is the span rates are computed over. Zero means 5s.
	RateWindow time.Duration
	// Logger logs publishing failures. Nil means none.
	Logger hclog.Logger
	// Now returns the time; nil means time.Now (tests give a clock).
	Now func() time.Time
}

// sample is one reading of the counters.
type sample struct {
	at                   time.Time
	connects, deliveries uint64
}

// Service samples this node, publishes its record and lists the nodes.
type Service struct {
	cfg     Config
	log     hclog.Logger
	started time.Time

	mu      sync.Mutex
	samples []sample // the last RateWindow of samples, oldest first
	last    Record   // the last record (the single node's list)

	running atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New checks cfg and returns the service; call [Service.Start] once the node listens.
func New(cfg Config) (*Service, error) {
	if cfg.NodeID == "" || cfg.Addr == nil || cfg.Sample == nil {
		return nil, errors.New("nodes: NodeID, Addr and Sample are required")
	}
	if cfg.Redis != nil && cfg.Heartbeats == nil {
		return nil, errors.New("nodes: Heartbeats is required with Redis")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.RateWindow <= 0 {
		cfg.RateWindow = DefaultRateWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start publishes the first record, then one every Interval until Stop. A failure to publish is
// logged (and retried at the next tick): the node list is not worth refusing to serve for.
func (s *Service) Start(ctx context.Context) {
	s.started = s.cfg.Now()
	if err := s.Publish(ctx); err != nil {
		s.log.Warn("node stats not published", "error", err)
	}
	s.running.Store(true)
	go s.loop()
}

func (s *Service) loop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Interval)
		err := s.Publish(ctx)
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			s.log.Warn("node stats not published", "error", err)
		case err == nil && failing:
			failing = false
			s.log.Info("node stats published again")
		}
	}
}

// Stop ends the publishing. The record is left to expire: until its heartbeat is gone the node
// shows up, then down, then (after the record's TTL) not at all.
func (s *Service) Stop(context.Context) error {
	s.once.Do(func() {
		close(s.stop)
		if s.running.Load() {
			<-s.done
		}
	})
	return nil
}

// Publish samples the node and publishes its record (Start's loop calls it every Interval).
func (s *Service) Publish(ctx context.Context) error {
	rec := s.record()
	if s.cfg.Redis == nil {
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	_, err = s.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keyPrefix+rec.ID, b, s.cfg.TTL)
		p.ZAdd(ctx, keyIndex, redis.Z{Score: float64(now.Add(s.cfg.TTL).UnixMilli()), Member: rec.ID})
		p.ZRemRangeByScore(ctx, keyIndex, "-inf", fmt.Sprint(now.UnixMilli()))
		return nil
	})
	return err
}

// record takes a sample and returns the node's record with its rates.
func (s *Service) record() Record {
	now := s.cfg.Now()
	c := s.cfg.Sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, sample{at: now, connects: c.Connects, deliveries: c.Deliveries})
	// Keep the newest sample at or before the window's start (the base of the rates) and after.
	cut := 0
	for i := range s.samples {
		if !s.samples[i].at.After(now.Add(-s.cfg.RateWindow)) {
			cut = i
		}
	}
	s.samples = slices.Delete(s.samples, 0, cut)
	rec := Record{ID: s.cfg.NodeID, Addr: s.cfg.Addr(), StartedAt: s.started, SampledAt: now,
		Connections: c.Connections, Connects: c.Connects, Deliveries: c.Deliveries}
	rec.ConnectsPerSec, rec.DeliveriesPerSec = rates(s.samples)
	s.last = rec
	return rec
}

// rates returns the connects and deliveries per second between the first and the last sample.
func rates(ss []sample) (connects, deliveries float64) {
	if len(ss) < 2 {
		return 0, 0
	}
	first, last := ss[0], ss[len(ss)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0, 0
	}
	return float64(last.connects-first.connects) / dt, float64(last.deliveries-first.deliveries) / dt
}

// List returns every node's record with its liveness, sorted by id, and the totals of the nodes
// that are up.
func (s *Service) List(ctx context.Context) (List, error) {
	now := s.cfg.Now()
	var nodes []Node
	if s.cfg.Redis == nil {
		s.mu.Lock()
		rec := s.last
		s.mu.Unlock()
		hb := rec.SampledAt
		nodes = []Node{{Record: rec, Up: true, HeartbeatAt: &hb}}
	} else {
		var err error
		if nodes, err = s.listRedis(ctx, now); err != nil {
			return List{}, err
		}
	}
	out := List{Now: now, Nodes: nodes}
	for i := range out.Nodes {
		n := &out.Nodes[i]
		n.Self = n.ID == s.cfg.NodeID
		if !n.StartedAt.IsZero() && n.SampledAt.After(n.StartedAt) {
			n.UptimeSeconds = n.SampledAt.Sub(n.StartedAt).Seconds()
		}
		out.Totals.Nodes++
		if !n.Up {
			continue
		}
		out.Totals.Up++
		out.Totals.Connections += n.Connections
		out.Totals.Connects += n.Connects
		out.Totals.Deliveries += n.Deliveries
		out.Totals.ConnectsPerSec += n.ConnectsPerSec
		out.Totals.DeliveriesPerSec += n.DeliveriesPerSec
	}
	return out, nil
}

func (s *Service) listRedis(ctx context.Context, now time.Time) ([]Node, error) {
	ids, err := s.cfg.Redis.ZRangeArgs(ctx, redis.ZRangeArgs{Key: keyIndex, ByScore: true,
		Start: fmt.Sprint(now.UnixMilli()), Stop: "+inf", Count: MaxNodes}).Result()
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []Node{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = keyPrefix + id
	}
	vals, err := s.cfg.Redis.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	beats, err := s.cfg.Heartbeats(ctx, ids)
	if err != nil {
		return nil, err
	}
	nodes := make([]Node, 0, len(ids))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // expired between the two reads
		}
		var rec Record
		if err := json.Unmarshal([]byte(str), &rec); err != nil || rec.ID != ids[i] {
			s.log.Warn("unreadable node record in Redis; skipped", "key", keys[i], "error", err)
			continue
		}
		n := Node{Record: rec}
		if hb, ok := beats[rec.ID]; ok {
			n.Up, n.HeartbeatAt = true, &hb
		}
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes, nil
}

// Mount registers GET /api/admin/nodes (admin principals) with handle (the API's Handle).
func (s *Service) Mount(handle func(pattern, name string, hf http.HandlerFunc), authenticate func(*http.Request) (auth.Principal, error)) {
	handle("GET /api/admin/nodes", "admin_nodes", api.AdminOnly(authenticate, s.serveList))
}

func (s *Service) serveList(w http.ResponseWriter, r *http.Request) {
	l, err := s.List(r.Context())
	if err != nil {
		s.log.Warn("node list failed", "error", err)
		api.WriteError(w, http.StatusServiceUnavailable, "Node list unavailable: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, l)
}
