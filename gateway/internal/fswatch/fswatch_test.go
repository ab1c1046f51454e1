package fswatch_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/fswatch"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReadFile(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("not yours"), 0o600))

	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // creates "f" in dir
		limits  fswatch.Limits
		want    string // the content read, when no error
		wantErr error
		msg     string // a part of the error message
	}{
		{name: "regular file", want: "hello",
			setup: func(t *testing.T, dir string) { write(t, dir, "f", "hello") }},
		{name: "symlink to /dev/zero", wantErr: fswatch.ErrOutside, msg: "/dev/zero",
			setup: func(t *testing.T, dir string) { link(t, "/dev/zero", dir, "f") }},
		{name: "symlink outside the directory", wantErr: fswatch.ErrOutside, msg: secret,
			setup: func(t *testing.T, dir string) { link(t, secret, dir, "f") }},
		{name: "relative symlink climbing out", wantErr: fswatch.ErrOutside,
			setup: func(t *testing.T, dir string) {
				rel, err := filepath.Rel(dir, secret)
				require.NoError(t, err)
				link(t, rel, dir, "f")
			}},
		{name: "FIFO", wantErr: fswatch.ErrNotRegular, msg: "named pipe",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "f"), 0o600))
			}},
		{name: "symlink to a FIFO inside", wantErr: fswatch.ErrNotRegular, msg: "named pipe",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o600))
				link(t, "pipe", dir, "f")
			}},
		{name: "unix socket", wantErr: fswatch.ErrNotRegular, msg: "socket",
			setup: func(t *testing.T, dir string) {
				ln, err := net.Listen("unix", filepath.Join(dir, "f"))
				require.NoError(t, err)
				t.Cleanup(func() { ln.Close() })
			}},
		{name: "directory", wantErr: fswatch.ErrNotRegular, msg: "a directory",
			setup: func(t *testing.T, dir string) { require.NoError(t, os.Mkdir(filepath.Join(dir, "f"), 0o755)) }},
		{name: "oversized file", limits: fswatch.Limits{MaxBytes: 4}, wantErr: fswatch.ErrTooLarge, msg: "5 bytes, the limit is 4",
			setup: func(t *testing.T, dir string) { write(t, dir, "f", "hello") }},
		{name: "file at the size limit", limits: fswatch.Limits{MaxBytes: 5}, want: "hello",
			setup: func(t *testing.T, dir string) { write(t, dir, "f", "hello") }},
		{name: "oversized file behind a symlink inside", limits: fswatch.Limits{MaxBytes: 4}, wantErr: fswatch.ErrTooLarge,
			setup: func(t *testing.T, dir string) { write(t, dir, "real", "hello"); link(t, "real", dir, "f") }},
		{name: "missing file", wantErr: fs.ErrNotExist, setup: func(*testing.T, string) {}},
		{name: "dangling symlink", wantErr: fs.ErrNotExist, msg: "missing file",
			setup: func(t *testing.T, dir string) { link(t, "nothing", dir, "f") }},
		{name: "relative symlink inside", want: "v2",
			setup: func(t *testing.T, dir string) { write(t, dir, "f.v2", "v2"); link(t, "f.v2", dir, "f") }},
		{name: "absolute symlink inside", want: "abs",
			setup: func(t *testing.T, dir string) {
				write(t, dir, "real", "abs")
				link(t, filepath.Join(dir, "real"), dir, "f")
			}},
		{name: "Kubernetes volume layout (..data/ links)", want: "cm",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "..2024_01_01"), 0o755))
				write(t, filepath.Join(dir, "..2024_01_01"), "f", "cm")
				link(t, "..2024_01_01", dir, "..data")
				link(t, "..data/f", dir, "f")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			lim := tt.limits
			lim.Timeout = 30 * time.Second // a hang fails with ErrTimeout instead of stalling the suite
			data, err := fswatch.ReadFile(context.Background(), dir, "f", lim)
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, tt.want, string(data))
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.Nil(t, data)
			require.Contains(t, err.Error(), filepath.Join(dir, "f"), "the error names the file")
			require.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestReadFileBadNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "../x", "a/b", "/etc/passwd"} {
		_, err := fswatch.ReadFile(context.Background(), dir, name, fswatch.Limits{})
		require.ErrorIs(t, err, fswatch.ErrBadName, name)
	}
}

func TestReadFileCancelled(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "f", "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either outcome is allowed for a read racing the cancellation, but never a hang, and a
	// cancelled read is not reported as a timeout.
	_, err := fswatch.ReadFile(ctx, dir, "f", fswatch.Limits{})
	if err != nil {
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, fswatch.ErrTimeout)
	}
}

// recorder collects the callbacks of a Run.
type recorder struct {
	mu      sync.Mutex
	initial []string
	loads   map[string]int
	running map[string]int
	overlap atomic.Bool
	reads   map[string]error
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loads[key]
}

func (r *recorder) lastErr(key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads[key]
}

// startRun runs fswatch.Run on dir with the *.wasm names as keys; each Changed reads its file.
func startRun(t *testing.T, dir string, debounce time.Duration, slow func(key string)) (*recorder, *logBuf) {
	t.Helper()
	rec := &recorder{loads: map[string]int{}, running: map[string]int{}, reads: map[string]error{}}
	logs := &logBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- fswatch.Run(ctx, fswatch.Config{
			Dir: dir,
			Match: func(name string) (string, bool) {
				k, ok := strings.CutSuffix(name, ".wasm")
				return k, ok && k != ""
			},
			Debounce: debounce,
			Logger:   hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
			Initial: func(_ context.Context, keys []string) {
				rec.mu.Lock()
				rec.initial = keys
				rec.mu.Unlock()
				close(ready)
			},
			Changed: func(ctx context.Context, key string) {
				rec.mu.Lock()
				rec.running[key]++
				if rec.running[key] > 1 {
					rec.overlap.Store(true)
				}
				rec.mu.Unlock()
				if slow != nil {
					slow(key)
				}
				_, err := fswatch.ReadFile(ctx, dir, key+".wasm", fswatch.Limits{MaxBytes: 1 << 10})
				rec.mu.Lock()
				rec.running[key]--
				rec.loads[key]++
				rec.reads[key] = err
				rec.mu.Unlock()
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return rec, logs
}

func TestRunInitialOnce(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "b.wasm", "b")
	write(t, dir, "a.wasm", "a")
	write(t, dir, "notes.txt", "ignored")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d.wasm"), 0o755))
	rec, _ := startRun(t, dir, 20*time.Millisecond, nil)
	require.Equal(t, []string{"a", "b", "d"}, rec.initial, "every matching name, sorted, directories included")
	// A later change is handled by Changed, the initial files are not loaded again by it.
	write(t, dir, "c.wasm", "c")
	eventually(t, "c loaded", func() bool { return rec.count("c") == 1 })
	require.Zero(t, rec.count("a"))
	require.Zero(t, rec.count("b"))
}

func TestRunDebouncesABurstIntoOneLoad(t *testing.T) {
	dir := t.TempDir()
	// A long debounce makes the burst below certainly fall within one quiet period.
	rec, _ := startRun(t, dir, 500*time.Millisecond, nil)
	f := filepath.Join(dir, "burst.wasm")
	for i := range 50 {
		require.NoError(t, os.WriteFile(f, []byte(fmt.Sprint(i)), 0o600))
		require.NoError(t, os.Chmod(f, 0o644))
	}
	write(t, dir, "marker.wasm", "m") // written after the burst: loaded after it
	eventually(t, "marker loaded", func() bool { return rec.count("marker") == 1 })
	eventually(t, "burst loaded", func() bool { return rec.count("burst") >= 1 })
	require.Equal(t, 1, rec.count("burst"), "one load for the whole burst")
}

func TestRunOneLoadAtATimePerKey(t *testing.T) {
	dir := t.TempDir()
	gate := make(chan struct{})
	var entered atomic.Int32
	rec, _ := startRun(t, dir, 5*time.Millisecond, func(key string) {
		if key == "slow" && entered.Add(1) == 1 {
			<-gate // the first load waits until the second burst has fired
		}
	})
	f := filepath.Join(dir, "slow.wasm")
	require.NoError(t, os.WriteFile(f, []byte("1"), 0o600))
	eventually(t, "first load running", func() bool { return entered.Load() == 1 })
	require.NoError(t, os.WriteFile(f, []byte("2"), 0o600))
	write(t, dir, "other.wasm", "o") // other keys are not held up by a slow one
	eventually(t, "other loaded", func() bool { return rec.count("other") == 1 })
	close(gate)
	eventually(t, "second load after the first", func() bool { return rec.count("slow") == 2 })
	require.False(t, rec.overlap.Load(), "two loads of one key ran at once")
}

func TestRunHostileFilesAreRejected(t *testing.T) {
	dir := t.TempDir()
	rec, _ := startRun(t, dir, 10*time.Millisecond, nil)
	link(t, "/dev/zero", dir, "zero.wasm")
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo.wasm"), 0o600))
	link(t, "/etc/shadow", dir, "shadow.wasm")
	write(t, dir, "big.wasm", strings.Repeat("x", 2<<10))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dir.wasm"), 0o755))
	want := map[string]error{"zero": fswatch.ErrOutside, "fifo": fswatch.ErrNotRegular, "shadow": fswatch.ErrOutside,
		"big": fswatch.ErrTooLarge, "dir": fswatch.ErrNotRegular}
	for key, werr := range want {
		eventually(t, key+" handled", func() bool { return rec.count(key) >= 1 })
		require.ErrorIs(t, rec.lastErr(key), werr, key)
	}
}

func TestRunOverflowIsLoggedCountedAndRescanned(t *testing.T) {
	limit, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip("no inotify queue limit to overflow:", err)
	}
	var n int
	_, err = fmt.Sscan(string(limit), &n)
	require.NoError(t, err)
	if n > 1<<16 {
		t.Skipf("inotify queue of %d events: too long to overflow in a test", n)
	}
	dir := t.TempDir()
	logs := &logBuf{}
	var failures atomic.Int32
	var overflowed atomic.Bool
	loaded := map[string]bool{}
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	written := make(chan struct{})
	go func() {
		done <- fswatch.Run(ctx, fswatch.Config{
			Dir: dir,
			Match: func(name string) (string, bool) {
				k, ok := strings.CutSuffix(name, ".wasm")
				return k, ok
			},
			Debounce: 10 * time.Millisecond,
			Logger:   hclog.New(&hclog.LoggerOptions{Output: logs}),
			// While the initial load runs, nobody reads the events: the kernel queue overflows,
			// and the events of the three plugins written last are lost. fsnotify's reader takes
			// up to 64 KiB of events (2,048 of these names) out of the queue before it blocks on
			// its channel, so the writes go that far beyond the queue's length.
			Initial: func(context.Context, []string) {
				for i := range n + 4096 {
					require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprint(i, ".txt")), nil, 0o600))
				}
				for _, k := range []string{"p1", "p2", "p3"} {
					write(t, dir, k+".wasm", k)
				}
				close(written)
			},
			Changed: func(_ context.Context, key string) {
				mu.Lock()
				loaded[key] = true
				mu.Unlock()
			},
			Failed: func(err error) {
				failures.Add(1)
				if strings.Contains(err.Error(), "overflow") {
					overflowed.Store(true)
				}
			},
		})
	}()
	// Writing tens of thousands of files takes long on a loaded machine (make test runs packages
	// in parallel, under the race detector): the waits below start once they are written.
	select {
	case <-written:
	case <-time.After(2 * time.Minute):
		t.Fatal("writing the files took more than 2 minutes")
	}
	eventually(t, "overflow reported", overflowed.Load)
	require.Contains(t, logs.String(), "directory watch error")
	eventually(t, "the plugins whose events were lost loaded by the rescan", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return loaded["p1"] && loaded["p2"] && loaded["p3"]
	})
	require.GreaterOrEqual(t, failures.Load(), int32(1))
	cancel()
	require.NoError(t, <-done)
}

func TestRunErrors(t *testing.T) {
	err := fswatch.Run(context.Background(), fswatch.Config{Dir: filepath.Join(t.TempDir(), "missing"),
		Changed: func(context.Context, string) { t.Error("called") }})
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Contains(t, err.Error(), "missing")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, fswatch.Run(ctx, fswatch.Config{Dir: t.TempDir(), Changed: func(context.Context, string) {}}))
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

func link(t *testing.T, target, dir, name string) {
	t.Helper()
	require.NoError(t, os.Symlink(target, filepath.Join(dir, name)))
}

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
