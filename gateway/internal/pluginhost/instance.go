package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/teragate/teragate/sdk/abi"
)

// instance is one warm guest instance with its exports looked up once. It is used by one call at
// a time (the pool guarantees it).
type instance struct {
	mod    api.Module
	mem    api.Memory
	buffer api.Function
	init   api.Function
	filter api.Function // nil when not exported
	rpc    api.Function // nil when not exported
	stack  [2]uint64
	req    []byte        // request scratch, reused across calls
	live   *atomic.Int64 // the registry's count of open instances ([Registry.Live])
}

// instantiate creates a fresh instance of v's module and runs _initialize (as a start function).
func (v *version) instantiate(ctx context.Context) (*instance, error) {
	mod, err := v.rt.InstantiateModule(ctx, v.cm, wazero.NewModuleConfig().WithName("").WithStartFunctions(abi.ExportInitialize))
	if err != nil {
		return nil, classify(ctx, err)
	}
	live := &v.p.r.live.instances
	live.Add(1)
	in := &instance{
		live:   live,
		mod:    mod,
		mem:    mod.Memory(),
		buffer: mod.ExportedFunction(abi.ExportBuffer),
		init:   mod.ExportedFunction(abi.ExportInit),
		filter: mod.ExportedFunction(abi.ExportFilter),
		rpc:    mod.ExportedFunction(abi.ExportRPC),
	}
	if in.mem == nil {
		in.close()
		return nil, fmt.Errorf("%w: the module exports no memory", ErrInvalid)
	}
	return in, nil
}

// close closes the instance's module (its linear memory goes with it).
func (in *instance) close() {
	_ = in.mod.Close(context.Background())
	in.live.Add(-1)
}

// call writes req into the guest's buffer, calls fn and returns the result as a view of guest
// memory, valid until the next call into this instance. Any error means the instance must be
// discarded.
func (in *instance) call(ctx context.Context, fn api.Function, req []byte) ([]byte, error) {
	if len(req) > abi.MaxResult {
		return nil, fmt.Errorf("%w: request of %d bytes is too large", ErrProtocol, len(req))
	}
	n := uint64(uint32(len(req)))
	in.stack[0] = n
	if err := in.buffer.CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, classify(ctx, err)
	}
	p := uint32(in.stack[0])
	if !in.mem.Write(p, req) {
		return nil, fmt.Errorf("%w: tg_buffer(%d) returned %#x, outside memory (%d bytes)", ErrProtocol, len(req), p, in.mem.Size())
	}
	in.stack[0] = n
	if err := fn.CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, classify(ctx, err)
	}
	ptr, length, failed := abi.Unpack(in.stack[0])
	if length > abi.MaxResult {
		return nil, fmt.Errorf("%w: result of %d bytes exceeds %d", ErrProtocol, length, abi.MaxResult)
	}
	out, ok := in.mem.Read(ptr, length)
	if !ok {
		return nil, fmt.Errorf("%w: result [%#x, +%d) is outside memory (%d bytes)", ErrProtocol, ptr, length, in.mem.Size())
	}
	if failed {
		msg := out
		if len(msg) > 1024 {
			msg = msg[:1024]
		}
		return nil, fmt.Errorf("%w: %s", ErrGuest, string(msg))
	}
	return out, nil
}

// classify turns a wazero call error into ErrTimeout or ErrTrap.
func classify(ctx context.Context, err error) error {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return fmt.Errorf("%w: exit code %d", ErrTrap, ee.ExitCode())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrTrap, err)
}
