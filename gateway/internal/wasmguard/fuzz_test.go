package wasmguard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzInstrument: arbitrary bytes never make the rewriter panic; it fails with ErrUnsupported or
// returns a module, and when wazero accepts the input it accepts the instrumented output too.
// Seeds: the test modules here and the plugin host's hostile guests.
func FuzzInstrument(f *testing.F) {
	for _, pattern := range []string{"testdata/*.wasm", "../pluginhost/testdata/*.wasm"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Instrument(b)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error not wrapping ErrUnsupported: %v", err)
			}
			return
		}
		cm, err := rt.CompileModule(ctx, b)
		if err != nil {
			return // wazero refuses the input itself
		}
		_ = cm.Close(ctx)
		cm, err = rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero accepts the input but not its instrumented form: %v", err)
		}
		_ = cm.Close(ctx)
	})
}
