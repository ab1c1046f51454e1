package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
)

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
