package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures [NewRedis].
type RedisConfig struct {
	Config
	// Client is the Redis client. Required; the history does not close it.
	Client *redis.Client
	// Key is the history stream's key. Zero value means "teragate:history"; the epoch is kept
	// at Key+":epoch".
	Key string
	// PositionChannel is the channel on which each publish announces its position to the
	// subscribers ([bus.RedisConfig.PositionChannel]). Zero value means [DefaultPositionChannel].
	PositionChannel string
}

// DefaultPositionChannel is the default [RedisConfig.PositionChannel].
const DefaultPositionChannel = "teragate.history.position"

// Redis is the history of a cluster, in a Redis stream: one XADD per event, trimmed by count
// (MAXLEN ~) and age (MINID ~), positions "<epoch>-<stream id>".
type Redis struct {
	cfg      RedisConfig
	epochKey string
	lastKey  string
}

// publishScript records an event, trims the stream and publishes the event's position, then the
// event, in one atomic step: every subscriber sees the announcement right before the event. Each
// entry keeps the id of the entry before it ("v"), so a reader knows whether the successor of a
// position is still there or was trimmed; the newest id is kept at KEYS[3].
//
// KEYS: stream, epoch key, last id key. ARGV: channel, payload, max events, max age ms,
// position channel, a new epoch to use if the key is missing (a flushed Redis).
var publishScript = redis.NewScript(`
local ep = redis.call('GET', KEYS[2])
if not ep then
  ep = ARGV[6]
  redis.call('SET', KEYS[2], ep)
end
local prev = redis.call('GET', KEYS[3])
if not prev then
  prev = '0-0'
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'c', ARGV[1], 'p', ARGV[2], 'v', prev)
redis.call('SET', KEYS[3], id)
local age = tonumber(ARGV[4])
if age > 0 then
  local t = redis.call('TIME')
  local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - age
  if minid > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', minid))
  end
end
local tok = ep .. '-' .. id
redis.call('PUBLISH', ARGV[5], tok .. ' ' .. ARGV[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return tok
`)

// NewRedis returns the history kept in cfg.Client, creating the cluster's epoch if Redis has
// none.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("history: redis: nil client")
	}
	cfg.defaults()
	if cfg.Key == "" {
		cfg.Key = "teragate:history"
	}
	if cfg.PositionChannel == "" {
		cfg.PositionChannel = DefaultPositionChannel
	}
	r := &Redis{cfg: cfg, epochKey: cfg.Key + ":epoch", lastKey: cfg.Key + ":last"}
	if err := cfg.Client.SetNX(ctx, r.epochKey, newEpoch(), 0).Err(); err != nil {
		return nil, fmt.Errorf("history: redis epoch: %w", err)
	}
	return r, nil
}

// PositionChannel returns the channel position announcements are published on.
func (r *Redis) PositionChannel() string { return r.cfg.PositionChannel }

// Publish implements [Store].
func (r *Redis) Publish(ctx context.Context, channel string, payload []byte) error {
	err := publishScript.Run(ctx, r.cfg.Client, []string{r.cfg.Key, r.epochKey, r.lastKey},
		channel, payload, r.cfg.MaxEvents, r.cfg.MaxAge.Milliseconds(), r.cfg.PositionChannel, newEpoch()).Err()
	if err != nil {
		return fmt.Errorf("history: redis publish: %w", err)
	}
	return nil
}

// streamState is what Read and Head need to know about the stream, read in one transaction.
type streamState struct {
	epoch string
	last  Pos // the newest entry's id
}

func parseID(s string) (Pos, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Pos{}, fmt.Errorf("history: bad stream id %q", s)
	}
	hi, err1 := strconv.ParseUint(a, 10, 64)
	lo, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return Pos{}, fmt.Errorf("history: bad stream id %q", s)
	}
	return Pos{Hi: hi, Lo: lo}, nil
}

func formatID(p Pos) string {
	return strconv.FormatUint(p.Hi, 10) + "-" + strconv.FormatUint(p.Lo, 10)
}

// state reads the epoch, the newest id and, with limit > 0, the entries after from, atomically
// (MULTI/EXEC), so a trim cannot fall between them.
func (r *Redis) state(ctx context.Context, from Pos, limit int) (streamState, []redis.XMessage, error) {
	var get, last *redis.StringCmd
	var rng *redis.XMessageSliceCmd
	_, err := r.cfg.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, r.epochKey)
		last = p.Get(ctx, r.lastKey)
		if limit > 0 {
			rng = p.XRangeN(ctx, r.cfg.Key, "("+formatID(from), "+", int64(limit))
		}
		return nil
	})
	var st streamState
	if err != nil && !errors.Is(err, redis.Nil) {
		return st, nil, fmt.Errorf("history: redis read: %w", err)
	}
	if st.epoch, err = get.Result(); err != nil && !errors.Is(err, redis.Nil) {
		return st, nil, fmt.Errorf("history: redis epoch: %w", err)
	}
	id, err := last.Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return st, nil, fmt.Errorf("history: redis last id: %w", err)
	default:
		if st.last, err = parseID(id); err != nil {
			return st, nil, err
		}
	}
	var msgs []redis.XMessage
	if rng != nil {
		if msgs, err = rng.Result(); err != nil {
			return st, nil, fmt.Errorf("history: redis xrange: %w", err)
		}
	}
	return st, msgs, nil
}

// Read implements [Store]. The position's successor is still in the stream when the first entry
// after it names it as its predecessor; otherwise it was trimmed ([ErrTooOld]).
func (r *Redis) Read(ctx context.Context, after Token, limit int) ([]Entry, error) {
	if !after.Stream {
		return nil, ErrUnknown
	}
	st, msgs, err := r.state(ctx, after.Pos, max(limit, 1))
	if err != nil {
		return nil, err
	}
	if st.epoch == "" || st.epoch != after.Epoch || st.last.Less(after.Pos) {
		return nil, ErrUnknown
	}
	if len(msgs) == 0 {
		if after.Pos != st.last {
			return nil, ErrTooOld // entries after it were all trimmed
		}
		return nil, nil
	}
	if prev, _ := msgs[0].Values["v"].(string); prev != formatID(after.Pos) {
		return nil, ErrTooOld
	}
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		p, err := parseID(m.ID)
		if err != nil {
			return nil, err
		}
		ch, _ := m.Values["c"].(string)
		pl, _ := m.Values["p"].(string)
		out = append(out, Entry{Token: st.epoch + "-" + m.ID, Pos: p, Channel: ch, Payload: []byte(pl)})
	}
	return out, nil
}

// Head implements [Store].
func (r *Redis) Head(ctx context.Context) (Token, error) {
	st, _, err := r.state(ctx, Pos{}, 0)
	if err == nil && st.epoch == "" { // a flushed Redis: the next publish would create one
		if err = r.cfg.Client.SetNX(ctx, r.epochKey, newEpoch(), 0).Err(); err == nil {
			st, _, err = r.state(ctx, Pos{}, 0)
		}
	}
	if err != nil {
		return Token{}, err
	}
	return Token{Epoch: st.epoch, Pos: st.last, Stream: true}, nil
}

// Len implements [Store].
func (r *Redis) Len(ctx context.Context) (int, error) {
	n, err := r.cfg.Client.XLen(ctx, r.cfg.Key).Result()
	return int(n), err
}

var _ Store = (*Redis)(nil)
