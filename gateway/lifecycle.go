package gateway

import (
	"context"
	"errors"
	"time"
)

// abortStart undoes a Start that failed half-way: the started components are stopped in reverse
// order, the background goroutines are waited for (bounded), and what New opened is closed. It
// marks the gateway shut down.
func (g *Gateway) abortStart(undo []func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(g.cfg.ShutdownTimeout))
	defer cancel()
	g.once.Do(func() {}) // a later Shutdown has nothing left to do
	if g.cancel != nil {
		g.cancel()
	}
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		errs = append(errs, undo[i](ctx))
	}
	errs = append(errs, g.waitGoroutines(ctx))
	g.release()
	if err := errors.Join(errs...); err != nil {
		g.log.Warn("cleaning up after a failed start", "error", err)
	}
}

// release closes what New opened, in reverse order: the plugin host (its runtimes), the RPC
// lease, the bus and the Redis client. Each is closed only if it was opened.
func (g *Gateway) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if g.plugins != nil {
		errs = append(errs, g.plugins.reg.Close(ctx))
	}
	if g.lease != nil {
		g.lease.Close()
	}
	if g.bus != nil {
		errs = append(errs, g.bus.Close(ctx))
	}
	errs = append(errs, g.closeRedis())
	if err := errors.Join(errs...); err != nil {
		g.log.Debug("releasing resources", "error", err)
	}
}
