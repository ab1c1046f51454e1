package wasmguard

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// BenchmarkLoop: the cost of a deadline per loop iteration. loops.wasm's sum(n) runs n(n-1)/2
// iterations of its inner loop; "plain" has no deadline at all, "instrumented" is this package's
// countdown with the real tick, "wazero-checks" is WithCloseOnContextDone. The call's context has
// a deadline, as the plugin host's calls do.
func BenchmarkLoop(b *testing.B) {
	const n = 200 // 19,900 iterations per call
	orig := wasmFile(b, "loops")
	inst, err := Instrument(orig)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"plain", "instrumented", "wazero-checks"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(mode == "wazero-checks"))
			defer rt.Close(ctx)
			_, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
				WithGoFunction(api.GoFunc(func(context.Context, []uint64) {}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).
				Export("add").Instantiate(ctx)
			if err != nil {
				b.Fatal(err)
			}
			code := orig
			if mode == "instrumented" {
				code = inst
				if err := Instantiate(ctx, rt); err != nil {
					b.Fatal(err)
				}
			}
			mod, err := rt.Instantiate(ctx, code)
			if err != nil {
				b.Fatal(err)
			}
			f := mod.ExportedFunction("sum")
			cctx, cancel := context.WithTimeout(ctx, 1<<40)
			defer cancel()
			stack := []uint64{n}
			for b.Loop() {
				stack[0] = n
				if err := f.CallWithStack(cctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(n*(n-1)/2), "ns/iteration")
		})
	}
}
