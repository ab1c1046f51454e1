// Package builtin holds the first-party plugins compiled into the teragate binary: OpenTera's
// filter table as filter.user, filter.participant and filter.device, and rpc.sessions.
//
// `make build` (and so `make run` and `make test`) builds them from plugins/ with
// GOOS=wasip1 GOARCH=wasm and copies the .wasm files into wasm/ before compiling the binary,
// which embeds them. A binary built with a bare `go build` has none; `teragate serve` then says
// so and filters with the native table.
package builtin

import (
	"embed"
	"io/fs"
	"path"
	"strings"
)

//go:embed wasm
var files embed.FS

// Modules returns the embedded plugins by id ("filter.user" for wasm/filter.user.wasm). The
// slices are shared: callers must not modify them.
func Modules() map[string][]byte {
	out := map[string][]byte{}
	ents, _ := fs.ReadDir(files, "wasm")
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".wasm")
		if !ok || e.IsDir() {
			continue
		}
		b, err := files.ReadFile(path.Join("wasm", e.Name()))
		if err == nil && len(b) > 0 {
			out[id] = b
		}
	}
	return out
}
