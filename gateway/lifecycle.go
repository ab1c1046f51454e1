package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/pluginhost"
)

// The gateway's lifecycle has three parts:
//
//   - New opens what needs no goroutine (the Redis client, the bus, the plugin host's runtimes,
//     the RPC lease) and wires the components; [Gateway.release] closes those, and New calls it
//     when it fails half-way.
//   - Start starts the components of [Gateway.components] in order and records each one that
//     started.
//   - Shutdown, and a Start that failed half-way, stop the started components in reverse order,
//     cancel the background goroutines and wait for them (bounded), then release what New opened.

// component is one part of the running gateway. A nil stop means that the part stops with the
// gateway's context (a background goroutine, waited for after every stop).
type component struct {
	name  string
	start func(context.Context) error
	stop  func(context.Context) error
}

// components lists the gateway's parts in start order.
func (g *Gateway) components() []component {
	return []component{
		{"cluster", g.startCluster, g.stopCluster},
		// The RPC server before presence: the presence subscription carries the user manager's
		// requests.
		{"rpc", g.startRPC, g.stopRPC},
		{"presence", g.pres.Start, g.pres.Stop},
		{"router", g.router.Start, g.router.Stop},
		{"rooms", g.background(func(ctx context.Context) error { g.rooms.Run(ctx); return nil }), nil},
		{"stations", g.startStations, g.stopStations},
		// Plugins are closed by release, once the router no longer calls them.
		{"plugins", g.startPlugins, nil},
		{"directory watch", g.watchDirectory, nil},
		{"hub", g.background(func(ctx context.Context) error { g.hub.Run(ctx); return nil }), nil},
		// Last: the gateway accepts logins and websockets once everything behind them runs, and
		// stops accepting first.
		{"http", g.serve, g.stopServing},
		{"memory trim", g.startMemTrim, nil},
		// The node's record in the admin page's node list has the address it listens on.
		{"nodes", g.startNodes, g.stopNodes},
	}
}

// background returns a start that runs fn in a goroutine until the gateway's context ends,
// logging an error it returns meanwhile.
func (g *Gateway) background(fn func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				g.log.Error("background task stopped", "error", err)
			}
		}()
		return nil
	}
}

// Start listens and starts serving in the background. When it returns, the gateway accepts
// logins and websockets and routes events.
//
// When Start fails, everything started and opened so far is stopped and closed (in reverse
// order) before it returns; the gateway cannot be started again and Shutdown does nothing.
func (g *Gateway) Start(ctx context.Context) (err error) {
	ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var started []component
	defer func() {
		if err != nil {
			g.once.Do(func() {
				sctx, cancel := context.WithTimeout(context.Background(), time.Duration(g.cfg.ShutdownTimeout))
				defer cancel()
				if uerr := g.unwind(sctx, started); uerr != nil {
					g.log.Warn("cleaning up after a failed start", "error", uerr)
				}
			})
		}
	}()
	for _, c := range g.components() {
		if err := c.start(ctx); err != nil {
			return fmt.Errorf("gateway: start %s: %w", c.name, err)
		}
		started = append(started, c)
	}
	g.started = started
	g.log.Info("gateway listening", "url", g.URL(), "tls", g.tlsCfg != nil)
	return nil
}

// Shutdown stops accepting, closes every websocket with 1001 (going away), waits for them to
// drain until ctx is done, stops the other components in reverse start order and waits for the
// gateway's goroutines. Only the first call does anything.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.once.Do(func() { err = g.unwind(ctx, g.started) })
	return err
}

// unwind stops the started components in reverse order, cancels and waits for the background
// goroutines (until ctx is done: a file watcher still waiting on a read is left behind), then
// releases what New opened.
func (g *Gateway) unwind(ctx context.Context, started []component) error {
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		if c := started[i]; c.stop != nil {
			if err := c.stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("gateway: stop %s: %w", c.name, err))
			}
		}
	}
	if g.cancel != nil {
		g.cancel()
	}
	if err := g.waitGoroutines(ctx); err != nil {
		g.log.Warn("shutdown deadline reached with background goroutines still running", "error", err)
		errs = append(errs, err)
	}
	errs = append(errs, g.release(ctx))
	return errors.Join(errs...)
}

// release closes what New opened, in reverse order: the plugin host (its runtimes), the RPC
// lease, the bus and the Redis client. Each is closed only if it was opened.
func (g *Gateway) release(ctx context.Context) error {
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
	return errors.Join(errs...)
}

// waitGoroutines waits for the gateway's goroutines until ctx is done.
func (g *Gateway) waitGoroutines(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: background goroutines: %w", ctx.Err())
	}
}

// serve listens and serves HTTP (and the websockets) in the background.
func (g *Gateway) serve(context.Context) error {
	// Compiling and instrumenting the plugins leaves tens of MiB of garbage behind (and the
	// code of the versions that went cold after validation): return it to the operating system
	// now rather than at the runtime's leisure (a one-time cost at start).
	pluginhost.ReturnMemory()
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	g.ln = ln
	if g.tlsCfg != nil {
		ln = tls.NewListener(ln, g.tlsCfg)
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server stopped", "error", err)
		}
	}()
	g.api.SetReady(true)
	return nil
}

// stopServing stops accepting, closes every websocket with 1001 (going away) and waits for them
// to leave the hub until ctx is done.
func (g *Gateway) stopServing(ctx context.Context) error {
	g.api.SetReady(false)
	err := g.srv.Shutdown(ctx)
	n := g.hub.CloseAll(hub.CloseGoingAway, "server shutdown", metrics.DisconnectShutdown)
	g.log.Info("shutting down", "sockets", n)
	return errors.Join(err, g.drain(ctx))
}

// drain waits until every socket has left the hub or ctx is done.
func (g *Gateway) drain(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for g.hub.Count(0) > 0 {
		select {
		case <-ctx.Done():
			g.log.Warn("shutdown deadline reached with sockets still open", "sockets", g.hub.Count(0))
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// watchDirectory reloads the identity file when it changes (with --identities).
func (g *Gateway) watchDirectory(ctx context.Context) error {
	if g.cfg.Identities == "" {
		return nil
	}
	return g.background(func(ctx context.Context) error {
		// The watcher logs each failure with its reason; the hooks keep the reload metrics.
		err := g.dir.Watch(ctx, g.cfg.Identities, g.log.Named("directory"), directory.WatchHooks{
			Reloaded: func(s *directory.Snapshot) {
				g.metrics.DirectoryReload(true, float64(time.Now().Unix()))
				g.hub.UpdateDirectory(s)
				g.pres.DirectoryChanged(s)
			},
			Failed: func(error) { g.metrics.DirectoryReload(false, 0) },
		})
		if err != nil {
			return fmt.Errorf("identity file watch: %w", err)
		}
		return nil
	})(ctx)
}
