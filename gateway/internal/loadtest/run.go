package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"
)

// Target is what the bench drives.
type Target string

const (
	// TargetGateway is a teragate gateway: clients log in through the HTTP
	// login endpoints, events are posted as TeraEvents.
	TargetGateway Target = "gateway"
	// TargetBare is a BareServer: clients connect straight to /ws, events are
	// posted as ready-made frames.
	TargetBare Target = "bare"
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("loadtest: invalid config")

// Config describes one bench run.
type Config struct {
	// Target is what is driven. Zero value means TargetGateway.
	Target Target
	// BaseURL is the server's HTTP base URL, e.g. "http://127.0.0.1:4040".
	// Required.
	BaseURL string
	// Dir holds the identities clients log in with and the publishing
	// service's token. Required for TargetGateway.
	Dir *Directory
	// ServiceToken authenticates POST /api/events. Empty means Dir's admin
	// service.
	ServiceToken string
	// Clients is how many clients of each type to open. With fewer
	// entities of a type in Dir than clients, entities hold several sockets.
	Clients Mix
	// Format is the frame format clients ask for. Zero value means FormatJSON.
	Format Format
	// Event is the kind of event published. Zero value means EventStop.
	Event EventKind
	// Rate is the offered load in events per second.
	Rate float64
	// Deliveries, when positive, sets the offered load in deliveries per
	// second instead: Rate = Deliveries / expected recipients per event.
	Deliveries float64
	// Duration is the measured publishing time. Zero value means 20s.
	Duration time.Duration
	// Warmup is the publishing time before measurement starts. Zero value
	// means no warmup.
	Warmup time.Duration
	// Idle selects idle mode: connect, wait IdleWait, report RSS growth per
	// connection; nothing is published.
	Idle bool
	// IdleWait is how long idle mode waits. Zero value means 25s (two 10 s
	// ping rounds).
	IdleWait time.Duration
	// ConnectRate is how many clients start connecting per second. Zero
	// value means 2000.
	ConnectRate float64
	// ConnectConcurrency bounds logins + websocket handshakes in flight.
	// Zero value means 100.
	ConnectConcurrency int
	// Publishers is the number of concurrent publishing connections. Zero
	// value means 4.
	Publishers int
	// Settle is the longest wait, after connecting, for the server's own
	// traffic (presence events) to stop before publishing or idling. Zero
	// value means 120s.
	Settle time.Duration
	// DrainTimeout is the longest wait for outstanding deliveries after
	// publishing stops. Zero value means 10s.
	DrainTimeout time.Duration
	// ServerPID is the server process for CPU and RSS figures. Zero means
	// none are reported.
	ServerPID int
	// BareMode labels the report of a bare run.
	BareMode BareMode
	// Progress receives one line per second while running. Nil means none.
	Progress io.Writer
	// InsecureSkipVerify accepts any TLS certificate (a gateway running on
	// its self-signed default certificate). Default false.
	InsecureSkipVerify bool
	// UserLogin is how user clients log in. Zero value means
	// UserLoginPassword (HTTP Basic, one bcrypt check per login);
	// UserLoginToken logs every user in once by password before the clock
	// starts and then logs in with the returned user_token (a JWT), as
	// OpenTera clients do after their first login. Participants and devices
	// always log in with their static tokens.
	UserLogin UserLogin
	// ConnectOnly stops after connecting and the server's presence traffic
	// settled: the report holds the open rate and the CPU per open; nothing is
	// published.
	ConnectOnly bool
	// Storm, when not nil, runs a connect storm instead of a steady
	// measurement: see [StormConfig]. Gateway target only.
	Storm *StormConfig
}

// UserLogin is how user clients authenticate on /api/user/login.
type UserLogin string

const (
	// UserLoginPassword is HTTP Basic with the user's password.
	UserLoginPassword UserLogin = "password"
	// UserLoginToken is `Authorization: OpenTera <user_token>`.
	UserLoginToken UserLogin = "token"
)

func (c *Config) fill() error {
	if c.Target == "" {
		c.Target = TargetGateway
	}
	if c.Format == "" {
		c.Format = FormatJSON
	}
	if c.Event == "" {
		c.Event = EventStop
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.IdleWait <= 0 {
		c.IdleWait = 25 * time.Second
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = 2000
	}
	if c.UserLogin == "" {
		c.UserLogin = UserLoginPassword
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 100
	}
	if c.Publishers <= 0 {
		c.Publishers = 4
	}
	if c.Settle <= 0 {
		c.Settle = 120 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	switch {
	case c.Target != TargetGateway && c.Target != TargetBare:
		return fmt.Errorf("%w: target %q", ErrConfig, c.Target)
	case c.Format != FormatJSON && c.Format != FormatProto:
		return fmt.Errorf("%w: format %q", ErrConfig, c.Format)
	case c.Event != EventStop && c.Event != EventParticipant:
		return fmt.Errorf("%w: event %q", ErrConfig, c.Event)
	case c.UserLogin != UserLoginPassword && c.UserLogin != UserLoginToken:
		return fmt.Errorf("%w: user login %q", ErrConfig, c.UserLogin)
	case c.BaseURL == "":
		return fmt.Errorf("%w: no base URL", ErrConfig)
	case c.Clients.Total() <= 0:
		return fmt.Errorf("%w: no clients", ErrConfig)
	case !c.Idle && !c.ConnectOnly && c.Rate <= 0 && c.Deliveries <= 0:
		return fmt.Errorf("%w: no rate or deliveries", ErrConfig)
	}
	if c.Storm != nil {
		if err := c.Storm.fill(c.Target); err != nil {
			return err
		}
	}
	if c.Target == TargetBare && c.Event == EventParticipant && c.Dir == nil {
		d, err := GenerateDirectory(GenerateOptions{Participants: 1, Projects: 1})
		if err != nil {
			return err
		}
		c.Dir = d
	}
	if c.Target == TargetGateway {
		if c.Dir == nil {
			return fmt.Errorf("%w: gateway target needs identities", ErrConfig)
		}
		if c.ServiceToken == "" {
			c.ServiceToken = c.Dir.AdminServiceToken()
		}
		if !c.Idle && !c.ConnectOnly && c.ServiceToken == "" {
			return fmt.Errorf("%w: no service token", ErrConfig)
		}
		if c.Clients.Users > 0 && len(c.Dir.Users) == 0 ||
			c.Clients.Participants > 0 && len(c.Dir.Participants) == 0 ||
			c.Clients.Devices > 0 && len(c.Dir.Devices) == 0 {
			return fmt.Errorf("%w: identities lack a requested client type", ErrConfig)
		}
		if c.Event == EventParticipant && len(c.Dir.Participants) == 0 {
			return fmt.Errorf("%w: participant events need participants", ErrConfig)
		}
	}
	return nil
}

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

// newReport starts the report with the run's parameters and samples the server's baseline.
func (h *harness) newReport() (*Report, ProcSample, error) {
	rep := &Report{
		Target: string(h.cfg.Target), Event: string(h.cfg.Event), Format: string(h.cfg.Format),
		Clients: h.cfg.Clients.Total(), Users: h.cfg.Clients.Users,
		Participants: h.cfg.Clients.Participants, Devices: h.cfg.Clients.Devices,
		Idle: h.cfg.Idle,
	}
	if h.cfg.Target == TargetBare {
		rep.BareMode = string(h.cfg.BareMode)
	} else {
		rep.Projects = len(h.cfg.Dir.Projects)
	}
	var baseSrv ProcSample
	if h.cfg.ServerPID > 0 {
		s, err := ReadProcStat(h.cfg.ServerPID)
		if err != nil {
			return nil, baseSrv, err
		}
		baseSrv = s
		rep.ServerRSSBaseMiB = mib(s.RSS)
	}
	return rep, baseSrv, nil
}

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

// finishConnectOnly ends a connect-only run: it waits for the presence traffic to settle and
// counts its CPU too (the CONNECTED fan-out goes on after the last open).
func (h *harness) finishConnectOnly(ctx context.Context, rep *Report, baseSrv ProcSample, connectEnd cpuSample) error {
	if err := h.settle(ctx, rep); err != nil {
		return err
	}
	se, err := h.sampleCPU()
	if err != nil {
		return err
	}
	h.settleCPU(rep, connectEnd, se)
	h.finishServer(rep, baseSrv, ProcSample{}, 0)
	return nil
}

// finishIdle ends an idle run: it lets the server's own traffic (CONNECTED events) finish, so
// that the RSS is that of idle connections rather than of queued frames, then waits IdleWait.
func (h *harness) finishIdle(ctx context.Context, rep *Report, baseSrv ProcSample) error {
	if err := h.settle(ctx, rep); err != nil {
		return err
	}
	if err := sleepCtx(ctx, h.cfg.IdleWait); err != nil {
		return err
	}
	rep.IdleWaitSeconds = h.cfg.IdleWait.Seconds()
	h.finishServer(rep, baseSrv, ProcSample{}, 0)
	_, _, _, other, _ := h.totals()
	rep.OtherFrames = other
	return nil
}

// measureDeliveries publishes at the offered rate through the warm-up and the measured window,
// waits for the deliveries, and reports them with their latency and CPU cost.
func (h *harness) measureDeliveries(ctx context.Context, rep *Report, baseSrv ProcSample) error {
	// Let the server's own traffic (CONNECTED events) calm down.
	if err := h.settle(ctx, rep); err != nil {
		return err
	}
	_, _, _, otherBefore, _ := h.totals()

	recips, rate, err := h.offeredRate(rep)
	if err != nil {
		return err
	}
	pub, err := h.newPublisher(recips)
	if err != nil {
		return err
	}
	start := time.Now()
	measureStart := start.Add(h.cfg.Warmup)
	measureEnd := measureStart.Add(h.cfg.Duration)
	h.setWindow(unixSeconds(measureStart), unixSeconds(measureEnd))

	sampled := h.sampleAt(ctx, measureStart)
	pub.run(ctx, start, measureEnd, rate, h.cfg.Publishers)
	at := <-sampled
	if err := ctx.Err(); err != nil {
		return err
	}
	if at.err != nil {
		return at.err
	}
	expected := pub.expected.Load()
	h.drain(ctx, expected)

	endBusy, err := ReadSystemBusy()
	if err != nil {
		return err
	}
	endSelf, err := ReadProcStat(0)
	if err != nil {
		return err
	}
	h.reportDeliveries(rep, pub, expected, otherBefore)
	h.reportCPU(rep, baseSrv, at, endSelf, endBusy)
	return nil
}

// offeredRate returns the recipients of the events to publish and the event rate that offers
// the configured load.
func (h *harness) offeredRate(rep *Report) ([]int, float64, error) {
	recips := h.recipients()
	var sum float64
	for _, r := range recips {
		sum += float64(r)
	}
	rep.RecipientsPerEvent = sum / float64(len(recips))
	rate := h.cfg.Rate
	if h.cfg.Deliveries > 0 {
		if rep.RecipientsPerEvent == 0 {
			return nil, 0, fmt.Errorf("loadtest: no connected client would receive the events")
		}
		rate = h.cfg.Deliveries / rep.RecipientsPerEvent
	}
	rep.OfferedEventsPerSec = rate
	rep.OfferedDeliveriesPerSec = rate * rep.RecipientsPerEvent
	rep.WarmupSeconds = h.cfg.Warmup.Seconds()
	rep.DurationSeconds = h.cfg.Duration.Seconds()
	return recips, rate, nil
}

// startSample is the CPU sampled when the measured window starts.
type startSample struct {
	srv, self ProcSample
	busy      time.Duration
	err       error
}

// sampleAt samples the CPU (the machine's, this process's and the server's) at t.
func (h *harness) sampleAt(ctx context.Context, t time.Time) <-chan startSample {
	ch := make(chan startSample, 1)
	go func() {
		var s startSample
		defer func() { ch <- s }()
		if s.err = sleepCtx(ctx, time.Until(t)); s.err != nil {
			return
		}
		s.busy, s.err = ReadSystemBusy()
		if s.err == nil {
			s.self, s.err = ReadProcStat(0)
		}
		if s.err == nil && h.cfg.ServerPID > 0 {
			s.srv, s.err = ReadProcStat(h.cfg.ServerPID)
		}
	}()
	return ch
}

// reportDeliveries fills the publishing, delivery, frame and latency figures.
func (h *harness) reportDeliveries(rep *Report, pub *publisher, expected, otherBefore int64) {
	received, nbytes, _, other, bad := h.totals()
	rep.PublishedEvents = pub.inWindow.Load()
	rep.PublishErrors = h.publishErrs.Load()
	rep.PublishedPerSec = float64(rep.PublishedEvents) / h.cfg.Duration.Seconds()
	rep.ExpectedDeliveries = expected
	rep.ReceivedDeliveries = received
	rep.LostDeliveries = expected - received
	rep.DeliveredPerSec = float64(received) / h.cfg.Duration.Seconds()
	if rep.PublishedPerSec < 0.95*rep.OfferedEventsPerSec {
		h.noteErr(fmt.Errorf("loadtest: publishing fell behind (%.0f of %.0f events/s): the server answers POST /api/events too slowly for %d publishers (raise --publishers)",
			rep.PublishedPerSec, rep.OfferedEventsPerSec, h.cfg.Publishers))
	}
	rep.OtherFrames = other - otherBefore
	rep.UnreadableFrames = bad
	if received > 0 {
		rep.FrameBytes = float64(nbytes) / float64(received)
	}
	snap := h.hist.Snapshot()
	rep.LatencyP50ms = float64(snap.Quantile(0.50)) / 1000
	rep.LatencyP90ms = float64(snap.Quantile(0.90)) / 1000
	rep.LatencyP99ms = float64(snap.Quantile(0.99)) / 1000
	rep.LatencyMaxms = float64(snap.Max) / 1000
	rep.LatencyMeanms = snap.Mean() / 1000
}

// reportCPU fills the CPU figures of the measured window: this process's (the clients'), the
// server's and the rest of the machine's.
func (h *harness) reportCPU(rep *Report, baseSrv ProcSample, start startSample, endSelf ProcSample, endBusy time.Duration) {
	received := rep.ReceivedDeliveries
	elapsed := endSelf.At.Sub(start.self.At).Seconds()
	clientCPU := (endSelf.CPU - start.self.CPU).Seconds()
	rep.ClientCPUSeconds = clientCPU
	if elapsed > 0 {
		rep.ClientCPUCores = clientCPU / elapsed
	}
	if received > 0 {
		rep.ClientCPUMicrosPerDelivery = clientCPU * 1e6 / float64(received)
	}
	h.finishServer(rep, baseSrv, start.srv, received)
	if elapsed > 0 {
		other := (endBusy - start.busy).Seconds() - clientCPU - rep.ServerCPUSeconds
		rep.OtherCPUCores = math.Max(0, other/elapsed)
	}
}

// WaitQuiet waits until processes other than this one and pid (0: none)
// use less than maxCores of CPU over a window of 2 s, or until timeout; it
// reports whether the machine became quiet. Figures measured on a shared
// machine are only comparable when nothing else runs.
func WaitQuiet(ctx context.Context, pid int, maxCores float64, timeout time.Duration, progress io.Writer) (bool, error) {
	deadline := time.Now().Add(timeout)
	sample := func() (busy, own time.Duration, err error) {
		if busy, err = ReadSystemBusy(); err != nil {
			return
		}
		s, err := ReadProcStat(0)
		if err != nil {
			return
		}
		own = s.CPU
		if pid > 0 {
			p, perr := ReadProcStat(pid)
			if perr != nil {
				return busy, own, perr
			}
			own += p.CPU
		}
		return
	}
	for {
		b0, o0, err := sample()
		if err != nil {
			return false, err
		}
		t0 := time.Now()
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return false, err
		}
		b1, o1, err := sample()
		if err != nil {
			return false, err
		}
		other := ((b1 - b0) - (o1 - o0)).Seconds() / time.Since(t0).Seconds()
		if other < maxCores {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		if progress != nil {
			_, _ = fmt.Fprintf(progress, "bench: waiting for a quiet machine: other processes use %.2f cores\n", other)
		}
	}
}

// finishServer fills the server figures from a final sample.
func (h *harness) finishServer(rep *Report, base, start ProcSample, received int64) {
	if h.cfg.ServerPID <= 0 {
		return
	}
	end, err := ReadProcStat(h.cfg.ServerPID)
	if err != nil {
		h.noteErr(err)
		return
	}
	rep.ServerRSSMiB = mib(end.RSS)
	if rep.Connected > 0 {
		rep.KiBPerConn = float64(end.RSS-base.RSS) / 1024 / float64(rep.Connected)
	}
	if n := rep.Connected - rep.IdleWarmClients; rep.IdleWarmClients > 0 && n > 0 {
		rep.KiBPerConnAfterWarm = float64(end.RSS-h.warmRSS) / 1024 / float64(n)
	}
	if !start.At.IsZero() {
		cpu := (end.CPU - start.CPU).Seconds()
		rep.ServerCPUSeconds = cpu
		if el := end.At.Sub(start.At).Seconds(); el > 0 {
			rep.ServerCPUCores = cpu / el
		}
		if received > 0 {
			rep.ServerCPUMicrosPerDelivery = cpu * 1e6 / float64(received)
		}
	}
}

func (h *harness) errs() []string {
	h.errMu.Lock()
	defer h.errMu.Unlock()
	return append([]string(nil), h.firstErrs...)
}

// cpuSample is the CPU used so far by the server, the bench and the machine.
type cpuSample struct {
	server, self ProcSample
	busy         time.Duration
}

func (h *harness) sampleCPU() (cpuSample, error) {
	var s cpuSample
	var err error
	if s.busy, err = ReadSystemBusy(); err != nil {
		return s, err
	}
	if s.self, err = ReadProcStat(0); err != nil {
		return s, err
	}
	if h.cfg.ServerPID > 0 {
		if s.server, err = ReadProcStat(h.cfg.ServerPID); err != nil {
			return s, err
		}
	}
	return s, nil
}

// connectCPU fills the CPU figures of the connect phase.
func (h *harness) connectCPU(rep *Report, start, end cpuSample) {
	n := float64(rep.Connected)
	el := end.self.At.Sub(start.self.At).Seconds()
	self := (end.self.CPU - start.self.CPU).Seconds()
	rep.ConnectClientCPUMicrosPerOpen = self * 1e6 / n
	other := (end.busy - start.busy).Seconds() - self
	if h.cfg.ServerPID > 0 {
		srv := (end.server.CPU - start.server.CPU).Seconds()
		rep.ConnectServerCPUMicrosPerOpen = srv * 1e6 / n
		other -= srv
	}
	if el > 0 {
		rep.ConnectOtherCPUCores = math.Max(0, other/el)
	}
}

// settleCPU fills the server CPU per open including the presence traffic
// that followed the opens.
func (h *harness) settleCPU(rep *Report, connectEnd, settleEnd cpuSample) {
	if h.cfg.ServerPID <= 0 || rep.Connected == 0 {
		return
	}
	srv := (settleEnd.server.CPU - connectEnd.server.CPU).Seconds()
	rep.SettleServerCPUMicrosPerOpen = rep.ConnectServerCPUMicrosPerOpen + srv*1e6/float64(rep.Connected)
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

// settle waits until no non-bench frame arrived for a second (half of
// Settle when that is shorter), at most Settle.
func (h *harness) settle(ctx context.Context, rep *Report) error {
	start := time.Now()
	deadline := start.Add(h.cfg.Settle)
	quiet := min(time.Second, h.cfg.Settle/2)
	_, _, _, last, _ := h.totals()
	first := last
	quietSince := time.Now()
	defer func() {
		_, _, _, other, _ := h.totals()
		rep.SettleSeconds = time.Since(start).Seconds()
		rep.SettleFrames = other - first
	}()
	for time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
		_, _, _, other, _ := h.totals()
		if other != last {
			last, quietSince = other, time.Now()
		} else if time.Since(quietSince) >= quiet {
			return nil
		}
	}
	rep.SettleTimedOut = true
	h.noteErr(fmt.Errorf("loadtest: the server was still sending its own frames after --settle %s; figures include them", h.cfg.Settle))
	return nil
}

// drain waits for expected in-window deliveries, until no progress for 2 s
// or DrainTimeout.
func (h *harness) drain(ctx context.Context, expected int64) {
	deadline := time.Now().Add(h.cfg.DrainTimeout)
	last, _, _, _, _ := h.totals()
	progressAt := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		got, _, _, _, _ := h.totals()
		if got >= expected {
			return
		}
		if got != last {
			last, progressAt = got, time.Now()
		} else if time.Since(progressAt) > 2*time.Second {
			return
		}
		_ = sleepCtx(ctx, 20*time.Millisecond)
	}
}

// recipients returns, per event subject, how many connected clients should
// receive it. Stop events and every bare event have one subject: everyone.
func (h *harness) recipients() []int {
	if h.cfg.Target == TargetBare || h.cfg.Event == EventStop {
		return []int{int(h.connected.Load())}
	}
	d := h.cfg.Dir
	a := newAudience(d)
	perUser := make([]int, len(d.Users))
	perPart := make([]int, len(d.Participants))
	perDev := make([]int, len(d.Devices))
	for _, c := range h.clients {
		if c.ws == nil {
			continue
		}
		switch c.kind {
		case KindUser:
			perUser[c.entity]++
		case KindParticipant:
			perPart[c.entity]++
		case KindDevice:
			perDev[c.entity]++
		}
	}
	supers := 0
	for _, u := range a.superUsers {
		supers += perUser[u]
	}
	out := make([]int, len(d.Participants))
	for p := range d.Participants {
		n := supers + perPart[p]
		if k := a.projectOfParticipant[p]; k >= 0 {
			for _, u := range a.usersByProject[k] {
				n += perUser[u]
			}
		}
		for _, dv := range a.devicesByParticipant[p] {
			n += perDev[dv]
		}
		out[p] = n
	}
	return out
}

// publisher posts the bench's events.
type publisher struct {
	h       *harness
	http    *http.Client
	url     string
	builder *eventBuilder
	recips  []int

	expected atomic.Int64 // deliveries expected for in-window events
	inWindow atomic.Int64 // events published in the window
	// onPublished, when not nil, is told the time of every event the
	// server accepted.
	onPublished func(t float64)
	// halt, when not nil, stops the schedule when it ends; requests in
	// flight still complete (their outcome is counted).
	halt context.Context
}

func (h *harness) newPublisher(recips []int) (*publisher, error) {
	u := *h.base
	u.Path = "/api/events"
	u.RawQuery = ""
	tr := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     h.tlsConfig(),
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        h.cfg.Publishers,
		MaxIdleConnsPerHost: h.cfg.Publishers,
		IdleConnTimeout:     90 * time.Second,
	}
	p := &publisher{
		h: h, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: u.String(), recips: recips,
		builder: newEventBuilder(h.cfg.Event, h.cfg.Dir),
	}
	return p, nil
}

// run publishes at rate events/s from start until end, with n concurrent
// publishers following one shared schedule.
func (p *publisher) run(ctx context.Context, start, end time.Time, rate float64, n int) {
	defer p.http.CloseIdleConnections()
	interval := float64(time.Second) / rate
	total := uint64(float64(end.Sub(start)) / interval)
	var next atomic.Uint64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				due := start.Add(time.Duration(float64(k) * interval))
				if sleepCtx(p.sleepCtx(ctx), time.Until(due)) != nil || p.halted() {
					return
				}
				p.publish(ctx, k)
			}
		}()
	}
	wg.Wait()
}

// halted tells whether halt ended.
func (p *publisher) halted() bool { return p.halt != nil && p.halt.Err() != nil }

// sleepCtx is what ends the waits between events: halt when set (it derives
// from ctx), else ctx.
func (p *publisher) sleepCtx(ctx context.Context) context.Context {
	if p.halt != nil {
		return p.halt
	}
	return ctx
}

// publish posts event number k.
func (p *publisher) publish(ctx context.Context, k uint64) {
	h := p.h
	subject := int(k % uint64(len(p.recips)))
	now := time.Now()
	t := unixSeconds(now)
	ev, err := p.builder.build(k, subject, t)
	if err != nil {
		h.publishErrs.Add(1)
		h.noteErr(err)
		return
	}
	var body []byte
	ctype := "application/x-protobuf"
	if h.cfg.Target == TargetBare {
		body, err = encodeFrame(ev, h.cfg.Format)
		if h.cfg.Format == FormatJSON {
			ctype = "application/json"
		}
	} else {
		body, err = proto.Marshal(ev)
	}
	if err != nil {
		h.publishErrs.Add(1)
		h.noteErr(fmt.Errorf("loadtest: encode event: %w", err))
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		h.publishErrs.Add(1)
		h.noteErr(err)
		return
	}
	req.Header.Set("Content-Type", ctype)
	if h.cfg.Target == TargetBare {
		req.Header.Set(BareFrameHeader, "1")
	} else {
		req.Header.Set("Authorization", "OpenTera "+h.cfg.ServiceToken)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			h.publishErrs.Add(1)
			if h.storm == nil || h.storm.at.Load() == 0 {
				// (A storm's restart makes these: counted, not listed.)
				h.noteErr(fmt.Errorf("loadtest: publish: %w", err))
			}
		}
		return
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		h.publishErrs.Add(1)
		h.noteErr(fmt.Errorf("loadtest: POST /api/events: HTTP %d: %s", resp.StatusCode, truncate(rb, 200)))
		return
	}
	h.published.Add(1)
	if p.onPublished != nil {
		p.onPublished(t)
	}
	if ws, we := h.window(); t >= ws && t < we {
		p.inWindow.Add(1)
		p.expected.Add(int64(p.recips[subject]))
	}
}

// tlsConfig returns the client TLS settings (nil: Go's defaults).
func (h *harness) tlsConfig() *tls.Config {
	if !h.cfg.InsecureSkipVerify {
		return nil
	}
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in, for self-signed test servers
}

func newEventBuilder(kind EventKind, dir *Directory) *eventBuilder {
	// Without a directory (bare target), a uuid-shaped stand-in keeps the
	// frame the same size as the gateway's.
	b := &eventBuilder{kind: kind, dir: dir, serviceUUID: "00000000-7467-4265-8e63-680000000000"}
	if dir != nil {
		for _, s := range dir.Services {
			if s.Admin {
				b.serviceUUID = s.UUID
				break
			}
		}
		b.names("") // fill the name cache before concurrent use
	}
	return b
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
