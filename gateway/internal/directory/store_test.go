package directory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// checkFor calls f every step until it returns nil or total has passed, then fails with f's error.
func checkFor(t *testing.T, total, step time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(step)
	}
	t.Fatalf("condition not met after %v: %v", total, err)
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

// withUser returns the demo file with one more user.
func withUser(name string) []byte {
	var f dirFile
	if err := yaml.Unmarshal(directory.DemoYAML, &f); err != nil {
		panic(err)
	}
	f.Users = append(f.Users, directory.User{
		UUID: "00000000-0000-4000-8000-0000000009" + fmt.Sprintf("%02x", name[0]), Username: name,
		PasswordHash: testHash, Enabled: true,
	})
	out, err := yaml.Marshal(&f)
	if err != nil {
		panic(err)
	}
	return out
}

type watchFixture struct {
	path    string
	store   *directory.Store
	logs    *logBuffer
	reloads atomic.Int32
	done    chan error

	failMu   sync.Mutex
	failures []error // reported to WatchHooks.Failed
}

// failed returns the failures reported so far.
func (f *watchFixture) failed() []error {
	f.failMu.Lock()
	defer f.failMu.Unlock()
	return append([]error(nil), f.failures...)
}

// waitFailures waits until n failures were reported and returns them.
func (f *watchFixture) waitFailures(t *testing.T, n int) []error {
	t.Helper()
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got := len(f.failed()); got != n {
			return fmt.Errorf("%d failures reported, want %d; logs:\n%s", got, n, f.logs.String())
		}
		return nil
	})
	return f.failed()
}

// startWatch writes initial to a fresh directory, loads it and starts Store.Watch with a short
// debounce. The watcher is stopped at cleanup.
func startWatch(t *testing.T, initial []byte) *watchFixture {
	t.Helper()
	f := &watchFixture{path: filepath.Join(t.TempDir(), "identities.yaml"), logs: &logBuffer{}, done: make(chan error, 1)}
	require.NoError(t, os.WriteFile(f.path, initial, 0o600))
	snap, err := directory.Load(f.path)
	require.NoError(t, err)
	f.store = directory.NewStore(snap)
	directory.SetDebounce(f.store, 30*time.Millisecond)
	logger := hclog.New(&hclog.LoggerOptions{Output: f.logs, Level: hclog.Debug})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		f.done <- f.store.Watch(ctx, f.path, logger, directory.WatchHooks{
			Reloaded: func(*directory.Snapshot) { f.reloads.Add(1) },
			Failed: func(err error) {
				f.failMu.Lock()
				f.failures = append(f.failures, err)
				f.failMu.Unlock()
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
	// Wait until the watch is set up, so that the writes below are seen.
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if f.logs.count("watching identity file") == 0 {
			return errors.New("watch not started")
		}
		return nil
	})
	return f
}

func (f *watchFixture) waitUser(t *testing.T, name string) {
	t.Helper()
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if _, ok := f.store.Current().UserByUsername(name); !ok {
			return fmt.Errorf("user %q not loaded; logs:\n%s", name, f.logs.String())
		}
		return nil
	})
}

func TestWatchInPlaceRewrite(t *testing.T) {
	f := startWatch(t, directory.DemoYAML)
	old := f.store.Current()
	require.NoError(t, os.WriteFile(f.path, withUser("carol"), 0o600))
	f.waitUser(t, "carol")
	require.NotSame(t, old, f.store.Current())
	require.EqualValues(t, 1, f.reloads.Load())
}

func TestWatchAtomicRename(t *testing.T) {
	f := startWatch(t, directory.DemoYAML)
	tmp := filepath.Join(filepath.Dir(f.path), ".identities.yaml.tmp")
	require.NoError(t, os.WriteFile(tmp, withUser("dave"), 0o600))
	require.NoError(t, os.Rename(tmp, f.path))
	f.waitUser(t, "dave")

	// And a second replacement, as editors do on every save.
	require.NoError(t, os.WriteFile(tmp, withUser("erin"), 0o600))
	require.NoError(t, os.Rename(tmp, f.path))
	f.waitUser(t, "erin")
	_, stillDave := f.store.Current().UserByUsername("dave")
	require.False(t, stillDave)
	require.EqualValues(t, 2, f.reloads.Load())
}

func TestWatchBrokenFileKeepsSnapshot(t *testing.T) {
	f := startWatch(t, directory.DemoYAML)
	good := f.store.Current()

	// A file that does not parse is logged and the old snapshot stays.
	require.NoError(t, os.WriteFile(f.path, []byte("users: [{uuid: x, username: y, password_hash: plain}]"), 0o600))
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if f.logs.count("identity file rejected") != 1 {
			return errors.New("rejection not logged")
		}
		return nil
	})
	require.Contains(t, f.logs.String(), "invalid bcrypt hash", "the log says why")
	require.Same(t, good, f.store.Current())
	fails := f.waitFailures(t, 1)
	require.ErrorIs(t, fails[0], directory.ErrInvalid)
	require.ErrorIs(t, fails[0], directory.ErrBadHash)

	// A file that fails to parse as YAML, too.
	require.NoError(t, os.WriteFile(f.path, []byte("sites: [[["), 0o600))
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if f.logs.count("identity file rejected") != 2 {
			return errors.New("second rejection not logged")
		}
		return nil
	})
	require.Same(t, good, f.store.Current())
	require.ErrorIs(t, f.waitFailures(t, 2)[1], directory.ErrSyntax)

	// Then a fixed file is picked up.
	require.NoError(t, os.WriteFile(f.path, withUser("frank"), 0o600))
	f.waitUser(t, "frank")
	require.EqualValues(t, 1, f.reloads.Load())
	require.Len(t, f.failed(), 2)
}

func TestWatchReportsFailuresUntilFixed(t *testing.T) {
	tests := []struct {
		name    string
		broken  []byte
		wantErr error
	}{
		{name: "invalid", broken: []byte("sites: [[["), wantErr: directory.ErrInvalid},
		{name: "empty", broken: []byte("  \n"), wantErr: directory.ErrEmpty},
		{name: "missing", broken: nil, wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startWatch(t, directory.DemoYAML)
			good := f.store.Current()
			if tt.broken == nil {
				require.NoError(t, os.Remove(f.path))
			} else {
				require.NoError(t, os.WriteFile(f.path, tt.broken, 0o600))
			}
			got := f.waitFailures(t, 1)
			require.ErrorIs(t, got[0], tt.wantErr)
			require.Same(t, good, f.store.Current())

			// Back to the content in force: no new snapshot, but a reload is reported so the
			// failure state clears.
			require.NoError(t, os.WriteFile(f.path, directory.DemoYAML, 0o600))
			checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				if f.reloads.Load() != 1 {
					return errors.New("restore not reported")
				}
				return nil
			})
			require.Same(t, good, f.store.Current())

			// A further identical rewrite is not reported again; a real change is.
			require.NoError(t, os.WriteFile(f.path, directory.DemoYAML, 0o600))
			require.NoError(t, os.WriteFile(f.path, withUser("judy"), 0o600))
			f.waitUser(t, "judy")
			require.EqualValues(t, 2, f.reloads.Load())
			require.Len(t, f.failed(), 1)
		})
	}
}

func TestWatchSkipsIdenticalContent(t *testing.T) {
	f := startWatch(t, directory.DemoYAML)
	// Same bytes, rewritten and renamed over: no reload.
	require.NoError(t, os.WriteFile(f.path, directory.DemoYAML, 0o600))
	tmp := f.path + ".new"
	require.NoError(t, os.WriteFile(tmp, directory.DemoYAML, 0o600))
	require.NoError(t, os.Rename(tmp, f.path))
	// Events are handled in order, so once the next real change is loaded, the identical
	// rewrites above have been handled too.
	require.NoError(t, os.WriteFile(f.path, withUser("grace"), 0o600))
	f.waitUser(t, "grace")
	require.EqualValues(t, 1, f.reloads.Load())
}

func TestWatchMissingFileThenCreated(t *testing.T) {
	f := startWatch(t, directory.DemoYAML)
	good := f.store.Current()
	require.NoError(t, os.Remove(f.path))
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if f.logs.count("identity file missing") == 0 {
			return errors.New("missing file not logged")
		}
		return nil
	})
	require.Same(t, good, f.store.Current())
	require.NoError(t, os.WriteFile(f.path, withUser("heidi"), 0o600))
	f.waitUser(t, "heidi")
}

func TestWatchStartupCheck(t *testing.T) {
	// The store holds the demo, but the file already says something else: Watch loads it at once.
	path := filepath.Join(t.TempDir(), "ids.yaml")
	require.NoError(t, os.WriteFile(path, withUser("ivan"), 0o600))
	st := directory.NewStore(directory.Demo())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loaded := make(chan *directory.Snapshot, 1)
	go func() {
		_ = st.Watch(ctx, path, nil, directory.WatchHooks{Reloaded: func(s *directory.Snapshot) { loaded <- s }})
	}()
	select {
	case s := <-loaded:
		_, ok := s.UserByUsername("ivan")
		require.True(t, ok)
		require.Same(t, s, st.Current())
	case <-time.After(5 * time.Second):
		t.Fatal("startup reload not done")
	}
}

func TestWatchErrors(t *testing.T) {
	st := directory.NewStore(nil)
	err := st.Watch(context.Background(), filepath.Join(t.TempDir(), "no-such-dir", "ids.yaml"), nil, directory.WatchHooks{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "no-such-dir")

	// A cancelled context returns nil.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, st.Watch(ctx, filepath.Join(t.TempDir(), "ids.yaml"), nil, directory.WatchHooks{}))
}

func TestStore(t *testing.T) {
	st := directory.NewStore(nil)
	require.NotNil(t, st.Current())
	require.Equal(t, directory.Counts{}, st.Current().Counts())
	demo := directory.Demo()
	old := st.Swap(demo)
	require.Equal(t, directory.Counts{}, old.Counts())
	require.Same(t, demo, st.Current())
	require.Same(t, demo, st.Swap(nil))
	require.NotNil(t, st.Current())
}

// TestStoreHammer swaps snapshots while readers use them; run with -race.
func TestStoreHammer(t *testing.T) {
	a := directory.Demo()
	b, err := directory.Parse(withUser("judy"))
	require.NoError(t, err)
	st := directory.NewStore(a)
	p, n := 8, 2000
	if testing.Short() {
		n = 200
	}
	var wg sync.WaitGroup
	for g := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if g == 0 && i%10 == 0 {
					if i%20 == 0 {
						st.Swap(b)
					} else {
						st.Swap(a)
					}
				}
				s := st.Current()
				acc, ok := s.Principal(directory.KindUser, directory.DemoAliceUUID)
				if !ok || !acc.Sees(directory.KindParticipant, directory.DemoPatUUID) {
					t.Error("inconsistent snapshot")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestWatchIgnoresEmptyFile(t *testing.T) {
	f := startWatch(t, directory.DemoYAML)
	good := f.store.Current()
	require.NoError(t, os.WriteFile(f.path, nil, 0o600))
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if f.logs.count("identity file is empty") == 0 {
			return errors.New("empty file not logged")
		}
		return nil
	})
	require.Same(t, good, f.store.Current())

	// "{}" empties the directory on purpose.
	require.NoError(t, os.WriteFile(f.path, []byte("{}\n"), 0o600))
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if c := f.store.Current().Counts(); c != (directory.Counts{}) {
			return fmt.Errorf("not emptied: %+v", c)
		}
		return nil
	})
}
