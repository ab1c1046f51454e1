package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunTrimmer: the trimmer trims once after a burst followed by quiet, not after a burst below
// the threshold, and not while activity goes on.
func TestRunTrimmer(t *testing.T) {
	var activity atomic.Uint64
	var trims atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runTrimmer(ctx, time.Millisecond, activity.Load, func() { trims.Add(1) })
	}()
	defer func() { cancel(); <-done }()

	activity.Add(trimBurst - 1) // below the threshold: quiet follows, no trim
	time.Sleep(trimQuiet + 200*time.Millisecond)
	require.Zero(t, trims.Load())

	// Steady activity: no trim while it goes on.
	stop := time.Now().Add(trimQuiet + 200*time.Millisecond)
	for time.Now().Before(stop) {
		activity.Add(10)
		time.Sleep(100 * time.Microsecond)
	}
	require.Zero(t, trims.Load(), "no trim while connections keep coming")
	require.Eventually(t, func() bool { return trims.Load() == 1 }, 10*time.Second, 10*time.Millisecond, "one trim after the burst")
	time.Sleep(trimQuiet + 200*time.Millisecond)
	require.Equal(t, int32(1), trims.Load(), "quiet after a trim: no second one")
}
