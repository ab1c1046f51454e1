package builtin_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/teragate/teragate/gateway/internal/builtin"
)

// TestModules checks that what `make build` put in wasm/ is embedded as WebAssembly modules.
// Under `make test` (TERAGATE_REQUIRE_BUILTINS=1) the first-party plugins must be there.
func TestModules(t *testing.T) {
	mods := builtin.Modules()
	want := []string{"filter.device", "filter.participant", "filter.user", "rpc.sessions"}
	if len(mods) == 0 {
		if os.Getenv("TERAGATE_REQUIRE_BUILTINS") != "" {
			t.Fatal("no built-in plugins embedded: run `make build` (it builds plugins/ into gateway/internal/builtin/wasm)")
		}
		t.Skip("no built-in plugins embedded (built without make)")
	}
	for _, id := range want {
		b, ok := mods[id]
		if !ok {
			t.Errorf("built-in %s missing; have %d modules", id, len(mods))
			continue
		}
		if !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) {
			t.Errorf("built-in %s is not a WebAssembly module", id)
		}
	}
}

// TestModulesShareTheBinary: Modules returns the embedded bytes themselves, equal to what
// embed.FS.ReadFile copies (this guards the mirror of embed.FS's layout).
func TestModulesShareTheBinary(t *testing.T) {
	mods := builtin.Modules()
	if len(mods) == 0 {
		t.Skip("no built-in plugins embedded (built without make)")
	}
	for id, b := range mods {
		want, err := builtin.ReadFileForTest(id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: Modules differs from embed.FS.ReadFile (%d vs %d bytes)", id, len(b), len(want))
		}
		if &b[0] == &want[0] {
			t.Errorf("%s: ReadFile did not copy?", id)
		}
		if again := builtin.Modules()[id]; &again[0] != &b[0] {
			t.Errorf("%s: Modules copied the module (two calls, two addresses)", id)
		}
	}
}
