// Package fswatch follows a directory of files that teragate hot-reloads (plugins, station
// roles, the identity file, the config file) and reads those files without trusting what the file
// system holds under their names.
//
// [Run] is the one watch loop of the gateway: it sets up an fsnotify watch of a directory, loads
// what is there once, then calls back per file after the last event of a burst (debounced per
// file, never two loads of one file at once), logs every watch error, and rescans after the
// kernel's event queue overflowed. [ReadFile] is the one way those callbacks read a file: regular
// files only, symbolic links only when they stay inside the directory, a size cap, and a time
// bound that also ends with the watch, so stopping a watcher never waits on a read.
package fswatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// DefaultDebounce is the quiet time [Run] waits after the last event of a file before it calls
// back, so a file written in several steps is read once, complete.
const DefaultDebounce = 100 * time.Millisecond

// Config describes one watch.
type Config struct {
	// Dir is the directory followed. It must exist.
	Dir string
	// Match tells which names of Dir concern the caller and the key that groups their events:
	// events of one key are debounced together and handled by one Changed call. A nil Match
	// takes every name as its own key.
	Match func(name string) (key string, ok bool)
	// Debounce is the quiet time after the last event of a key before Changed. Zero means
	// [DefaultDebounce].
	Debounce time.Duration
	// Logger receives the watch errors. Nil means no logging.
	Logger hclog.Logger
	// Initial, if set, is called once the watch is in place, before any Changed, with the keys
	// of the matching names present in Dir (sorted, each once). Events that arrive while it runs
	// are handled after it returns.
	Initial func(ctx context.Context, keys []string)
	// Changed is called with a key after the last event of a burst of events of that key
	// (created, written, removed, renamed, chmod: the callback looks at the file). It runs on a
	// goroutine of its own, never twice at once for one key; a burst that arrives while it runs
	// calls it again once it returns. ctx ends when the watch stops.
	Changed func(ctx context.Context, key string)
	// Failed, if set, is told about each watch error after it is logged (for a metric).
	Failed func(error)
}

// Run follows cfg.Dir until ctx is done, then waits for the callbacks running (which see ctx
// done, so a [ReadFile] in them returns at once) and returns nil. It returns an error, without
// calling anything, only when the watch cannot be set up.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Match == nil {
		cfg.Match = func(name string) (string, bool) { return name, true }
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	defer w.Close()
	if err := w.Add(cfg.Dir); err != nil {
		return fmt.Errorf("watch %s: %w", cfg.Dir, err)
	}
	l := &loop{cfg: cfg, ctx: ctx, keys: map[string]*keyState{}, seen: map[string]bool{},
		fired: make(chan firing), done: make(chan string), stop: make(chan struct{})}
	defer l.shutdown()
	present := l.scan()
	if cfg.Initial != nil {
		cfg.Initial(ctx, present)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			l.failed(err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if key, ok := cfg.Match(filepath.Base(ev.Name)); ok {
				l.seen[key] = true
				l.schedule(key)
			}
		case f := <-l.fired:
			l.fire(f)
		case key := <-l.done:
			l.finished(key)
		}
	}
}

// keyState is the debounce and run state of one key; it is dropped when the key is idle.
type keyState struct {
	timer   *time.Timer
	gen     uint64 // which timer is current: a stale one that fired anyway is ignored
	running bool
	again   bool // events came while Changed ran
}

type firing struct {
	key string
	gen uint64
}

// loop is the state of one Run; only Run's goroutine touches it.
type loop struct {
	cfg   Config
	ctx   context.Context
	keys  map[string]*keyState
	seen  map[string]bool // keys present or seen since the last scan, rescanned after an overflow
	fired chan firing
	done  chan string
	stop  chan struct{}
	wg    sync.WaitGroup
}

// scan lists the matching keys of the directory, sorted, and remembers them as seen.
func (l *loop) scan() []string {
	ents, err := os.ReadDir(l.cfg.Dir)
	if err != nil {
		l.failed(fmt.Errorf("list: %w", err))
	}
	var keys []string
	for _, e := range ents {
		if key, ok := l.cfg.Match(e.Name()); ok && !slices.Contains(keys, key) {
			keys = append(keys, key)
			l.seen[key] = true
		}
	}
	slices.Sort(keys)
	return keys
}

// failed logs and reports a watch error; after an overflow (events were lost) every key present
// or seen before is handled again.
func (l *loop) failed(err error) {
	l.cfg.Logger.Warn("directory watch error", "dir", l.cfg.Dir, "error", err)
	if l.cfg.Failed != nil {
		l.cfg.Failed(err)
	}
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		before := l.seen
		l.seen = map[string]bool{}
		for _, k := range l.scan() {
			before[k] = true
		}
		for k := range before {
			l.seen[k] = true
			l.schedule(k)
		}
	}
}

// schedule (re)starts the debounce of key.
func (l *loop) schedule(key string) {
	st := l.keys[key]
	if st == nil {
		st = &keyState{}
		l.keys[key] = st
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	st.gen++
	f := firing{key, st.gen}
	st.timer = time.AfterFunc(l.cfg.Debounce, func() {
		select {
		case l.fired <- f:
		case <-l.stop:
		}
	})
}

// fire handles the end of a debounce: run Changed, or, when it runs already, once more after.
func (l *loop) fire(f firing) {
	st := l.keys[f.key]
	if st == nil || st.gen != f.gen {
		return
	}
	st.timer = nil
	if st.running {
		st.again = true
		return
	}
	l.run(f.key, st)
}

func (l *loop) run(key string, st *keyState) {
	st.running = true
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.cfg.Changed(l.ctx, key)
		select {
		case l.done <- key:
		case <-l.stop:
		}
	}()
}

// finished handles the return of Changed for key.
func (l *loop) finished(key string) {
	st := l.keys[key]
	if st == nil {
		return
	}
	st.running = false
	switch {
	case st.again:
		st.again = false
		l.run(key, st)
	case st.timer == nil:
		delete(l.keys, key)
	}
}

// shutdown stops the timers and waits for the running callbacks.
func (l *loop) shutdown() {
	close(l.stop)
	for _, st := range l.keys {
		if st.timer != nil {
			st.timer.Stop()
		}
	}
	l.wg.Wait()
}
