package station

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"syscall"

	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

// runProgram serves a role's RunProgram: an allow-listed program is started (no shell, stdin
// closed, output logged line by line as OUT | / ERR |); how it ends is queued for the
// instance's next tick and sent to the manager as a JobResult. a.mu is held.
func (a *Agent) runProgram(x *instance, r *pluginv1.RunProgram) {
	path, ok := a.cfg.Programs[r.Program]
	if !ok {
		a.log.Warn("role asked for a program that is not allowed", "role", x.role, "uuid", x.uuid, "program", r.Program)
		a.ended(x, &pluginv1.ProgramExit{Job: r.Job, Program: r.Program, ExitCode: -1, Error: "program not allowed"})
		return
	}
	cmd := exec.Command(path, r.Args...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		a.ended(x, &pluginv1.ProgramExit{Job: r.Job, Program: r.Program, ExitCode: -1, Error: err.Error()})
		return
	}
	x.procs[r.Job] = cmd.Process
	log := a.log.With("role", x.role, "uuid", x.uuid, "job", r.Job, "program", r.Program)
	logLines := func(prefix string, rd io.Reader) {
		sc := bufio.NewScanner(rd)
		for sc.Scan() {
			log.Info(prefix + sc.Text())
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		done := make(chan struct{})
		go func() { logLines("ERR | ", stderr); close(done) }()
		logLines("OUT | ", stdout)
		<-done
		err := cmd.Wait()
		e := &pluginv1.ProgramExit{Job: r.Job, Program: r.Program, Completed: err == nil}
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			e.ExitCode = int32(ee.ExitCode())
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				e.Signal = int32(ws.Signal())
			}
		default:
			e.ExitCode, e.Error = -1, err.Error()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(x.procs, r.Job)
		a.ended(x, e)
	}()
}

// ended queues e for x's next tick and reports it to the manager. a.mu is held.
func (a *Agent) ended(x *instance, e *pluginv1.ProgramExit) {
	if a.instances[key(x.role, x.uuid)] == x {
		x.exits = append(x.exits, e)
	}
	a.sendAsync(&stationv1.StationMessage{Body: &stationv1.StationMessage_Job{Job: &stationv1.JobResult{
		Role: x.role, Uuid: x.uuid, Job: e.Job, Program: e.Program, Completed: e.Completed,
		ExitCode: e.ExitCode, Signal: e.Signal, Error: e.Error}}})
}
