package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// waiters returns how many attempts wait for a slot of k.
func (l *throttle) waiters(k throttleKey) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.keys[k]; e != nil {
		return len(e.queue)
	}
	return 0
}

// TestThrottleWaitsForASlot holds every slot of a key, starts one more attempt, and checks what
// the waiting attempt gets as the attempts in flight end.
func TestThrottleWaitsForASlot(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
		cancel  bool
		results []bool // outcomes of the two attempts in flight, in order
		wantErr error  // nil: the waiter got a slot
	}{
		{name: "a success frees the key", maxWait: time.Minute, results: []bool{true}},
		{name: "a failure then a success", maxWait: time.Minute, results: []bool{false, true}},
		{name: "two failures lock it", maxWait: time.Minute, results: []bool{false, false}, wantErr: ErrLocked},
		{name: "the wait is bounded", maxWait: 20 * time.Millisecond, wantErr: ErrBusy},
		{name: "the context ends the wait", maxWait: time.Minute, cancel: true, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_700_000_000, 0)
			l := newThrottle(2, time.Minute, time.Hour, tt.maxWait, func() time.Time { return now })
			k := makeKey(directory.KindUser, "alice", "192.0.2.1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			require.NoError(t, l.acquire(ctx, k))
			require.NoError(t, l.acquire(ctx, k))
			done := make(chan error, 1)
			go func() { done <- l.acquire(ctx, k) }()
			require.Eventually(t, func() bool { return l.waiters(k) == 1 || len(done) == 1 }, 10*time.Second, time.Millisecond)
			if tt.cancel {
				cancel()
			}
			for _, ok := range tt.results {
				select {
				case err := <-done:
					t.Fatalf("the waiter returned %v with an attempt still in flight", err)
				default:
				}
				l.release(k, ok)
			}
			err := <-done
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				l.release(k, true)
			}
			require.Equal(t, 0, l.waiters(k))
		})
	}
}

// TestThrottleServesInOrder checks that a freed slot goes to the longest waiting attempt, one per
// slot, and that a newcomer queues behind the line instead of taking it.
func TestThrottleServesInOrder(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newThrottle(2, time.Minute, time.Hour, time.Minute, func() time.Time { return now })
	k := makeKey(directory.KindUser, "alice", "192.0.2.1")
	ctx := context.Background()
	require.NoError(t, l.acquire(ctx, k))
	require.NoError(t, l.acquire(ctx, k))
	var done []chan error
	for i := range 3 {
		ch := make(chan error, 1)
		go func() { ch <- l.acquire(ctx, k) }()
		require.Eventually(t, func() bool { return l.waiters(k) == i+1 }, 10*time.Second, time.Millisecond)
		done = append(done, ch)
	}
	l.release(k, true)
	require.NoError(t, <-done[0], "the first in line gets the slot")
	require.Equal(t, 2, l.waiters(k), "one slot, one wake-up")
	l.release(k, false)
	require.Equal(t, 2, l.waiters(k), "a failure keeps its slot: failures plus attempts in flight stay at the limit")
	l.release(k, false) // two failures: locked, the whole line is answered at once
	require.ErrorIs(t, <-done[1], ErrLocked)
	require.ErrorIs(t, <-done[2], ErrLocked)
	require.Equal(t, 0, l.waiters(k))
}

// TestThrottleMemoryBounded floods the throttle with locked keys and checks that it keeps at most
// maxKeys of them, and never drops a key with an attempt in flight.
func TestThrottleMemoryBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newThrottle(1, time.Minute, time.Hour, time.Minute, func() time.Time { return now })
	l.maxKeys = 100
	ctx := context.Background()
	held := makeKey(directory.KindUser, "alice", "192.0.2.1")
	require.NoError(t, l.acquire(ctx, held))
	for i := range 1000 {
		k := makeKey(directory.KindUser, fmt.Sprintf("user-%d", i), "198.51.100.7")
		require.NoError(t, l.acquire(ctx, k))
		_, locked := l.release(k, false)
		require.True(t, locked)
		require.LessOrEqual(t, l.size(), l.maxKeys)
	}
	// The latest locks are kept, the held key too.
	err := l.acquire(ctx, makeKey(directory.KindUser, "user-999", "198.51.100.7"))
	require.ErrorIs(t, err, ErrLocked)
	_, locked := l.release(held, false)
	require.True(t, locked, "the held key was kept and its failure counted")
}

func TestSourceAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:443", "fe80::/64"},
		{"2001:db8::1", "2001:db8::/64"},
		{"@", "@"}, // a unix socket peer
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, sourceAddr(tt.in))
		})
	}
}
