package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ErrProcFormat reports a /proc file the bench could not parse.
var ErrProcFormat = errors.New("loadtest: unexpected /proc format")

// clockTick is the kernel's USER_HZ (sysconf(_SC_CLK_TCK)); 100 on every
// Linux architecture Go supports.
const clockTick = 100

// ProcSample is one reading of a process's CPU time and resident memory.
type ProcSample struct {
	// CPU is user + system CPU time consumed so far (10 ms resolution).
	CPU time.Duration
	// RSS is the resident set size (VmRSS) in bytes.
	RSS int64
	// At is when the sample was taken.
	At time.Time
}

// ReadProcStat samples process pid (0 means this process) from
// /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmRSS).
func ReadProcStat(pid int) (ProcSample, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	st, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadtest: %w", err)
	}
	cpu, err := parseStatCPU(st)
	if err != nil {
		return ProcSample{}, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadtest: %w", err)
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return ProcSample{}, err
	}
	return ProcSample{CPU: cpu, RSS: rss, At: time.Now()}, nil
}

// parseStatCPU returns utime + stime from the contents of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may hold spaces, so fields
// are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat: no command name", ErrProcFormat)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat: %d fields", ErrProcFormat, len(f)+2)
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stm, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: stat: utime %q stime %q", ErrProcFormat, f[11], f[12])
	}
	return time.Duration(ut+stm) * (time.Second / clockTick), nil
}

// parseStatusRSS returns VmRSS in bytes from the contents of
// /proc/<pid>/status.
func parseStatusRSS(b []byte) (int64, error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		f := bytes.Fields(line[len("VmRSS:"):])
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%w: status: VmRSS line %q", ErrProcFormat, line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: status: VmRSS %q", ErrProcFormat, f[0])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("%w: status: no VmRSS line", ErrProcFormat)
}

// ReadSystemBusy returns the CPU time all processors spent busy since boot
// (user, nice, system, irq, softirq, steal: everything but idle and iowait),
// from the first line of /proc/stat. The bench subtracts its own and the
// server's CPU from it to tell how much other processes disturbed a run.
func ReadSystemBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	return parseSystemBusy(b)
}

func parseSystemBusy(b []byte) (time.Duration, error) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	f := bytes.Fields(b)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("%w: /proc/stat first line %q", ErrProcFormat, b)
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: /proc/stat field %q", ErrProcFormat, v)
		}
		switch i {
		case 3, 4: // idle, iowait
		case 8, 9: // guest, guest_nice: already counted in user and nice
		default:
			busy += n
		}
	}
	return time.Duration(busy) * (time.Second / clockTick), nil
}
