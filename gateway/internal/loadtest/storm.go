package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// StormMode is how a connect storm breaks every connection at once.
type StormMode string

const (
	// StormDrop: every client closes its TCP connection abruptly at the same
	// moment (a reset, no websocket close frame), as a network blip does.
	StormDrop StormMode = "drop"
	// StormRestart: the server process is killed and started again on the
	// same address and data directory ([StormConfig.Restart]).
	StormRestart StormMode = "restart"
)

// StormConfig describes a connect storm: the clients connect, events are
// published at a steady rate throughout, every connection breaks at once
// (Mode), and each client reconnects by itself — a fresh login and
// websocket open per attempt — with sdk/client's jittered exponential
// backoff. The run reports when the clients are back, the refused logins,
// whether the server's presence matches the open sockets, and the events
// delivered to connected clients.
type StormConfig struct {
	// Mode is what breaks the connections. Zero value means StormDrop.
	Mode StormMode
	// Restart kills the server and starts it again on the same address and
	// data directory; it returns once the new server answers, with its pid
	// (0: unknown). Required for StormRestart.
	Restart func(ctx context.Context) (pid int, err error)
	// Before is the publishing time between the clients being connected
	// and the storm. Zero value means 3s.
	Before time.Duration
	// Timeout is the longest wait for every client to be back. Zero value
	// means 60s.
	Timeout time.Duration
	// PresenceTimeout is the longest wait, once every client is back, for
	// the server's online lists to match the open sockets. Zero value means
	// 30s.
	PresenceTimeout time.Duration
	// After is the publishing time once presence matched. Zero value means
	// 3s.
	After time.Duration
	// BackoffMin and BackoffMax are the reconnection delays, as
	// sdk/client's WithBackoff: the first retry waits about BackoffMin, each
	// failure doubles the delay up to BackoffMax, and every wait is drawn
	// between half and all of the delay. Zero values mean sdk/client's
	// defaults, 250ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Resume makes the clients resume after reconnecting: they open their
	// websocket with resume=1, keep the position of the last frame and
	// reconnect with since=<it>. The report then counts, per client, the
	// events published since its first socket was live against those
	// delivered (each once), the duplicates and the ResumeFailed frames.
	Resume bool
}

func (c *StormConfig) fill(target Target) error {
	if c.Mode == "" {
		c.Mode = StormDrop
	}
	c.Before = orDefault(c.Before, 3*time.Second)
	c.Timeout = orDefault(c.Timeout, 60*time.Second)
	c.PresenceTimeout = orDefault(c.PresenceTimeout, 30*time.Second)
	c.After = orDefault(c.After, 3*time.Second)
	c.BackoffMin = orDefault(c.BackoffMin, 250*time.Millisecond)
	c.BackoffMax = orDefault(c.BackoffMax, 30*time.Second)
	switch {
	case target != TargetGateway:
		return fmt.Errorf("%w: a storm needs the gateway target", ErrConfig)
	case c.Mode != StormDrop && c.Mode != StormRestart:
		return fmt.Errorf("%w: storm mode %q", ErrConfig, c.Mode)
	case c.Mode == StormRestart && c.Restart == nil:
		return fmt.Errorf("%w: a restart storm needs a way to restart the server", ErrConfig)
	case c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("%w: backoff %v..%v", ErrConfig, c.BackoffMin, c.BackoffMax)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// StormDirectory returns identities for a storm: devices devices linked to
// participants of about 100 devices each (one project each), and one user
// in a project of its own, so the devices' presence events do not fan out to
// the user's many sockets.
func StormDirectory(devices int) (*Directory, error) {
	groups := max(1, devices/100)
	d, err := GenerateDirectory(GenerateOptions{Users: 1, Participants: groups, Devices: devices, Projects: groups})
	if err != nil {
		return nil, err
	}
	k := len(d.Projects)
	site := Site{ID: fmt.Sprintf("s%d", k), Name: fmt.Sprintf("Site %d", k)}
	d.Sites = append(d.Sites, site)
	d.Projects = append(d.Projects, Project{ID: fmt.Sprintf("p%d", k), Name: fmt.Sprintf("Project %d", k), Site: site.ID})
	d.Users[0].Projects = []string{d.Projects[k].ID}
	return d, nil
}

// storm is the state of a storm run.
type storm struct {
	h       *harness
	cfg     *StormConfig
	d       *dialer
	ctx     context.Context // ends when the clients must stop
	cancel  context.CancelFunc
	clients []*stormClient

	start    time.Time    // when the run (and its series) started
	at       atomic.Int64 // the storm instant, Unix nanoseconds (0: not yet)
	stopping atomic.Bool
	target   int64 // clients connected when the storm hit

	attempts, reconnects, transportErrs atomic.Int64
	back                                atomic.Int64
	allBack                             chan struct{}
	allBackOnce                         sync.Once

	mu       sync.Mutex
	backAt   []time.Duration // since the storm, in the order clients came back
	statuses map[string]int64
	pubTimes []float64
}

func newStorm(h *harness, d *dialer, start time.Time) *storm {
	ctx, cancel := context.WithCancel(context.Background())
	s := &storm{
		h: h, cfg: h.cfg.Storm, d: d, ctx: ctx, cancel: cancel, start: start,
		allBack: make(chan struct{}), statuses: map[string]int64{},
	}
	for _, c := range h.clients {
		sc := &stormClient{c: c}
		if s.cfg.Resume {
			c.query = "resume=1"
			sc.seen = map[string]struct{}{}
		}
		s.clients = append(s.clients, sc)
	}
	return s
}

// runStorm is [Run] for a storm.
func (h *harness) runStorm(ctx context.Context) (*Report, error) {
	rep := &Report{
		Target: string(h.cfg.Target), Event: string(h.cfg.Event), Format: string(h.cfg.Format),
		Clients: h.cfg.Clients.Total(), Users: h.cfg.Clients.Users, Participants: h.cfg.Clients.Participants,
		Devices: h.cfg.Clients.Devices, Projects: len(h.cfg.Dir.Projects), UserLogin: string(h.cfg.UserLogin),
		TLS: h.base.Scheme == "https",
	}
	d := newDialer(h.base, h.cfg.Target, h.cfg.Format, h.cfg.Dir, h.cfg.ConnectConcurrency, h.tlsConfig())
	// Every client logs in by itself: let more logins share the keep-alive
	// pool than the initial connect needs, within the file descriptors.
	if tr, ok := d.http.Transport.(*http.Transport); ok {
		tr.MaxConnsPerHost = 4 * h.cfg.ConnectConcurrency
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = tr.MaxConnsPerHost, tr.MaxConnsPerHost
	}
	defer d.http.CloseIdleConnections()
	start := time.Now()
	s := newStorm(h, d, start)
	h.storm, h.reader = s, s.runClient
	defer s.stop()

	progCtx, stopProgress := context.WithCancel(ctx)
	progDone := make(chan struct{})
	go h.progress(progCtx, progDone, start)
	defer func() { stopProgress(); <-progDone }()

	if err := s.connect(ctx, rep); err != nil {
		return nil, err
	}
	sr, err := s.run(ctx, rep)
	if err != nil {
		return nil, err
	}
	rep.Storm = sr
	return rep, nil
}

// connect opens the clients and waits for the presence traffic to settle.
func (s *storm) connect(ctx context.Context, rep *Report) error {
	h := s.h
	if h.cfg.UserLogin == UserLoginToken && h.cfg.Clients.Users > 0 {
		if err := h.prelogin(ctx, s.d); err != nil {
			return err
		}
	}
	if pid := h.pid.Load(); pid > 0 {
		if ps, err := ReadProcStat(int(pid)); err == nil {
			rep.ServerRSSBaseMiB = mib(ps.RSS)
		}
	}
	cs, err := h.sampleCPU()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := h.connect(ctx, s.d); err != nil {
		return err
	}
	rep.ConnectSeconds = time.Since(t0).Seconds()
	rep.Connected = int(h.connected.Load())
	rep.ConnectErrors = int(h.connectErrs.Load())
	if rep.Connected == 0 {
		return fmt.Errorf("loadtest: no client connected: %v", h.errs())
	}
	rep.ConnectPerSec = float64(rep.Connected) / rep.ConnectSeconds
	if ce, err := h.sampleCPU(); err == nil {
		h.connectCPU(rep, cs, ce)
	}
	return h.settle(ctx, rep)
}

// run publishes, breaks every connection, waits for the clients and the
// presence lists, publishes a little longer and returns the figures.
func (s *storm) run(ctx context.Context, rep *Report) (*StormReport, error) {
	h := s.h
	s.target = h.open.Load()
	rate := h.cfg.Rate
	if h.cfg.Deliveries > 0 {
		rate = h.cfg.Deliveries / float64(s.target)
	}
	rep.OfferedEventsPerSec = rate
	rep.OfferedDeliveriesPerSec = rate * float64(s.target)
	h.setWindow(0, float64(1<<62))
	stopPublishing, err := s.publish(ctx, rate)
	if err != nil {
		return nil, err
	}
	defer stopPublishing()
	if err := sleepCtx(ctx, s.cfg.Before); err != nil {
		return nil, err
	}
	sr := &StormReport{Mode: string(s.cfg.Mode), Clients: int(s.target), UserSockets: h.cfg.Clients.Users}
	cs, err := h.sampleCPU()
	if err != nil {
		return nil, err
	}
	if err := s.strike(ctx, sr); err != nil {
		return nil, err
	}
	if err := s.awaitBack(ctx, sr); err != nil {
		return nil, err
	}
	if ce, err := h.sampleCPU(); err == nil {
		s.recoveryCPU(sr, cs, ce)
	}
	if err := s.awaitPresence(ctx, sr); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, s.cfg.After); err != nil {
		return nil, err
	}
	stopPublishing()
	s.drain(ctx)
	s.stop()
	s.finish(rep, sr)
	return sr, nil
}

// publish starts publishing stop events to every socket at rate events/s;
// the returned function stops it and waits (it may be called twice).
func (s *storm) publish(ctx context.Context, rate float64) (func(), error) {
	pub, err := s.h.newPublisher([]int{int(s.target)})
	if err != nil {
		return nil, err
	}
	pub.onPublished = func(t float64) {
		s.mu.Lock()
		s.pubTimes = append(s.pubTimes, t)
		s.mu.Unlock()
	}
	// Halting lets the requests in flight finish: an event the server
	// accepted is then always counted.
	halt, cancel := context.WithCancel(ctx)
	pub.halt = halt
	done := make(chan struct{})
	go func() {
		defer close(done)
		now := time.Now()
		pub.run(ctx, now, now.Add(24*time.Hour), rate, s.h.cfg.Publishers)
	}()
	return func() { cancel(); <-done }, nil
}

// strike breaks every connection at once.
func (s *storm) strike(ctx context.Context, sr *StormReport) error {
	now := time.Now()
	s.at.Store(now.UnixNano())
	sr.AtSeconds = now.Sub(s.start).Seconds()
	if s.cfg.Mode == StormDrop {
		s.dropAll()
		sr.DropSeconds = time.Since(now).Seconds()
		return nil
	}
	pid, err := s.cfg.Restart(ctx)
	if err != nil {
		return fmt.Errorf("loadtest: restart the server: %w", err)
	}
	sr.RestartSeconds = time.Since(now).Seconds()
	s.h.pid.Store(int64(pid))
	s.h.cfg.ServerPID = pid
	return nil
}

// recoveryCPU fills the CPU figures from the storm to the last client back.
// The server's are left out after a restart (another process).
func (s *storm) recoveryCPU(sr *StormReport, start, end cpuSample) {
	el := end.self.At.Sub(start.self.At).Seconds()
	if el <= 0 {
		return
	}
	self := (end.self.CPU - start.self.CPU).Seconds()
	other := (end.busy - start.busy).Seconds() - self
	sr.ClientCPUCores = self / el
	if s.h.cfg.ServerPID > 0 && s.cfg.Mode == StormDrop {
		srv := (end.server.CPU - start.server.CPU).Seconds()
		sr.ServerCPUCores = srv / el
		other -= srv
	}
	sr.OtherCPUCores = max(0, other/el)
}

// awaitBack waits until every client is back, or Timeout.
func (s *storm) awaitBack(ctx context.Context, sr *StormReport) error {
	t := time.NewTimer(s.cfg.Timeout)
	defer t.Stop()
	select {
	case <-s.allBack:
		sr.AllBack = true
	case <-t.C:
		s.h.noteErr(fmt.Errorf("loadtest: %d of %d clients back after %s", s.back.Load(), s.target, s.cfg.Timeout))
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// drain waits until no bench frame arrived for a second, at most
// DrainTimeout.
func (s *storm) drain(ctx context.Context) {
	deadline := time.Now().Add(s.h.cfg.DrainTimeout)
	count := func() int64 { r, _, o, _, _ := s.h.totals(); return r + o }
	last, quietSince := count(), time.Now()
	for time.Now().Before(deadline) && time.Since(quietSince) < time.Second {
		if sleepCtx(ctx, 50*time.Millisecond) != nil {
			return
		}
		if n := count(); n != last {
			last, quietSince = n, time.Now()
		}
	}
}

// stop ends every client and waits for their goroutines. It may be called
// twice.
func (s *storm) stop() {
	if s.stopping.Swap(true) {
		return
	}
	s.cancel()
	for _, sc := range s.clients {
		if ws := sc.conn(); ws != nil {
			abort(ws)
		}
	}
	s.h.readers.Wait()
}
