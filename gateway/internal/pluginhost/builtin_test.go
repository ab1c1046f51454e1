package pluginhost

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// withCustomSection returns wasm with an extra (ignored) custom section: the same behaviour under
// another hash, so a test can tell two versions apart.
func withCustomSection(wasm []byte, name string) []byte {
	body := append(append([]byte{byte(len(name))}, name...), "v2"...) // wazero wants a payload
	out := append([]byte{}, wasm...)
	return append(append(out, 0, byte(len(body))), body...)
}

func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, b, 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// TestBuiltinReplacedByFile: a built-in serves its id until the plugin directory holds a valid
// file of that id; an invalid file leaves the serving version alone; removing the file brings the
// built-in back, all while the filter keeps answering.
func TestBuiltinReplacedByFile(t *testing.T) {
	wasm, cfg := goodEcho(t)
	e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg}})
	e.r.cfg.Builtin = map[string][]byte{"filter.user": wasm}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- e.r.Watch(ctx, dir, func() { close(ready) }) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	<-ready

	f := e.r.Filter(directory.KindUser, nil, nil)
	check := func() {
		t.Helper()
		got, err := decide(t, f, participantEvent(directory.DemoPatUUID), e.recipients(3))
		require.NoError(t, err)
		require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))
	}
	builtinHash := hashOf(wasm)
	waitFor := func(what string, ok func(Info) bool) Info {
		t.Helper()
		var in Info
		require.Eventually(t, func() bool { in, _ = e.r.Info("filter.user"); return ok(in) }, 20*time.Second, 10*time.Millisecond, what)
		return in
	}
	in := waitFor("built-in serves", func(in Info) bool { return in.File == BuiltinFile })
	require.Equal(t, builtinHash, in.Hash)
	require.Equal(t, StateActive, in.State)
	check()

	path := filepath.Join(dir, "filter.user.wasm")
	custom := withCustomSection(wasm, "operator")
	writeAtomic(t, path, custom)
	in = waitFor("the file replaces the built-in", func(in Info) bool { return in.File == path })
	require.Equal(t, hashOf(custom), in.Hash)
	check()

	writeAtomic(t, path, []byte("\x00asm not a module"))
	waitFor("the bad file is rejected", func(in Info) bool { return in.LastRejection != "" })
	in, _ = e.r.Info("filter.user")
	require.Equal(t, hashOf(custom), in.Hash, "an invalid file never replaces a working version")
	check()

	require.NoError(t, os.Remove(path))
	in = waitFor("removing the file brings the built-in back", func(in Info) bool { return in.File == BuiltinFile })
	require.Equal(t, builtinHash, in.Hash)
	require.Equal(t, StateActive, in.State)
	check()
}

// TestBuiltinWhenFileInvalidAtStart: a plugin directory whose file of an id is invalid at start
// leaves that id to its built-in, and says why.
func TestBuiltinWhenFileInvalidAtStart(t *testing.T) {
	tests := []struct {
		name    string
		file    []byte // nil: no file
		wantErr bool
	}{
		{"no file", nil, false},
		{"garbage file", []byte("not wasm"), true},
		{"trapping init", wasmFile(t, "inittrap"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wasm, cfg := goodEcho(t)
			e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg}})
			e.r.cfg.Builtin = map[string][]byte{"filter.user": wasm}
			dir := t.TempDir()
			if tt.file != nil {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "filter.user.wasm"), tt.file, 0o644))
			}
			err := e.r.LoadDir(dir)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalid)
			} else {
				require.NoError(t, err)
			}
			in, ok := e.r.Info("filter.user")
			require.True(t, ok)
			require.Equal(t, BuiltinFile, in.File)
			require.Equal(t, StateActive, in.State)
			require.Equal(t, tt.wantErr, in.LastRejection != "", in.LastRejection)
			require.Equal(t, "filter.user", e.r.Serving(directory.KindUser))
		})
	}
}

// TestQuarantineRollsBack: with OnQuarantine rollback, a reload that passes validation but keeps
// failing on real calls is quarantined and replaced by the version it replaced or, with none, by
// the built-in; with neither, or by default, the quarantined version stays and calls fail closed.
func TestQuarantineRollsBack(t *testing.T) {
	tests := []struct {
		name     string
		policy   string
		previous bool // a good version served before the bad one
		builtin  bool
		wantFile string // "" when no rollback happens
	}{
		{"to the previous version", Rollback, true, false, "good.wasm"},
		{"to the previous version before the built-in", Rollback, true, true, "good.wasm"},
		{"to the built-in", Rollback, false, true, BuiltinFile},
		{"nowhere", Rollback, false, false, ""},
		{"fail closed by default", "", true, true, ""},
		{"fail closed", FailClosed, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wasm, cfg := goodEcho(t)
			e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg, MaxFailures: 3, PoolSize: 1, OnQuarantine: tt.policy}})
			if tt.builtin {
				e.r.cfg.Builtin = map[string][]byte{"filter.user": withCustomSection(wasm, "builtin")}
			}
			if tt.previous {
				require.NoError(t, e.r.load("filter.user", "good.wasm", wasm))
			}
			require.NoError(t, e.r.load("filter.user", "bad.wasm", wasmFile(t, "guesterr")))
			f := e.r.Filter(directory.KindUser, nil, nil)
			ev, rs := participantEvent(directory.DemoPatUUID), e.recipients(3)
			for range 3 {
				_, err := decide(t, f, ev, rs)
				require.ErrorIs(t, err, ErrGuest)
			}
			if tt.wantFile == "" {
				time.Sleep(100 * time.Millisecond) // a rollback would be under way by now
				_, err := decide(t, f, ev, rs)
				require.ErrorIs(t, err, ErrQuarantined, "fails closed")
				in, _ := e.r.Info("filter.user")
				require.Equal(t, StateQuarantined, in.State)
				require.Equal(t, "bad.wasm", in.File)
				return
			}
			var in Info
			require.Eventually(t, func() bool { in, _ = e.r.Info("filter.user"); return in.File == tt.wantFile }, 20*time.Second, 10*time.Millisecond)
			require.Equal(t, StateActive, in.State)
			require.Contains(t, in.LastError, "rolled back from")
			got, err := decide(t, f, ev, rs)
			require.NoError(t, err)
			require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))
		})
	}
}

// TestReconfigure: new settings rebuild the plugin from the same bytes and take effect; invalid
// settings change nothing.
func TestReconfigure(t *testing.T) {
	wasm, cfgPat := goodEcho(t)
	e := newEnv(t, map[string]Settings{"filter.user": {Config: cfgPat}})
	require.NoError(t, e.r.Load("filter.user", wasm))
	f := e.r.Filter(directory.KindUser, nil, nil)
	ev, rs := participantEvent(directory.DemoPatUUID), e.recipients(3)
	got, err := decide(t, f, ev, rs)
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))

	// Unchanged settings rebuild nothing.
	ids, err := e.r.Reconfigure(map[string]Settings{"filter.user": {Config: cfgPat}})
	require.NoError(t, err)
	require.Empty(t, ids)

	// The plugin now answers with a rule about Paula (bob's participant) for every event.
	cfgPaula := echoConfig(t, &pluginv1.InitResult{Name: "echo", Version: "1"}, visibleRule("participant", directory.DemoPaulaUUID), nil, nil)
	ids, err = e.r.Reconfigure(map[string]Settings{"filter.user": {Config: cfgPaula, PoolSize: 2}})
	require.NoError(t, err)
	require.Equal(t, []string{"filter.user"}, ids)
	got, err = decide(t, f, ev, rs)
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{0, 1, 1}, verdicts(got))
	in, _ := e.r.Info("filter.user")
	require.Equal(t, 2, in.PoolSize)

	_, err = e.r.Reconfigure(map[string]Settings{"filter.user": {MemoryPages: 1}})
	require.ErrorIs(t, err, ErrInvalid)
	got, err = decide(t, f, ev, rs)
	require.NoError(t, err)
	require.Equal(t, []filter.Verdict{0, 1, 1}, verdicts(got), "invalid settings changed nothing")
}

// TestRemovedFileRestoresBuiltin: removing a plugin file always takes its version out of
// service and brings the built-in back: when that version was quarantined (a bulk-memory loop
// stopped at its deadline), while a hostile neighbour loops on bulk memory and the garbage
// collector runs (a guest that never returned to Go held every stop-the-world, and with it the
// built-in's instantiation, past its init deadline), and when the built-in itself fails to build
// (the removed version stops serving at once; the built-in is retried until it builds).
func TestRemovedFileRestoresBuiltin(t *testing.T) {
	// An init result that is not a protobuf: the echo built-in fails to build with it.
	badCfg := append(binary.LittleEndian.AppendUint32(nil, 2), 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff)
	tests := []struct {
		name       string
		file       string // the guest of filter.user.wasm; "" for a copy of the built-in
		quarantine bool   // call it until it is quarantined before the removal
		neighbour  bool   // filter.device loops on bulk memory meanwhile, under GC pressure
		badBuiltin bool   // the built-in fails to build until the settings are fixed
	}{
		{name: "quarantined version", file: "bulkfill", quarantine: true},
		{name: "hostile neighbour", neighbour: true},
		{name: "built-in fails to build", file: "bulkfill", badBuiltin: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wasm, cfg := goodEcho(t)
			userCfg := cfg
			if tt.badBuiltin {
				userCfg = badCfg
			}
			settings := map[string]Settings{
				"filter.user":   {Config: userCfg, Timeout: 200 * time.Millisecond, PoolSize: 1, MaxFailures: 2},
				"filter.device": {Timeout: 200 * time.Millisecond, PoolSize: 1, MaxFailures: 1000},
			}
			e := newEnv(t, settings)
			e.r.cfg.Builtin = map[string][]byte{"filter.user": wasm}
			dir := t.TempDir()
			path := filepath.Join(dir, "filter.user.wasm")
			file := withCustomSection(wasm, "operator")
			if tt.file != "" {
				file = wasmFile(t, tt.file)
			}
			require.NoError(t, os.WriteFile(path, file, 0o644))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			ready := make(chan struct{})
			go func() { done <- e.r.Watch(ctx, dir, func() { close(ready) }) }()
			t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
			<-ready
			in, _ := e.r.Info("filter.user")
			require.Equal(t, path, in.File)
			require.Equal(t, hashOf(file), in.Hash)

			f := e.r.Filter(directory.KindUser, nil, nil)
			ev, rs := participantEvent(directory.DemoPatUUID), e.recipients(3)
			if tt.quarantine {
				for range 2 {
					_, err := decide(t, f, ev, rs)
					require.ErrorIs(t, err, ErrTimeout)
				}
				_, err := decide(t, f, ev, rs)
				require.ErrorIs(t, err, ErrQuarantined)
			}
			if tt.neighbour {
				require.NoError(t, e.r.Load("filter.device", wasmFile(t, "bulkfill")))
				var stop atomic.Bool
				var wg sync.WaitGroup
				wg.Add(2)
				calls := make(chan struct{})
				go func() { // the neighbour's calls, one after the other
					defer wg.Done()
					nf := e.r.Filter(directory.KindDevice, nil, nil)
					for i := 0; !stop.Load(); i++ {
						err := nf.Decide(context.Background(), ev, directory.KindDevice, rs, make([]filter.Decision, len(rs)))
						assert.ErrorIs(t, err, ErrTimeout)
						if i == 0 {
							close(calls)
						}
					}
				}()
				go func() {
					defer wg.Done()
					for !stop.Load() {
						runtime.GC()
					}
				}()
				t.Cleanup(func() { stop.Store(true); wg.Wait() })
				<-calls
			}

			require.NoError(t, os.Remove(path))
			var cur Info
			waitFor := func(what string, ok func(Info) bool) {
				t.Helper()
				require.Eventually(t, func() bool { cur, _ = e.r.Info("filter.user"); return ok(cur) }, 20*time.Second, 10*time.Millisecond, what)
			}
			if tt.badBuiltin {
				waitFor("the removed version stops serving although the built-in fails", func(in Info) bool { return in.Hash == "" })
				require.Equal(t, StateRejected, cur.State)
				require.Equal(t, BuiltinFile, cur.File)
				require.Contains(t, cur.LastRejection, "tg_init result")
				require.Empty(t, e.r.Serving(directory.KindUser))
				_, err := decide(t, f, ev, rs)
				require.ErrorIs(t, err, ErrNotLoaded, "no plugin serves the kind (the router's fallback decides)")

				settings["filter.user"] = Settings{Config: cfg}
				_, err = e.r.Reconfigure(settings)
				require.NoError(t, err)
			}
			waitFor("the built-in serves", func(in Info) bool { return in.File == BuiltinFile && in.State == StateActive })
			require.Equal(t, hashOf(wasm), cur.Hash)
			require.Equal(t, "filter.user", e.r.Serving(directory.KindUser))
			got, err := decide(t, f, ev, rs)
			require.NoError(t, err)
			require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))
		})
	}
}
