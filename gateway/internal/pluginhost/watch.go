package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch loads every plugin of dir and the built-ins, then follows the directory until ctx is
// done: a created, written or renamed-in <id>.wasm is reloaded after the debounce (an atomic
// rename arrives as a Create of the target), a removed one is replaced by its built-in or
// unloaded. Loads run off the watcher goroutine, one at a
// time per id. onReady, if set, is called after the initial load.
func (r *Registry) Watch(ctx context.Context, dir string, onReady func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return err
	}
	if err := r.LoadDir(dir); err != nil {
		r.log.Warn("some plugins were rejected at start", "error", err)
	}
	if onReady != nil {
		onReady()
	}
	debounce := r.cfg.Debounce
	if debounce <= 0 {
		debounce = 25 * time.Millisecond
	}
	var mu sync.Mutex
	timers := map[string]*time.Timer{}
	var wg sync.WaitGroup
	defer func() {
		mu.Lock()
		for _, t := range timers {
			if t.Stop() {
				wg.Done()
			}
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("plugin directory watch error", "error", err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Base(ev.Name)
			id, ok := idOfFile(name)
			if !ok || ev.Op == fsnotify.Chmod {
				continue
			}
			path := filepath.Join(dir, name)
			mu.Lock()
			if t := timers[id]; t != nil && t.Stop() {
				t.Reset(debounce)
				mu.Unlock()
				continue
			}
			wg.Add(1)
			var t *time.Timer
			t = time.AfterFunc(debounce, func() {
				defer wg.Done()
				mu.Lock()
				if timers[id] == t {
					delete(timers, id)
				}
				mu.Unlock()
				r.sync(id, path)
			})
			timers[id] = t
			mu.Unlock()
		}
	}
}

// sync brings plugin id in line with its file: load it when it exists; when it is gone, go back
// to the built-in of id or, without one, unload it.
func (r *Registry) sync(id, path string) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if ok, _ := r.LoadBuiltin(id); !ok {
			r.Unload(id)
		}
		return
	}
	_ = r.LoadFile(id, path) // rejections are logged, counted and kept for the admin API
}
