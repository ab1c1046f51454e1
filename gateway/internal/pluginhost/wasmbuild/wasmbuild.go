// Package wasmbuild builds the repository's Go plugins for tests: each package is built once per
// test process with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (the Go build cache makes
// repeated runs fast). Tests that need it are skipped under -short.
package wasmbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	dir    string
	builds = map[string]string{}
)

// Build returns the path of the .wasm built from pkg (an import path relative to the module
// root, like "./plugins/filter/user"), building it on first use.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("building Wasm plugins is skipped under -short")
	}
	mu.Lock()
	defer mu.Unlock()
	if p, ok := builds[pkg]; ok {
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "teragate-wasmbuild-")
		if err != nil {
			tb.Fatal(err)
		}
		dir = d
	}
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg)+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	builds[pkg] = out
	return out
}

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", os.ErrNotExist
		}
		d = p
	}
}
