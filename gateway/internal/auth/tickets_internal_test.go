package auth

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestTicketsPruned issues 100k tickets that nobody redeems and checks that they are all dropped
// once expired, map and queue alike.
func TestTicketsPruned(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	tk := NewMemoryTickets(time.Minute, clock)
	ctx := context.Background()
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	for i := range n {
		_, err := tk.Issue(ctx, directory.KindUser, "u")
		require.NoError(t, err)
		if i%1000 == 0 {
			now = now.Add(time.Millisecond)
		}
	}
	require.Equal(t, n, tk.Len())

	// Half-way through the burst's lifetime nothing has expired.
	now = now.Add(30 * time.Second)
	_, err := tk.Redeem(ctx, "00", directory.KindUser)
	require.ErrorIs(t, err, ErrTicketInvalid)
	require.Equal(t, n, tk.Len())

	// After it, any call prunes them all.
	now = now.Add(time.Minute)
	live, err := tk.Issue(ctx, directory.KindUser, "u")
	require.NoError(t, err)
	require.Equal(t, 1, tk.Len())
	tk.mu.Lock()
	require.Equal(t, 1, len(tk.queue)-tk.head)
	require.LessOrEqual(t, cap(tk.queue), 4096, "the burst's queue memory is released")
	tk.mu.Unlock()

	uuid, err := tk.Redeem(ctx, live, directory.KindUser)
	require.NoError(t, err)
	require.Equal(t, "u", uuid)
}

// TestTicketsQueueCompaction keeps a steady flow of tickets alive and checks that the queue does
// not grow without bound.
func TestTicketsQueueCompaction(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tk := NewMemoryTickets(time.Second, func() time.Time { return now })
	ctx := context.Background()
	for range 50_000 {
		_, err := tk.Issue(ctx, directory.KindDevice, "d")
		require.NoError(t, err)
		now = now.Add(time.Millisecond) // about 1000 tickets alive at any time
	}
	require.LessOrEqual(t, tk.Len(), 1001)
	tk.mu.Lock()
	defer tk.mu.Unlock()
	require.LessOrEqual(t, len(tk.queue), 4*1024, "queue length %d", len(tk.queue))
}
