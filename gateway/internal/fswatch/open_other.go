//go:build !linux

package fswatch

import (
	"os"
	"path/filepath"
	"syscall"
)

// openBeneath opens rel, a path already resolved to a file beneath dir, non-blocking and without
// following a final symbolic link. Unlike the Linux version it cannot stop a directory inside dir
// from being swapped for a link between the resolution and the open.
func openBeneath(dir, rel string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, rel), os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
}
