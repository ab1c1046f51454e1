package fswatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of [Limits].
const (
	DefaultMaxBytes = 16 << 20
	DefaultTimeout  = 10 * time.Second
)

// Errors of [ReadFile]. A missing file (or a symbolic link to nothing) is reported with an error
// matching [fs.ErrNotExist].
var (
	// ErrNotRegular: the name is a directory, a named pipe, a socket or a device (directly or
	// through a symbolic link).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is larger than [Limits.MaxBytes].
	ErrTooLarge = errors.New("file too large")
	// ErrOutside: the name is a symbolic link that leads outside the directory.
	ErrOutside = errors.New("symbolic link leads outside the directory")
	// ErrTimeout: the read did not finish within [Limits.Timeout].
	ErrTimeout = errors.New("read timed out")
	// ErrBadName: the name is not a plain file name of the directory.
	ErrBadName = errors.New("not a file name of the directory")
)

// Limits bound one [ReadFile].
type Limits struct {
	// MaxBytes is the largest file accepted. Zero means [DefaultMaxBytes].
	MaxBytes int64
	// Timeout bounds the whole read (resolving, opening, reading). Zero means [DefaultTimeout].
	Timeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

// ReadFile reads the file name of directory dir, trusting nothing about what the file system
// holds under that name:
//
//   - only a regular file is read; a directory, named pipe, socket or device is refused with
//     [ErrNotRegular] before it is opened (a pipe would block the reader forever, /dev/zero would
//     never end);
//   - a symbolic link is followed only when it resolves to a file inside dir (relative or
//     absolute, through any number of links); one that leads outside is refused with
//     [ErrOutside]. On Linux the final open is done beneath dir with no symbolic link allowed
//     (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a link swapped in between the check and
//     the open is refused too; elsewhere the open uses O_NOFOLLOW on the resolved path;
//   - the file is opened non-blocking, checked again on the open descriptor (regular, size), and
//     read up to lim.MaxBytes; a larger file (or one that grows past it while read) gives
//     [ErrTooLarge];
//   - the whole read is bounded by lim.Timeout and by ctx: when either ends first, ReadFile
//     returns at once ([ErrTimeout] or ctx's error). A read stuck in the kernel (a hung network
//     file system) cannot be interrupted; it finishes, and its descriptor is closed, on a
//     goroutine of its own.
//
// name must be a plain file name (no separator, not "." or ".."). Every error names the file.
func ReadFile(ctx context.Context, dir, name string, lim Limits) ([]byte, error) {
	path := filepath.Join(dir, name)
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, filepath.Separator) {
		return nil, fmt.Errorf("%s: %w", path, ErrBadName)
	}
	lim = lim.withDefaults()
	ctx, cancel := context.WithTimeoutCause(ctx, lim.Timeout, ErrTimeout)
	defer cancel()
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1) // the reader never blocks on a caller that gave up
	go func() {
		data, err := readBeneath(dir, name, lim.MaxBytes)
		ch <- result{data, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", path, r.err)
		}
		return r.data, nil
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), ErrTimeout) {
			return nil, fmt.Errorf("%s: %w after %s", path, ErrTimeout, lim.Timeout)
		}
		return nil, fmt.Errorf("%s: %w", path, ctx.Err())
	}
}

// readBeneath does the work of ReadFile, without the time bound.
func readBeneath(dir, name string, max int64) ([]byte, error) {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	realDir, err = filepath.Abs(realDir)
	if err != nil {
		return nil, err
	}
	rel := name
	fi, err := os.Lstat(filepath.Join(realDir, name))
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(filepath.Join(realDir, name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("symbolic link to a missing file: %w", err)
			}
			return nil, err
		}
		if rel, err = filepath.Rel(realDir, target); err != nil || rel == "." || rel == ".." ||
			strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			return nil, fmt.Errorf("%w (it resolves to %s)", ErrOutside, target)
		}
		if fi, err = os.Lstat(target); err != nil {
			return nil, err
		}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: it is %s", ErrNotRegular, kindOf(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, fi.Size(), max)
	}
	f, err := openBeneath(realDir, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() { // replaced between the check and the open
		return nil, fmt.Errorf("%w: it is %s", ErrNotRegular, kindOf(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, fi.Size(), max)
	}
	data, err := readSized(io.LimitReader(f, max+1), fi.Size())
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return data, nil
}

// readSized reads r to its end into a slice sized for size bytes, the file's size when it was
// opened, plus one to see that it grew (then the slice grows as append does). io.ReadAll's
// doubling would leave up to twice the file's size allocated, and a plugin version keeps its
// bytes as long as it serves.
func readSized(r io.Reader, size int64) ([]byte, error) {
	data := make([]byte, 0, size+1)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// kindOf names a non-regular file mode for error messages.
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "an irregular file (" + m.Type().String() + ")"
	}
}
