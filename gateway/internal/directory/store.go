package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/fswatch"
)

// DefaultDebounce is how long [Store.Watch] waits after the last file-system event before it
// reloads, so that a file written in several steps is read once, complete.
const DefaultDebounce = fswatch.DefaultDebounce

// Limits of the identity file: a larger file, or one whose read takes longer, is refused (and the
// directory in force kept).
const (
	MaxFileBytes    = 64 << 20
	FileReadTimeout = 10 * time.Second
)

// readFile reads the identity file at path with [fswatch.ReadFile]: a regular file of at most
// [MaxFileBytes], a symbolic link only when it resolves inside the file's directory (as the
// ..data links of a Kubernetes ConfigMap or Secret volume do), read within [FileReadTimeout].
func readFile(ctx context.Context, path string) ([]byte, error) {
	return fswatch.ReadFile(ctx, filepath.Dir(path), filepath.Base(path),
		fswatch.Limits{MaxBytes: MaxFileBytes, Timeout: FileReadTimeout})
}

// empty is the snapshot of an empty identity file.
var empty = func() *Snapshot {
	s, err := Parse(nil)
	if err != nil {
		panic(err)
	}
	return s
}()

// Store holds the current [Snapshot]. Readers call [Store.Current] (one atomic load) on every use
// and never see a partly updated directory; [Store.Swap] and [Store.Watch] replace it as a whole.
// A Store is safe for concurrent use. The zero Store is not usable; call [NewStore].
type Store struct {
	cur      atomic.Pointer[Snapshot]
	debounce time.Duration
}

// NewStore returns a Store holding snap. A nil snap means an empty directory.
func NewStore(snap *Snapshot) *Store {
	if snap == nil {
		snap = empty
	}
	st := &Store{debounce: DefaultDebounce}
	st.cur.Store(snap)
	return st
}

// Current returns the current snapshot. It is never nil.
func (st *Store) Current() *Snapshot { return st.cur.Load() }

// Swap installs snap as the current snapshot and returns the previous one. A nil snap means an
// empty directory.
func (st *Store) Swap(snap *Snapshot) (old *Snapshot) {
	if snap == nil {
		snap = empty
	}
	return st.cur.Swap(snap)
}

// WatchHooks receive the outcome of the reload attempts of [Store.Watch]. They are called one at
// a time, never concurrently, and should return quickly; a nil hook is not called.
type WatchHooks struct {
	// Reloaded is called with the snapshot in force after a successful reload: a new snapshot
	// that was just swapped in, or, when the file returns to the content already in force after a
	// failed attempt, the current snapshot (so a "last reload failed" state can be cleared).
	Reloaded func(*Snapshot)
	// Failed is called when the file changed but could not be installed: it cannot be read or is
	// missing (wraps the [os] error), is empty ([ErrEmpty]), or was rejected by [Parse] (matches
	// [ErrInvalid]). The current snapshot stays in force. A version already rejected is not
	// reported again until the content changes.
	Failed func(error)
}

// Watch keeps the store in step with the identity file at path until ctx is done, then returns nil.
// It returns an error only when the watch cannot be set up (for example, the directory containing
// path does not exist).
//
// Watch observes the file's directory, not the file, so that editors that replace the file and
// atomic write-then-rename updates (including Kubernetes ConfigMap symlink swaps) are seen. After
// the last event of a burst it waits [DefaultDebounce], reads the file (as [Load] does: a regular
// file, symbolic links only inside its directory, at most [MaxFileBytes], within
// [FileReadTimeout]; anything else is a failed attempt) and hashes it; identical
// bytes (compared with the current snapshot and with the last rejected version) are skipped. A file
// that cannot be read or parsed is logged at error level with the reason, reported to
// hooks.Failed, and the current snapshot is kept. So is an empty (or whitespace-only) file, which
// is far more often a writer caught between truncating and writing than a wish to remove every
// identity; write "{}" to empty the directory. On success the new snapshot is swapped in, then
// hooks.Reloaded is called with it.
//
// The file is also checked once when Watch starts, so a change made between [Load] and Watch is
// not missed.
func (st *Store) Watch(ctx context.Context, path string, logger hclog.Logger, hooks WatchHooks) error {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("directory: watch %s: %w", path, err)
	}
	logger.Debug("watching identity file", "path", abs)
	r := reloader{st: st, path: abs, logger: logger, hooks: hooks}
	name := filepath.Base(abs)
	err = fswatch.Run(ctx, fswatch.Config{
		Dir: filepath.Dir(abs),
		// Any event in the directory may concern the file (renames onto it, symlink swaps of a
		// ConfigMap's ..data): all are one key; the content hash makes spurious checks cheap.
		Match:    func(string) (string, bool) { return name, true },
		Debounce: st.debounce,
		Logger:   logger,
		Initial:  func(ctx context.Context, _ []string) { r.check(ctx) },
		Changed:  func(ctx context.Context, _ string) { r.check(ctx) },
	})
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	return nil
}

// reloader remembers what was last seen so unchanged content is not parsed again.
type reloader struct {
	st       *Store
	path     string
	logger   hclog.Logger
	hooks    WatchHooks
	rejected [sha256.Size]byte // hash of the last version that failed to parse
	hasRej   bool
	failing  bool // the last attempt failed (reported to hooks.Failed)
}

// fail reports a failed attempt.
func (r *reloader) fail(err error) {
	r.failing = true
	if r.hooks.Failed != nil {
		r.hooks.Failed(err)
	}
}

func (r *reloader) check(ctx context.Context) {
	data, err := readFile(ctx, r.path)
	if err != nil && ctx.Err() != nil {
		return // stopping
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Mid-rename, or deleted: keep the current directory until a file shows up again.
			r.logger.Warn("identity file missing; keeping current directory", "path", r.path)
		} else {
			r.logger.Error("cannot read identity file; keeping current directory", "path", r.path, "error", err)
		}
		r.hasRej = false // whatever shows up next is checked
		r.fail(fmt.Errorf("directory: read identity file: %w", err))
		return
	}
	h := sha256.Sum256(data)
	if r.hasRej && h == r.rejected {
		return
	}
	if cur := r.st.Current(); h == cur.hash {
		r.hasRej = false
		if r.failing {
			// Back to the content in force after a failed attempt: the directory is right again.
			r.failing = false
			r.logger.Info("identity file restored to the directory in force", "path", r.path, "hash", shortHash(cur))
			if r.hooks.Reloaded != nil {
				r.hooks.Reloaded(cur)
			}
		}
		return
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// Most likely a writer that truncated the file and has not written it yet. An empty
		// directory has to be asked for explicitly ("{}").
		r.rejected, r.hasRej = h, true
		r.logger.Warn("identity file is empty; keeping current directory (write {} to empty it)", "path", r.path)
		r.fail(ErrEmpty)
		return
	}
	snap, err := Parse(data)
	if err != nil {
		r.rejected, r.hasRej = h, true
		r.logger.Error("identity file rejected; keeping current directory", "path", r.path, "error", err)
		r.fail(err)
		return
	}
	r.hasRej, r.failing = false, false
	old := r.st.Swap(snap)
	c := snap.Counts()
	r.logger.Info("identity file reloaded", "path", r.path, "old_hash", shortHash(old), "hash", snap.Hash()[:12],
		"users", c.Users, "participants", c.Participants, "devices", c.Devices, "services", c.Services)
	if r.hooks.Reloaded != nil {
		r.hooks.Reloaded(snap)
	}
}

func shortHash(s *Snapshot) string { return s.Hash()[:12] }
