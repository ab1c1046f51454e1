package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// connectAll logs every client in and opens its websocket, and reports the rate and its CPU. It
// returns the CPU sample taken when the last client was connected.
func (h *harness) connectAll(ctx context.Context, rep *Report) (cpuSample, error) {
	d := newDialer(h.base, h.cfg.Target, h.cfg.Format, h.cfg.Dir, h.cfg.ConnectConcurrency, h.tlsConfig())
	defer d.http.CloseIdleConnections()
	if h.cfg.Target == TargetGateway {
		rep.UserLogin = string(h.cfg.UserLogin)
		if h.cfg.UserLogin == UserLoginToken && h.cfg.Clients.Users > 0 {
			// Not measured: the first login of each user, by password.
			if err := h.prelogin(ctx, d); err != nil {
				return cpuSample{}, err
			}
		}
	}
	rep.TLS = h.base.Scheme == "https"
	cs, err := h.sampleCPU()
	if err != nil {
		return cpuSample{}, err
	}
	t0 := time.Now()
	h.openAt = make([]int64, len(h.clients))
	connect := h.connect
	if h.cfg.Idle {
		connect = func(ctx context.Context, d *dialer) error { return h.connectIdle(ctx, d, rep) }
	}
	if err := connect(ctx, d); err != nil {
		return cpuSample{}, err
	}
	rep.ConnectSeconds = time.Since(t0).Seconds()
	rep.Connected = int(h.connected.Load())
	rep.ConnectErrors = int(h.connectErrs.Load())
	if rep.Connected == 0 {
		return cpuSample{}, fmt.Errorf("loadtest: no client connected: %v", h.errs())
	}
	rep.ConnectPerSec = float64(rep.Connected) / rep.ConnectSeconds
	rep.FirstThousandPerSec, rep.LastThousandPerSec = paceEnds(h.openAt[:min(int(h.openSeq.Load()), len(h.openAt))], t0, 1000)
	ce, err := h.sampleCPU()
	if err != nil {
		return cpuSample{}, err
	}
	h.connectCPU(rep, cs, ce)
	return ce, nil
}

// prelogin logs every user entity the clients use in once by password and
// keeps its user_token for the measured logins.
func (h *harness) prelogin(ctx context.Context, d *dialer) error {
	n := min(h.cfg.Clients.Users, len(h.cfg.Dir.Users))
	d.userTokens = make([]string, len(h.cfg.Dir.Users))
	sem := make(chan struct{}, h.cfg.ConnectConcurrency)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tok, err := d.userToken(ctx, i)
			if err != nil {
				if failed.Add(1) == 1 {
					h.noteErr(err)
				}
				return
			}
			d.userTokens[i] = tok
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("loadtest: %d of %d user password logins failed: %v", f, n, h.errs())
	}
	return ctx.Err()
}

// connect opens every client at ConnectRate (unlimited when negative) with
// at most ConnectConcurrency in flight.
func (h *harness) connect(ctx context.Context, d *dialer) error {
	return h.connectSome(ctx, d, h.clients)
}

// idleWarmShare: idle mode first connects every idleWarmShare-th client, measures, then the rest.
const idleWarmShare = 10

// connectIdle opens the clients of idle mode in two steps: every tenth client first (all kinds,
// so whatever the first sockets of each kind set up — plugins compiled on first use, pools,
// buffers — is there), then, once the server's traffic settled, the server's RSS is noted and
// the other clients open. The report then has the RSS per connection from the start and per
// connection of the second step (what one more idle connection costs).
func (h *harness) connectIdle(ctx context.Context, d *dialer, rep *Report) error {
	if len(h.clients) < 2*idleWarmShare || h.cfg.ServerPID <= 0 {
		return h.connect(ctx, d)
	}
	var first, rest []*client
	for i, c := range h.clients {
		if i%idleWarmShare == 0 {
			first = append(first, c)
		} else {
			rest = append(rest, c)
		}
	}
	if err := h.connectSome(ctx, d, first); err != nil {
		return err
	}
	if err := h.settle(ctx, rep); err != nil {
		return err
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	s, err := ReadProcStat(h.cfg.ServerPID)
	if err != nil {
		return err
	}
	rep.IdleWarmClients = int(h.connected.Load())
	rep.ServerRSSWarmMiB = mib(s.RSS)
	h.warmRSS = s.RSS
	return h.connectSome(ctx, d, rest)
}

// connectSome opens the clients cs at ConnectRate (unlimited when negative) with at most
// ConnectConcurrency in flight.
func (h *harness) connectSome(ctx context.Context, d *dialer, cs []*client) error {
	sem := make(chan struct{}, h.cfg.ConnectConcurrency)
	var wg sync.WaitGroup
	start := time.Now()
	interval := 0.0
	if h.cfg.ConnectRate > 0 {
		interval = float64(time.Second) / h.cfg.ConnectRate
	}
	for i, c := range cs {
		if err := sleepCtx(ctx, time.Until(start.Add(time.Duration(float64(i)*interval)))); err != nil {
			wg.Wait()
			return err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := d.open(ctx, c); err != nil {
				h.connectErrs.Add(1)
				h.noteErr(err)
				return
			}
			if i := h.openSeq.Add(1) - 1; int(i) < len(h.openAt) {
				h.openAt[i] = time.Now().UnixNano()
			}
			h.connected.Add(1)
			h.opens.Add(1)
			h.open.Add(1)
			h.readers.Add(1)
			if h.reader != nil {
				go h.reader(c)
			} else {
				go h.read(c)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// read is a client's read loop: it counts frames and records latencies.
func (h *harness) read(c *client) {
	defer h.readers.Done()
	defer h.open.Add(-1)
	sh := &h.shards[c.idx%numShards]
	buf := make([]byte, 0, 512)
	for {
		typ, b, err := readFrame(c.ws, buf)
		buf = b
		if err != nil {
			if !h.closing.Load() {
				h.disconnected.Add(1)
				h.noteErr(fmt.Errorf("loadtest: %s client %d: read: %w", c.kind, c.idx, err))
			}
			return
		}
		now := time.Now()
		t, ours, ok := parseFrame(b, typ == websocket.BinaryMessage)
		switch {
		case !ours:
			sh.other.Add(1)
			continue
		case !ok:
			sh.bad.Add(1)
			continue
		}
		ws, we := h.window()
		if t < ws || t >= we {
			sh.outside.Add(1)
			continue
		}
		sh.received.Add(1)
		sh.bytes.Add(int64(len(b)))
		lat := now.UnixNano() - int64(t*1e9)
		if lat < 0 {
			lat = 0
		}
		h.hist.Record(c.idx, uint64(lat/1000))
	}
}

// closeAll closes every client and waits for the readers.
func (h *harness) closeAll() {
	h.closing.Store(true)
	for _, c := range h.clients {
		if c.ws != nil {
			_ = c.ws.Close()
		}
	}
	h.readers.Wait()
}

// tlsConfig returns the client TLS settings (nil: Go's defaults).
func (h *harness) tlsConfig() *tls.Config {
	if !h.cfg.InsecureSkipVerify {
		return nil
	}
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in, for self-signed test servers
}

// paceEnds returns the opens per second of the first n opens (from start) and of the last n (from
// the open before them), given the opens' completion times; 0, 0 with fewer than 2n opens.
func paceEnds(at []int64, start time.Time, n int) (first, last float64) {
	if len(at) < 2*n {
		return 0, 0
	}
	ts := slices.Clone(at)
	slices.Sort(ts)
	if d := time.Duration(ts[n-1] - start.UnixNano()); d > 0 {
		first = float64(n) / d.Seconds()
	}
	if d := time.Duration(ts[len(ts)-1] - ts[len(ts)-1-n]); d > 0 {
		last = float64(n) / d.Seconds()
	}
	return first, last
}
