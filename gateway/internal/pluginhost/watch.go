package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/teragate/teragate/gateway/internal/fswatch"
)

// Limits of a plugin file: a larger file, or one whose read takes longer, is rejected.
const (
	MaxFileBytes    = 64 << 20
	FileReadTimeout = 10 * time.Second
)

// Watch loads every plugin of dir and the built-ins, once, then follows the directory until ctx
// is done: a created, written, chmod-ed or renamed-in <id>.wasm is reloaded after the debounce
// (an atomic rename arrives as a Create of the target), a removed one is replaced by its built-in
// or unloaded. Loads run off the watcher goroutine, one at a time per id. Files are read with
// [fswatch.ReadFile] (regular files of at most [MaxFileBytes], symbolic links only inside dir,
// [FileReadTimeout]); anything else is rejected with its reason, logged and counted like an
// invalid module. onReady, if set, is called exactly once: after the initial load, or when the
// watch cannot be set up (then the directory is loaded once, unwatched, and the error returned).
func (r *Registry) Watch(ctx context.Context, dir string, onReady func()) error {
	var once sync.Once
	ready := func() {
		if onReady != nil {
			once.Do(onReady)
		}
	}
	defer ready()
	err := fswatch.Run(ctx, fswatch.Config{
		Dir:      dir,
		Match:    idOfFile,
		Debounce: r.cfg.Debounce,
		Logger:   r.log,
		Initial: func(ctx context.Context, _ []string) {
			files, err := r.loadDirFiles(ctx, dir)
			if err != nil {
				r.log.Warn("some plugins were rejected at start; their ids keep their built-in or, without one, the native filter", "error", err)
			}
			if r.cfg.Share != nil {
				r.cfg.Share.Initial(ctx, files)
			}
			ready()
		},
		Changed: func(ctx context.Context, id string) { r.sync(ctx, id, dir) },
	})
	if err != nil {
		files, lerr := r.loadDirFiles(ctx, dir)
		if lerr != nil {
			r.log.Warn("some plugins were rejected at start", "error", lerr)
		}
		if r.cfg.Share != nil {
			r.cfg.Share.Initial(ctx, files)
		}
		return fmt.Errorf("pluginhost: %w", err)
	}
	return nil
}

// sync brings plugin id in line with its file: load it when it exists; when it is gone, go back
// to the built-in of id or, without one, unload it.
func (r *Registry) sync(ctx context.Context, id, dir string) {
	if _, err := os.Lstat(filepath.Join(dir, id+".wasm")); errors.Is(err, fs.ErrNotExist) {
		if ok, _ := r.LoadBuiltin(id); !ok {
			r.Unload(id)
		}
		if r.cfg.Share != nil {
			r.cfg.Share.Removed(ctx, id)
		}
		return
	}
	data, err := r.readLoad(ctx, id, dir, id+".wasm") // rejections are logged, counted and kept for the admin API
	if r.cfg.Share != nil && ctx.Err() == nil {
		r.cfg.Share.Changed(ctx, id, data, err)
	}
}

// loadFile loads plugin id from the file name of dir, read with [fswatch.ReadFile]. A file that
// cannot be read safely is a rejection like an invalid module; a read cut short because ctx ended
// (the watch stops) is not.
func (r *Registry) loadFile(ctx context.Context, id, dir, name string) error {
	_, err := r.readLoad(ctx, id, dir, name)
	return err
}

// readLoad is loadFile that also returns the bytes read (nil when the file could not be read).
func (r *Registry) readLoad(ctx context.Context, id, dir, name string) ([]byte, error) {
	path := filepath.Join(dir, name)
	data, err := fswatch.ReadFile(ctx, dir, name, fswatch.Limits{MaxBytes: MaxFileBytes, Timeout: FileReadTimeout})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		r.plugin(id).reject(path, err)
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, id, err)
	}
	return data, r.load(id, path, data)
}

// LoadDir loads every <id>.wasm file of dir (an empty dir means none), then the built-ins whose
// id has no loaded file: a rejected file leaves its id to the built-in. Plugins compile in
// parallel, GOMAXPROCS at a time. Rejected files are logged and reported by [Registry.Infos];
// the error joins them.
func (r *Registry) LoadDir(dir string) error { return r.loadDir(context.Background(), dir) }

func (r *Registry) loadDir(ctx context.Context, dir string) error {
	_, err := r.loadDirFiles(ctx, dir)
	return err
}

// loadDirFiles is loadDir that also returns the bytes of each file that loaded, by id.
func (r *Registry) loadDirFiles(ctx context.Context, dir string) (map[string][]byte, error) {
	var files []string
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("pluginhost: %w", err)
		}
		for _, e := range ents {
			if _, ok := idOfFile(e.Name()); ok { // a directory named <id>.wasm is rejected with its reason
				files = append(files, e.Name())
			}
		}
	}
	var (
		mu     sync.Mutex
		errs   []error
		loaded = map[string]bool{}
		bytes  = map[string][]byte{}
	)
	parallel(len(files), func(i int) {
		id, _ := idOfFile(files[i])
		data, err := r.readLoad(ctx, id, dir, files[i])
		mu.Lock()
		loaded[id] = err == nil
		if err == nil {
			bytes[id] = data
		}
		errs = append(errs, err)
		mu.Unlock()
	})
	var ids []string
	for id := range r.cfg.Builtin {
		if !loaded[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	parallel(len(ids), func(i int) {
		if _, err := r.LoadBuiltin(ids[i]); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return bytes, errors.Join(errs...)
}

// parallel runs f(0)…f(n-1), GOMAXPROCS at a time, and waits for them.
func parallel(n int, f func(i int)) {
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

func idOfFile(name string) (string, bool) {
	id, ok := strings.CutSuffix(name, ".wasm")
	return id, ok && ValidID(id)
}
