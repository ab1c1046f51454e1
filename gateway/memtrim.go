package gateway

import (
	"context"
	"time"

	"github.com/teragate/teragate/gateway/internal/pluginhost"
)

// Returning memory after a burst of connections.
//
// Logging in and opening a websocket leaves garbage behind (request and reply buffers, tokens,
// the handshake), and Go's collector lets the heap grow to twice what is live before it collects:
// after ten thousand clients connected, half the heap is garbage that an idle gateway keeps in
// RSS for minutes, until the runtime's scavenger gives it back a little at a time. The trimmer
// watches connects and disconnects; once a burst of at least trimBurst of them has been followed
// by trimQuiet without any, it collects and returns the free memory to the OS at once (one
// collection per burst; a gateway with a steady trickle of connections never trims).
const (
	trimBurst = 200
	trimQuiet = 2 * time.Second
)

// startMemTrim runs the trimmer until the gateway stops (return_memory: false turns it off).
func (g *Gateway) startMemTrim(ctx context.Context) error {
	if g.cfg.ReturnMemory != nil && !*g.cfg.ReturnMemory {
		return nil
	}
	return g.background(func(ctx context.Context) error {
		runTrimmer(ctx, trimQuiet/2, func() uint64 {
			t := g.metrics.NodeTotals()
			return t.Connects + t.Disconnects
		}, func() {
			start := time.Now()
			pluginhost.ReturnMemory()
			g.log.Debug("returned memory to the OS after a burst of connections", "took", time.Since(start))
		})
		return nil
	})(ctx)
}

// runTrimmer samples activity (a counter of connects and disconnects) every tick and calls trim
// once a rise of at least trimBurst is followed by trimQuiet without change.
func runTrimmer(ctx context.Context, tick time.Duration, activity func() uint64, trim func()) {
	t := time.NewTicker(tick)
	defer t.Stop()
	last := activity()
	base := last // activity at the last trim
	var quiet time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := activity()
		if now != last {
			last, quiet = now, 0
			continue
		}
		quiet += tick
		if quiet >= trimQuiet && now-base >= trimBurst {
			trim()
			base = now
		}
	}
}
