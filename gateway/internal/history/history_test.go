package history_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/testutil"
)

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want history.Token
		err  error
	}{
		{"ab12-7", history.Token{Epoch: "ab12", Pos: history.Pos{Lo: 7}}, nil},
		{"ab12-1733300000000-3", history.Token{Epoch: "ab12", Pos: history.Pos{Hi: 1733300000000, Lo: 3}, Stream: true}, nil},
		{"", history.Token{}, history.ErrMalformed},
		{"ab12", history.Token{}, history.ErrMalformed},
		{"AB-1", history.Token{}, history.ErrMalformed},
		{"-1", history.Token{}, history.ErrMalformed},
		{"ab-", history.Token{}, history.ErrMalformed},
		{"ab-+1", history.Token{}, history.ErrMalformed},
		{"ab-1-2-3", history.Token{}, history.ErrMalformed},
		{"ab-99999999999999999999", history.Token{}, history.ErrMalformed},
		{"a_b-1", history.Token{}, history.ErrMalformed},
		{"0123456789abcdef0123456789abcdef0-1", history.Token{}, history.ErrMalformed},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := history.ParseToken(tc.in)
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, tc.want, got)
			if err == nil {
				require.Equal(t, tc.in, got.String())
			}
		})
	}
}

// collect subscribes to every channel and records the positions delivered, in order.
type collect struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func (c *collect) handler(m bus.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collect) wait(t *testing.T, n int) []bus.Message {
	t.Helper()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.msgs) >= n
	}, 10*time.Second, 5*time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Message(nil), c.msgs...)
}

// storeCase is a history with its bus, under test.
type storeCase struct {
	name  string
	store history.Store
	bus   bus.Bus
	// trim drops the oldest events beyond keep, as the count bound would.
	trim func(t *testing.T, keep int)
}

func memoryCase(t *testing.T) storeCase {
	b := bus.NewMemory(bus.MemoryConfig{})
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return storeCase{name: "memory", store: history.NewMemory(b, history.Config{MaxEvents: 1000}), bus: b}
}

func redisCase(t *testing.T) (storeCase, *redis.Client) {
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	b, err := bus.NewRedis(bus.RedisConfig{Client: c, PositionChannel: history.DefaultPositionChannel})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	h, err := history.NewRedis(t.Context(), history.RedisConfig{Client: c, Config: history.Config{MaxEvents: 1000}})
	require.NoError(t, err)
	return storeCase{name: "redis", store: h, bus: b, trim: func(t *testing.T, keep int) {
		require.NoError(t, c.XTrimMaxLen(t.Context(), "teragate:history", int64(keep)).Err())
	}}, c
}

// TestStore: both histories record in publish order, deliver live messages with the position
// they recorded, read after any position, and tell a trimmed or foreign position apart.
func TestStore(t *testing.T) {
	rc, _ := redisCase(t)
	for _, sc := range []storeCase{memoryCase(t), rc} {
		t.Run(sc.name, func(t *testing.T) {
			ctx := t.Context()
			var live collect
			patterns := []string{"ev.*"}
			if sc.name == "redis" {
				patterns = append(patterns, history.DefaultPositionChannel)
			}
			sub, err := sc.bus.SubscribeAll(ctx, patterns, live.handler)
			require.NoError(t, err)
			defer sub.Unsubscribe(ctx)

			head0, err := sc.store.Head(ctx)
			require.NoError(t, err)
			const n = 20
			for i := range n {
				require.NoError(t, sc.store.Publish(ctx, fmt.Sprintf("ev.%d", i%3), []byte(fmt.Sprint(i))))
			}
			msgs := live.wait(t, n)
			require.Len(t, msgs, n, "the position announcements are not delivered as messages")

			all, err := sc.store.Read(ctx, head0, 100)
			require.NoError(t, err)
			require.Len(t, all, n)
			for i, e := range all {
				require.Equal(t, fmt.Sprint(i), string(e.Payload))
				require.Equal(t, fmt.Sprintf("ev.%d", i%3), e.Channel)
				require.Equal(t, e.Token, msgs[i].Position, "the live message carries the recorded position")
				require.Equal(t, string(e.Payload), string(msgs[i].Payload))
				if i > 0 {
					require.True(t, all[i-1].Pos.Less(e.Pos))
				}
			}
			head, err := sc.store.Head(ctx)
			require.NoError(t, err)
			require.Equal(t, all[n-1].Token, head.String())

			// Paging from a middle position.
			mid, err := history.ParseToken(all[9].Token)
			require.NoError(t, err)
			page, err := sc.store.Read(ctx, mid, 4)
			require.NoError(t, err)
			require.Equal(t, all[10:14], page)
			rest, err := sc.store.Read(ctx, head, 4)
			require.NoError(t, err)
			require.Empty(t, rest, "nothing after the newest")

			for _, tc := range []struct {
				name string
				tok  history.Token
				err  error
			}{
				{"another epoch", history.Token{Epoch: "zz", Pos: mid.Pos, Stream: mid.Stream}, history.ErrUnknown},
				{"the other mode", history.Token{Epoch: mid.Epoch, Pos: mid.Pos, Stream: !mid.Stream}, history.ErrUnknown},
				{"beyond the newest", history.Token{Epoch: head.Epoch, Pos: history.Pos{Hi: head.Pos.Hi + 1000, Lo: head.Pos.Lo + 1000}, Stream: head.Stream}, history.ErrUnknown},
			} {
				_, err := sc.store.Read(ctx, tc.tok, 10)
				require.ErrorIs(t, err, tc.err, tc.name)
			}
			n1, err := sc.store.Len(ctx)
			require.NoError(t, err)
			require.Equal(t, n, n1)
		})
	}
}

// TestStoreTooOld: a position whose successor was trimmed is too old; the position just before
// the oldest event kept is not.
func TestStoreTooOld(t *testing.T) {
	rc, _ := redisCase(t)
	mb := bus.NewMemory(bus.MemoryConfig{})
	t.Cleanup(func() { _ = mb.Close(context.Background()) })
	mem := storeCase{name: "memory", store: history.NewMemory(mb, history.Config{MaxEvents: 5}), bus: mb, trim: func(*testing.T, int) {}}
	for _, sc := range []storeCase{mem, rc} {
		t.Run(sc.name, func(t *testing.T) {
			ctx := t.Context()
			var live collect
			patterns := []string{"ev.*"}
			if sc.name == "redis" {
				patterns = append(patterns, history.DefaultPositionChannel)
			}
			sub, err := sc.bus.SubscribeAll(ctx, patterns, live.handler)
			require.NoError(t, err)
			defer sub.Unsubscribe(ctx)
			head0, err := sc.store.Head(ctx)
			require.NoError(t, err)
			for i := range 12 {
				require.NoError(t, sc.store.Publish(ctx, "ev.x", []byte(fmt.Sprint(i))))
			}
			msgs := live.wait(t, 12)
			sc.trim(t, 5) // keeps events 7..11
			kept, err := sc.store.Len(ctx)
			require.NoError(t, err)
			require.Equal(t, 5, kept)
			pos := func(i int) history.Token {
				tok, err := history.ParseToken(msgs[i].Position)
				require.NoError(t, err)
				return tok
			}
			for _, tc := range []struct {
				name string
				tok  history.Token
				err  error
				n    int
			}{
				{"before every event", head0, history.ErrTooOld, 0},
				{"its successor trimmed", pos(5), history.ErrTooOld, 0},
				{"just before the oldest kept", pos(6), nil, 5},
				{"the oldest kept", pos(7), nil, 4},
			} {
				got, err := sc.store.Read(ctx, tc.tok, 100)
				require.ErrorIs(t, err, tc.err, tc.name)
				require.Len(t, got, tc.n, tc.name)
			}
		})
	}
}

// TestMemoryMaxAge: events older than MaxAge are dropped; a position before them is too old.
func TestMemoryMaxAge(t *testing.T) {
	b := bus.NewMemory(bus.MemoryConfig{})
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	now := time.Unix(1000, 0)
	h := history.NewMemory(b, history.Config{MaxAge: time.Minute, Now: func() time.Time { return now }})
	ctx := t.Context()
	head0, err := h.Head(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Publish(ctx, "ev.a", []byte("old")))
	now = now.Add(30 * time.Second)
	require.NoError(t, h.Publish(ctx, "ev.a", []byte("newer")))
	got, err := h.Read(ctx, head0, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	now = now.Add(45 * time.Second) // the first is 75 s old, the second 45 s
	_, err = h.Read(ctx, head0, 10)
	require.ErrorIs(t, err, history.ErrTooOld)
	n, err := h.Len(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Positive(t, h.Bytes())
	now = now.Add(time.Hour)
	n, err = h.Len(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, h.Bytes())
}
