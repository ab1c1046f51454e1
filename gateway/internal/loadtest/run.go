package loadtest

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// harness is the state of one run.
type harness struct {
	cfg     Config
	base    *url.URL
	clients []*client
	warmRSS int64 // idle mode: the server's RSS after the first step of clients
	shards  []counterShard
	hist    *Histogram

	// Measurement window as Unix seconds (float64 bits): events whose
	// header.time falls in [winStart, winEnd) are measured.
	winStart, winEnd atomic.Uint64

	connected, connectErrs, disconnected atomic.Int64
	// openAt holds when each open of the connect phase completed (unix nanoseconds), in
	// completion order up to openSeq: the pace of the first and last thousand.
	openAt                 []int64
	openSeq                atomic.Int64
	published, publishErrs atomic.Int64
	errMu                  sync.Mutex
	firstErrs              []string

	closing atomic.Bool
	readers sync.WaitGroup

	// opens counts websocket opens (reconnections too), open the websockets
	// open now; pid is the server's pid (it changes when a storm restarts
	// the server).
	opens, open atomic.Int64
	pid         atomic.Int64
	seriesMu    sync.Mutex
	series      []Sample
	// storm is the state of a storm run (nil otherwise); reader, when not
	// nil, replaces read as what runs a connected client.
	storm  *storm
	reader func(*client)
}

const numShards = 64

// Run performs one bench run and returns its report. It returns an error
// only when the run could not be done at all (bad config, no client could
// connect, ctx cancelled); partial failures are counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: base URL: %w", ErrConfig, err)
	}
	h := &harness{cfg: cfg, base: base, shards: make([]counterShard, numShards), hist: NewHistogram(numShards)}
	h.setWindow(math.Inf(1), math.Inf(1))
	h.pid.Store(int64(cfg.ServerPID))
	h.plan()
	defer h.closeAll()
	var rep *Report
	if cfg.Storm != nil {
		rep, err = h.runStorm(ctx)
	} else {
		rep, err = h.run(ctx)
	}
	if rep != nil {
		rep.Series = h.takeSeries()
	}
	return rep, err
}

// plan lays out the clients: users first, then participants, then devices.
func (h *harness) plan() {
	add := func(k Kind, n, entities int) {
		for i := 0; i < n; i++ {
			e := i
			if entities > 0 {
				e = i % entities
			}
			h.clients = append(h.clients, &client{idx: len(h.clients), kind: k, entity: e})
		}
	}
	var nu, np, nd int
	if h.cfg.Dir != nil {
		nu, np, nd = len(h.cfg.Dir.Users), len(h.cfg.Dir.Participants), len(h.cfg.Dir.Devices)
	}
	add(KindUser, h.cfg.Clients.Users, nu)
	add(KindParticipant, h.cfg.Clients.Participants, np)
	add(KindDevice, h.cfg.Clients.Devices, nd)
}

func (h *harness) setWindow(start, end float64) {
	h.winStart.Store(math.Float64bits(start))
	h.winEnd.Store(math.Float64bits(end))
}

func (h *harness) window() (float64, float64) {
	return math.Float64frombits(h.winStart.Load()), math.Float64frombits(h.winEnd.Load())
}

func (h *harness) noteErr(err error) {
	h.errMu.Lock()
	if len(h.firstErrs) < 5 {
		h.firstErrs = append(h.firstErrs, err.Error())
	}
	h.errMu.Unlock()
}

// totals sums the client counters.
func (h *harness) totals() (received, bytes, outside, other, bad int64) {
	for i := range h.shards {
		s := &h.shards[i]
		received += s.received.Load()
		bytes += s.bytes.Load()
		outside += s.outside.Load()
		other += s.other.Load()
		bad += s.bad.Load()
	}
	return
}

func (h *harness) run(ctx context.Context) (*Report, error) {
	rep, baseSrv, err := h.newReport()
	if err != nil {
		return nil, err
	}
	progCtx, stopProgress := context.WithCancel(ctx)
	progDone := make(chan struct{})
	go h.progress(progCtx, progDone, time.Now())
	defer func() { stopProgress(); <-progDone }()

	connectEnd, err := h.connectAll(ctx, rep)
	if err != nil {
		return nil, err
	}
	switch {
	case h.cfg.ConnectOnly:
		err = h.finishConnectOnly(ctx, rep, baseSrv, connectEnd)
	case h.cfg.Idle:
		err = h.finishIdle(ctx, rep, baseSrv)
	default:
		err = h.measureDeliveries(ctx, rep, baseSrv)
	}
	if err != nil {
		return nil, err
	}
	rep.Disconnected = int(h.disconnected.Load())
	rep.Errors = h.errs()
	return rep, nil
}

func (h *harness) errs() []string {
	h.errMu.Lock()
	defer h.errMu.Unlock()
	return append([]string(nil), h.firstErrs...)
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// sleepCtx sleeps for d (nothing when d ≤ 0) unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
