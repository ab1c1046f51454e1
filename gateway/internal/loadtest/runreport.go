package loadtest

import (
	"context"
	"fmt"
	"math"
	"time"
)

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
