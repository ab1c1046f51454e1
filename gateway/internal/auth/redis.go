package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Key prefixes of the Redis stores. Ticket keys hold the SHA-256 of the ticket, never the ticket.
const (
	redisTicketPrefix  = "teragate:ticket:"
	redisRevokedPrefix = "teragate:revoked:"
)

// redisTicketGrace keeps an expired ticket's key a little longer than its TTL, so that a late
// redeem is told "expired" (and the ticket consumed) rather than "invalid".
const redisTicketGrace = 10 * time.Second

// RedisTickets is the [Tickets] implementation of a multi-node deployment: a ticket issued by the
// node that served the login can be redeemed on any node. Each ticket is one Redis key with a TTL
// (the ticket TTL plus a few seconds of grace), so Redis forgets it by itself.
//
// # Notes
//
// Redeem is one Lua script (GET, compare the kind, DEL), hence atomic across nodes: of two
// concurrent redeems of one ticket, exactly one succeeds. A ticket presented for the wrong kind is
// not consumed, as with [MemoryTickets]. Expiry is decided by the clock of the redeeming node
// against the expiry written by the issuing node, so nodes need synchronised clocks (NTP), as they
// do for JWT expiry anyway.
type RedisTickets struct {
	c   redis.UniversalClient
	ttl time.Duration
	now func() time.Time
}

// NewRedisTickets returns tickets stored in Redis through c. A ttl ≤ 0 means
// [DefaultTicketTTL]; a nil now means time.Now.
func NewRedisTickets(c redis.UniversalClient, ttl time.Duration, now func() time.Time) *RedisTickets {
	if ttl <= 0 {
		ttl = DefaultTicketTTL
	}
	if now == nil {
		now = time.Now
	}
	return &RedisTickets{c: c, ttl: ttl, now: now}
}

func ticketKey(key []byte) string {
	h := sha256.Sum256(key)
	return redisTicketPrefix + hex.EncodeToString(h[:])
}

// Issue returns a new 64-hex-character ticket for the entity, stored in Redis.
func (r *RedisTickets) Issue(ctx context.Context, kind directory.Kind, uuid string) (string, error) {
	key, err := newTicketKey(ctx, kind, uuid)
	if err != nil {
		return "", err
	}
	exp := r.now().Add(r.ttl).UnixMilli()
	val := strconv.Itoa(int(kind)) + "|" + strconv.FormatInt(exp, 10) + "|" + uuid
	if err := r.c.Set(ctx, ticketKey(key[:]), val, r.ttl+redisTicketGrace).Err(); err != nil {
		return "", fmt.Errorf("auth: store ticket: %w", err)
	}
	return hex.EncodeToString(key[:]), nil
}

// redeemScript consumes a ticket of the given kind: it returns the stored value, or "" for an
// unknown ticket, or "kind:<k>" (without consuming it) for a ticket of another kind.
var redeemScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return '' end
local k = string.match(v, '^(%d+)|')
if k ~= ARGV[1] then return 'kind:' .. (k or '?') end
redis.call('DEL', KEYS[1])
return v`)

// Redeem consumes a ticket. See [Tickets.Redeem] and the notes on [RedisTickets].
func (r *RedisTickets) Redeem(ctx context.Context, s string, kind directory.Kind) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var key [ticketBytes]byte
	if len(s) != 2*ticketBytes {
		return "", ErrTicketInvalid
	}
	if _, err := hex.Decode(key[:], []byte(s)); err != nil {
		return "", ErrTicketInvalid
	}
	v, err := redeemScript.Run(ctx, r.c, []string{ticketKey(key[:])}, strconv.Itoa(int(kind))).Text()
	if err != nil {
		return "", fmt.Errorf("auth: redeem ticket: %w", err)
	}
	if v == "" {
		return "", ErrTicketInvalid
	}
	if k, ok := strings.CutPrefix(v, "kind:"); ok {
		n, _ := strconv.Atoi(k)
		return "", fmt.Errorf("%w: issued for a %s, presented as %s", ErrTicketInvalid, directory.Kind(n), kind)
	}
	parts := strings.SplitN(v, "|", 3)
	if len(parts) != 3 {
		return "", ErrTicketInvalid
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", ErrTicketInvalid
	}
	if r.now().UnixMilli() >= exp {
		return "", ErrTicketExpired
	}
	return parts[2], nil
}

// Len returns the number of tickets stored in Redis (any node's), for tests and diagnostics.
func (r *RedisTickets) Len() int {
	var n int
	iter := r.c.Scan(context.Background(), 0, redisTicketPrefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	return n
}

// RedisRevocations is the [Revocations] store of a multi-node deployment (OpenTera keeps its
// user_disabled_tokens in Redis the same way): one key per revoked token id that expires with the
// token, so a logout on one node is honoured by every node.
type RedisRevocations struct {
	c redis.UniversalClient
}

// NewRedisRevocations returns revocations stored in Redis through c.
func NewRedisRevocations(c redis.UniversalClient) *RedisRevocations {
	return &RedisRevocations{c: c}
}

// Revoke records id as revoked until until (the key expires then).
func (r *RedisRevocations) Revoke(ctx context.Context, id string, until time.Time) error {
	if !until.After(time.Now()) {
		return nil
	}
	if err := r.c.SetArgs(ctx, redisRevokedPrefix+id, "1", redis.SetArgs{ExpireAt: until}).Err(); err != nil {
		return fmt.Errorf("auth: revoke: %w", err)
	}
	return nil
}

// Revoked reports whether id is revoked now.
func (r *RedisRevocations) Revoked(ctx context.Context, id string) (bool, error) {
	n, err := r.c.Exists(ctx, redisRevokedPrefix+id).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("auth: revoked: %w", err)
	}
	return n > 0, nil
}

var (
	_ Tickets     = (*RedisTickets)(nil)
	_ Revocations = (*RedisRevocations)(nil)
)
