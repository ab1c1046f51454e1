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
	"unsafe"
)

//go:embed wasm
var files embed.FS

// Modules returns the embedded plugins by id ("filter.user" for wasm/filter.user.wasm). The
// slices are the binary's read-only data, not copies: callers must not modify them (a write
// faults). embed.FS.ReadFile would copy each module (11 MiB for the four) into the heap, where
// it stays for the life of the process (the plugin host keeps every version's bytes), on top of
// the binary's own pages.
func Modules() map[string][]byte {
	out := map[string][]byte{}
	ents, _ := fs.ReadDir(files, "wasm")
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".wasm")
		if !ok || e.IsDir() {
			continue
		}
		name := path.Join("wasm", e.Name())
		b := embedded(name)
		if b == nil { // not found where expected: fall back to a copy
			b, _ = files.ReadFile(name)
		}
		if len(b) > 0 {
			out[id] = b
		}
	}
	return out
}

// embedFS and embedFile mirror the layout of embed.FS and its files, which the compiler writes
// (cmd/compile/internal/staticdata.WriteEmbed) and which has not changed since Go 1.16.
// TestModulesShareTheBinary checks the result against embed.FS.ReadFile.
type embedFS struct{ files *[]embedFile }

type embedFile struct {
	name string
	data string
	hash [16]byte //lint:ignore U1000 never read, but part of the layout embedFile mirrors
}

// embedded returns the embedded data of the file name without copying it, or nil.
func embedded(name string) []byte {
	fsys := (*embedFS)(unsafe.Pointer(&files))
	if fsys.files == nil {
		return nil
	}
	for _, f := range *fsys.files {
		if f.name == name {
			if len(f.data) == 0 {
				return nil
			}
			return unsafe.Slice(unsafe.StringData(f.data), len(f.data))
		}
	}
	return nil
}
