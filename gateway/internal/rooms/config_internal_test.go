package rooms

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestSweepIntervalWithinTheGrace: with a Redis store, the default sweep interval leaves room
// for four sweeps within the store's grace (a record Redis deletes before a sweep reads it
// expires unreported); an explicit interval and the memory store keep theirs.
func TestSweepIntervalWithinTheGrace(t *testing.T) {
	redisStore := func(grace time.Duration) Store {
		return NewRedisStore(RedisStoreConfig{Client: redis.NewClient(&redis.Options{}), Grace: grace})
	}
	tests := []struct {
		name  string
		cfg   Config
		sweep time.Duration
	}{
		{"memory", Config{ParticipantTTL: 2 * time.Second}, 500 * time.Millisecond},
		{"redis, default grace", Config{ParticipantTTL: 2 * time.Second, Store: redisStore(0)}, 500 * time.Millisecond},
		{"redis, short grace", Config{ParticipantTTL: 2 * time.Second, Store: redisStore(300 * time.Millisecond)}, 75 * time.Millisecond},
		{"redis, tiny grace", Config{ParticipantTTL: 2 * time.Second, Store: redisStore(time.Millisecond)}, 10 * time.Millisecond},
		{"explicit", Config{ParticipantTTL: 2 * time.Second, SweepInterval: time.Second, Store: redisStore(300 * time.Millisecond)}, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.sweep, tc.cfg.withDefaults().SweepInterval)
		})
	}
}
