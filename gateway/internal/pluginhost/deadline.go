package pluginhost

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/teragate/teragate/gateway/internal/wasmguard"
)

// How a version's per-call deadline is enforced ([Info].Deadline).
const (
	// DeadlineInstrumented: the module was rewritten by wasmguard; its loops count down and call
	// the host's tick, which aborts the call when its context is done. No wazero checks.
	DeadlineInstrumented = "instrumented"
	// DeadlineChecks: the module as it is, under wazero's WithCloseOnContextDone (a check at every
	// loop iteration and a goroutine per call): used when wasmguard cannot rewrite the module.
	DeadlineChecks = "wazero-checks"
)

// compile creates v's runtime and compiles v.data into it. A module wasmguard can rewrite runs
// instrumented in a runtime without wazero's termination checks; any other module (or one whose
// rewritten form does not compile) runs as it is with the checks. Either way a looping guest is
// stopped at the deadline and never blocks the garbage collector for long.
func (r *Registry) compile(ctx context.Context, v *version, s Settings) error {
	if !r.noInstrument {
		code, err := wasmguard.Instrument(v.data)
		if err == nil {
			if err = r.compileInto(ctx, v, s, code, true); err == nil {
				v.deadline = DeadlineInstrumented
				return nil
			}
		}
		if cerr := r.compileInto(ctx, v, s, v.data, false); cerr != nil {
			return cerr
		}
		v.p.log.Warn("plugin not instrumented: deadlines use wazero's termination checks (slower calls)", "hash", v.hash[:16], "reason", err)
		v.deadline = DeadlineChecks
		return nil
	}
	if err := r.compileInto(ctx, v, s, v.data, false); err != nil {
		return err
	}
	v.deadline = DeadlineChecks
	return nil
}

// compileIn compiles code into a new runtime (with the guard's host module when guarded, with
// wazero's checks otherwise) and returns both. On error nothing is left open.
func (r *Registry) compileIn(ctx context.Context, v *version, s Settings, code []byte, guarded bool) (_ wazero.Runtime, _ wazero.CompiledModule, err error) {
	rcfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(r.cache).
		WithMemoryLimitPages(memPages(s)).
		WithCloseOnContextDone(!guarded)
	rt := wazero.NewRuntimeWithConfig(ctx, rcfg)
	defer func() {
		if err != nil {
			_ = rt.Close(ctx)
		}
	}()
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, nil, fmt.Errorf("wasi: %w", err)
	}
	if guarded {
		if err := wasmguard.Instantiate(ctx, rt); err != nil {
			return nil, nil, fmt.Errorf("guard module: %w", err)
		}
	}
	if err := r.hostModule(ctx, rt, v); err != nil {
		return nil, nil, fmt.Errorf("host module: %w", err)
	}
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		return nil, nil, fmt.Errorf("compile: %w", err)
	}
	r.live.compiled.Add(1)
	return rt, cm, nil
}

// compileInto is compileIn setting v.rt and v.cm.
func (r *Registry) compileInto(ctx context.Context, v *version, s Settings, code []byte, guarded bool) error {
	rt, cm, err := r.compileIn(ctx, v, s, code, guarded)
	if err != nil {
		return err
	}
	v.rt, v.cm = rt, cm
	return nil
}

// guarded reports whether module is the guard's, imported by v's instrumented module (the
// rewriter refuses a module that imports it itself).
func (v *version) guarded(module string) bool {
	return module == wasmguard.ImportModule && v.deadline == DeadlineInstrumented
}
