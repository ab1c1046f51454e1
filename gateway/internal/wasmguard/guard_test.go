package wasmguard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

func wasmFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	require.NoError(tb, err)
	return b
}

// newRuntime returns a runtime with the "env" imports of the test modules and, when ticks is not
// nil, a guard module whose tick counts its calls (and never aborts).
func newRuntime(t *testing.T, features api.CoreFeatures, checks bool, ticks *atomic.Int64) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features).WithCloseOnContextDone(checks))
	t.Cleanup(func() { _ = rt.Close(ctx) })
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, s []uint64) {
		s[0] = uint64(uint32(s[0]) + uint32(s[1]))
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("add").
		NewFunctionBuilder().WithGoFunction(api.GoFunc(func(_ context.Context, s []uint64) {
		s[0] = uint64(uint32(s[0]) * 2)
	}), []api.ValueType{i32}, []api.ValueType{i32}).Export("twice").
		Instantiate(ctx)
	require.NoError(t, err)
	if ticks != nil {
		_, err = rt.NewHostModuleBuilder(ImportModule).NewFunctionBuilder().
			WithGoFunction(api.GoFunc(func(context.Context, []uint64) { ticks.Add(1) }), nil, nil).Export(ImportName).
			Instantiate(ctx)
		require.NoError(t, err)
	}
	return rt
}

type call struct {
	name    string
	args    []uint64
	want    []uint64 // nil: only compared with the original module
	trap    bool
	minTick int64 // the instrumented module calls tick at least this often during the call
}

func u(vs ...int64) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = uint64(v)
	}
	return out
}

func i32s(vs ...int32) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = uint64(uint32(v))
	}
	return out
}

// TestInstrumentPreservesBehaviour runs each module as it is and instrumented: every call
// returns the same results (or the same trap, stack trace included: function names survive the
// renumbering), every export keeps its function's name, and loops call tick as often as their
// weights say.
func TestInstrumentPreservesBehaviour(t *testing.T) {
	tailCalls := api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall
	cases := []struct {
		file     string
		features api.CoreFeatures
		calls    []call
	}{
		{"calls", api.CoreFeaturesV2, []call{
			{name: "started", want: i32s(42)},
			{name: "direct", args: u(3), want: i32s(17)}, // add(twice(inc 3), square 3)
			{name: "indirect", args: u(5, 0), want: i32s(6)},
			{name: "indirect", args: u(5, 1), want: i32s(4)},
			{name: "indirect", args: u(5, 2), want: i32s(10)}, // an imported function in the table
			{name: "indirect", args: u(5, 3), want: i32s(25)},
			{name: "indirect", args: u(5, 4), trap: true}, // a null element
			{name: "indirect2", args: u(5, 0), want: i32s(4)},
			{name: "indirect2", args: u(5, 1), want: i32s(25)},
			{name: "passive", args: u(5, 4), want: i32s(25)},
			{name: "passive", args: u(5, 5), want: i32s(6)},
			{name: "passive", args: u(5, 6), want: i32s(-5)},
			{name: "passive", args: u(5, 7), want: i32s(6)},
			{name: "reffunc", args: u(5), want: i32s(-5)},
			{name: "globalref", args: u(5), want: i32s(6)},
			{name: "inc", args: u(1), want: i32s(2)},
			{name: "twice", args: u(21), want: i32s(42)}, // a re-exported import
			{name: "recurse", args: u(40000), want: i32s(40000), minTick: 2},
			{name: "trap", trap: true},
		}},
		{"loops", api.CoreFeaturesV2, []call{
			{name: "sum", args: u(300), want: u(4455100), minTick: 44850 / Budget},
			{name: "fib", args: u(50), want: u(12586269025)},
			{name: "swapsum", args: u(3, 4), want: i32s(13)},
			{name: "swapsum", args: u(3, 0), want: i32s(3)},
			{name: "dispatch", args: u(10), want: i32s(55)},
			{name: "dispatch", args: u(100000), minTick: 200000 / Budget},
			{name: "heavy", args: u(100000), want: i32s(0), minTick: 2 * 100000 / Budget},
		}},
		{"features", api.CoreFeaturesV2, []call{
			{name: "simd", args: u(10), want: i32s(13)},
			{name: "shuffle", want: i32s(15)},
			{name: "lanes", want: i32s(6 + 12 + 0x04030201)},
			{name: "bulk", want: i32s('A' + 'w')},
			{name: "sat", args: []uint64{api.EncodeF64(1e20)}, want: i32s(2147483647)},
			{name: "signext", args: u(0xff), want: i32s(-1)},
			{name: "refs", want: i32s(1)},
			{name: "tables", want: i32s(5)},
			{name: "consts"},
			{name: "vsum", args: u(100000), want: u(100000 * 0x04030201 % (1 << 32)), minTick: 100000 / Budget},
		}},
		{"tailcall", tailCalls, []call{
			{name: "count", args: u(100000, 0), want: i32s(100000), minTick: 200000 / Budget},
		}},
		{"nofuncs", api.CoreFeaturesV2, nil},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			orig := wasmFile(t, c.file)
			inst, err := Instrument(orig)
			require.NoError(t, err)
			var ticks atomic.Int64
			plain := newRuntime(t, c.features, false, nil)
			guarded := newRuntime(t, c.features, false, &ticks)
			cmA, err := plain.CompileModule(ctx, orig)
			require.NoError(t, err)
			cmB, err := guarded.CompileModule(ctx, inst)
			require.NoError(t, err)
			require.Len(t, cmB.ImportedFunctions(), len(cmA.ImportedFunctions())+1)
			ea, eb := cmA.ExportedFunctions(), cmB.ExportedFunctions()
			require.Equal(t, len(ea), len(eb))
			for name, da := range ea {
				db := eb[name]
				require.NotNil(t, db, name)
				require.Equal(t, da.Name(), db.Name(), name)
				if da.Name() != "" { // an unnamed function is shown by its index, which shifted
					require.Equal(t, da.DebugName(), db.DebugName(), name)
				}
				require.Equal(t, da.ParamTypes(), db.ParamTypes(), name)
				require.Equal(t, da.ResultTypes(), db.ResultTypes(), name)
			}
			ma, err := plain.InstantiateModule(ctx, cmA, wazero.NewModuleConfig().WithName("m"))
			require.NoError(t, err)
			mb, err := guarded.InstantiateModule(ctx, cmB, wazero.NewModuleConfig().WithName("m"))
			require.NoError(t, err)
			for _, cl := range c.calls {
				before := ticks.Load()
				ra, errA := ma.ExportedFunction(cl.name).Call(ctx, cl.args...)
				rb, errB := mb.ExportedFunction(cl.name).Call(ctx, cl.args...)
				if cl.trap {
					require.Error(t, errA, cl.name)
					require.Error(t, errB, cl.name)
					require.Equal(t, errA.Error(), errB.Error(), "%s: the same trap and stack trace", cl.name)
					continue
				}
				require.NoError(t, errA, cl.name)
				require.NoError(t, errB, cl.name)
				for i, vt := range mb.ExportedFunction(cl.name).Definition().ResultTypes() {
					if vt == api.ValueTypeI32 { // wazero leaves the upper half undefined
						ra[i], rb[i] = uint64(uint32(ra[i])), uint64(uint32(rb[i]))
					}
				}
				require.Equal(t, ra, rb, "%s%v", cl.name, cl.args)
				if cl.want != nil {
					require.Equal(t, cl.want, ra, "%s%v", cl.name, cl.args)
				}
				require.GreaterOrEqual(t, ticks.Load()-before, cl.minTick, "%s%v: ticks", cl.name, cl.args)
			}
		})
	}
}

// TestInstrumentHostileGuests: the plugin host's hostile test guests all instrument and compile
// (but the one importing the guard's module itself).
func TestInstrumentHostileGuests(t *testing.T) {
	files, err := filepath.Glob("../pluginhost/testdata/*.wasm")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	ctx := context.Background()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			out, err := Instrument(b)
			if filepath.Base(f) == "guardimport.wasm" { // imports teragate_guard itself
				require.ErrorIs(t, err, ErrUnsupported)
				return
			}
			require.NoError(t, err)
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			require.NoError(t, Instantiate(ctx, rt))
			_, err = rt.CompileModule(ctx, out)
			require.NoError(t, err)
		})
	}
}

// TestDeadline: the real tick stops endless guests (a loop, a loop calling the host, endless
// tail calls) with the context's exit code, and does nothing to a call whose context is live.
func TestDeadline(t *testing.T) {
	cases := []struct {
		file, fn string
		features api.CoreFeatures
	}{
		{"loops", "spin", api.CoreFeaturesV2},
		{"loops", "spin_calls", api.CoreFeaturesV2},
		{"tailcall", "forever", api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall},
	}
	for _, c := range cases {
		t.Run(c.fn, func(t *testing.T) {
			bg := context.Background()
			rt := newRuntime(t, c.features, false, nil)
			require.NoError(t, Instantiate(bg, rt))
			inst, err := Instrument(wasmFile(t, c.file))
			require.NoError(t, err)
			mod, err := rt.Instantiate(bg, inst)
			require.NoError(t, err)
			f := mod.ExportedFunction(c.fn)

			ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
			defer cancel()
			_, err = f.Call(ctx)
			var ee *sys.ExitError
			require.True(t, errors.As(err, &ee), "%v", err)
			require.Equal(t, sys.ExitCodeDeadlineExceeded, ee.ExitCode())

			ctx, cancel = context.WithCancel(bg)
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
			_, err = f.Call(ctx)
			require.True(t, errors.As(err, &ee), "%v", err)
			require.Equal(t, sys.ExitCodeContextCanceled, ee.ExitCode())
		})
	}
	t.Run("live context", func(t *testing.T) {
		bg := context.Background()
		rt := newRuntime(t, api.CoreFeaturesV2, false, nil)
		require.NoError(t, Instantiate(bg, rt))
		inst, err := Instrument(wasmFile(t, "loops"))
		require.NoError(t, err)
		mod, err := rt.Instantiate(bg, inst)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(bg, time.Hour)
		defer cancel()
		r, err := mod.ExportedFunction("dispatch").Call(ctx, 100000)
		require.NoError(t, err)
		require.Equal(t, uint64(705082704), r[0]) // Σ 1..100000 mod 2^32
	})
}

// TestInstrumentRefuses: what the rewriter does not decode is an error, never a guess.
func TestInstrumentRefuses(t *testing.T) {
	calls := wasmFile(t, "calls")
	cases := map[string][]byte{
		"empty":                 nil,
		"not wasm":              []byte("\x00asn\x01\x00\x00\x00"),
		"version 2":             []byte("\x00asm\x02\x00\x00\x00"),
		"imports the guard":     wasmFile(t, "imports_guard"),
		"threads":               wasmFile(t, "atomics"),
		"truncated":             calls[:len(calls)/2],
		"unknown section":       append([]byte("\x00asm\x01\x00\x00\x00"), 14, 0),
		"sections out of order": append(append([]byte(nil), calls...), 1, 1, 0),
		"section past the end":  append([]byte("\x00asm\x01\x00\x00\x00"), 1, 9, 0),
		"exception handling opcode": func() []byte {
			// (func) whose body is `try_table` (0x1f): a type, a function and a code section.
			return []byte("\x00asm\x01\x00\x00\x00" + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" + "\x0a\x05\x01\x03\x00\x1f\x0b")
		}(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Instrument(b)
			require.ErrorIs(t, err, ErrUnsupported)
		})
	}
	// Invalid modules whose bad index would name what the rewriter adds (the countdown global,
	// the () -> () type): wazero refuses them, and the rewriter must not make them valid. A
	// guest that could set the countdown would never call tick.
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	invalid := map[string][]byte{
		"badglobal": wasmFile(t, "badglobal"),
		"badtype":   wasmFile(t, "badtype"),
		// (func (block (type 1))) with one type; wat2wasm drops the bad type, so by hand.
		"badblock": []byte("\x00asm\x01\x00\x00\x00" + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" + "\x0a\x07\x01\x05\x00\x02\x01\x0b\x0b"),
	}
	for name, b := range invalid {
		t.Run(name, func(t *testing.T) {
			_, err := rt.CompileModule(ctx, b)
			require.Error(t, err, "wazero refuses the input")
			_, err = Instrument(b)
			require.ErrorIs(t, err, ErrUnsupported)
			require.ErrorContains(t, err, "out of range")
		})
	}
}

// TestInstrumentSections: custom sections are kept, DWARF is dropped, the input is not modified,
// and the output is deterministic.
func TestInstrumentSections(t *testing.T) {
	orig := wasmFile(t, "loops")
	custom := func(name, payload string) []byte {
		b := append([]byte{0, byte(1 + len(name) + len(payload)), byte(len(name))}, name...)
		return append(b, payload...)
	}
	in := append(append(append([]byte(nil), orig...), custom("producers", "x")...), custom(".debug_info", "dwarf")...)
	keep := append([]byte(nil), in...)
	out, err := Instrument(in)
	require.NoError(t, err)
	require.Equal(t, keep, in, "the input is not modified")
	require.True(t, bytes.Contains(out, custom("producers", "x")))
	require.False(t, bytes.Contains(out, []byte(".debug_info")))
	again, err := Instrument(in)
	require.NoError(t, err)
	require.Equal(t, out, again)
	rt := wazero.NewRuntime(context.Background())
	defer rt.Close(context.Background())
	cm, err := rt.CompileModule(context.Background(), out)
	require.NoError(t, err)
	_, ok := cm.ExportedFunctions()["spin"]
	require.True(t, ok)
}

func TestLEB(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 63, 64, -64, -65, 127, 128, Budget, 1 << 20, -1 << 31, 1<<31 - 1} {
		b := appendS32(nil, v)
		r := reader{b: append(b, 0x0b)}
		require.Equal(t, int64(v), r.s33(), "%d", v)
	}
	for _, v := range []uint32{0, 1, 127, 128, 1<<32 - 1} {
		var padded [5]byte
		putPaddedU32(padded[:], v)
		for _, b := range [][]byte{appendU32(nil, v), padded[:]} {
			r := reader{b: b}
			require.Equal(t, v, r.u32())
			require.Equal(t, len(b), r.p)
		}
	}
}

// TestNameSection: function, local and label names follow their functions past the shift.
func TestNameSection(t *testing.T) {
	// loops.wasm without its name section: one import (env.add), then "sum" is function 1.
	orig := wasmFile(t, "loops")
	var mod []byte
	r := reader{b: orig, p: 8}
	mod = append(mod, orig[:8]...)
	for r.p < len(orig) {
		start := r.p
		id := r.byte()
		size := int(r.u32())
		body := orig[r.p : r.p+size]
		r.p += size
		if id == 0 && (&reader{b: body}).name() == "name" {
			continue
		}
		mod = append(mod, orig[start:r.p]...)
	}
	sub := func(id byte, content []byte) []byte {
		return append(appendU32([]byte{id}, uint32(len(content))), content...)
	}
	indirect := func(fn uint32, idx uint32, name string) []byte { // one function, one entry
		return appendName(appendU32(appendU32(appendU32(appendU32(nil, 1), fn), 1), idx), name)
	}
	names := appendName(nil, "name")
	names = append(names, sub(1, appendName(appendU32(appendU32(nil, 1), 1), "summer"))...)
	names = append(names, sub(2, indirect(1, 0, "count"))...)
	names = append(names, sub(3, indirect(1, 0, "outer"))...)
	mod = append(append(mod, 0), appendU32(nil, uint32(len(names)))...)
	mod = append(mod, names...)

	out, err := Instrument(mod)
	require.NoError(t, err)
	want := appendName(nil, "name")
	want = append(want, sub(1, appendName(appendU32(appendU32(nil, 1), 2), "summer"))...)
	want = append(want, sub(2, indirect(2, 0, "count"))...)
	want = append(want, sub(3, indirect(2, 0, "outer"))...)
	require.True(t, bytes.HasSuffix(out, want), "the name section, renumbered, ends the module")

	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, out)
	require.NoError(t, err)
	require.Equal(t, "summer", cm.ExportedFunctions()["sum"].Name())
}

// TestBulkCharged: bulk memory and table instructions charge the countdown by their length, so
// a loop of 4 MiB fills reaches tick at every iteration (not once per 16,384), and the real tick
// stops an endless loop of fills, copies or table operations at the deadline. Rewritten bulk
// instructions still get their operands (same results as the original module).
func TestBulkCharged(t *testing.T) {
	bg := context.Background()
	orig := wasmFile(t, "bulk")
	inst, err := Instrument(orig)
	require.NoError(t, err)

	var ticks atomic.Int64
	rt := newRuntime(t, api.CoreFeaturesV2, false, &ticks)
	mod, err := rt.Instantiate(bg, inst)
	require.NoError(t, err)
	plain := newRuntime(t, api.CoreFeaturesV2, false, nil)
	pm, err := plain.Instantiate(bg, orig)
	require.NoError(t, err)
	for _, fn := range []string{"copy_once", "fill_small"} {
		want, err := pm.ExportedFunction(fn).Call(bg)
		require.NoError(t, err)
		got, err := mod.ExportedFunction(fn).Call(bg)
		require.NoError(t, err)
		require.Equal(t, want, got, fn)
	}
	ticks.Store(0)
	_, err = mod.ExportedFunction("fill_loop").Call(bg, 50)
	require.NoError(t, err)
	require.GreaterOrEqual(t, ticks.Load(), int64(50), "one tick per 4 MiB fill at least")

	for _, fn := range []string{"fill_loop", "copy_loop", "table_loop"} {
		t.Run(fn, func(t *testing.T) {
			rt := newRuntime(t, api.CoreFeaturesV2, false, nil)
			require.NoError(t, Instantiate(bg, rt))
			m, err := rt.Instantiate(bg, inst)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
			defer cancel()
			args := []uint64{}
			if fn == "fill_loop" {
				args = []uint64{0} // forever
			}
			_, err = m.ExportedFunction(fn).Call(ctx, args...)
			var ee *sys.ExitError
			require.True(t, errors.As(err, &ee), "%v", err)
			require.Equal(t, sys.ExitCodeDeadlineExceeded, ee.ExitCode())
		})
	}
}
