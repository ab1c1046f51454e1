package rooms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// RedisPrefix starts every key of the [RedisStore].
const RedisPrefix = "teragate:rooms:"

// DefaultRedisGrace is the default of [RedisStoreConfig.Grace].
const DefaultRedisGrace = time.Minute

// Keys of the Redis store (see the package documentation for the layout).
const (
	redisRoomPrefix  = RedisPrefix + "room:"  // + token: the room record (JSON)
	redisPartsPrefix = RedisPrefix + "parts:" // + token: set of the room's participant ids
	redisPartPrefix  = RedisPrefix + "part:"  // + token + ":" + id: a participant record (JSON)
	redisOwnerPrefix = RedisPrefix + "owner:" // + owner id: zset room token → deadline (ms)
	redisTombsPrefix = RedisPrefix + "tombs:" // + owner id: zset "token deletedAt" → kept until (ms)
	redisHawkPrefix  = RedisPrefix + "hawk:"  // + id hash: "until(ms) key"
	redisNoncePrefix = RedisPrefix + "nonce:" // + id hash ":" nonce: until (ms)
	redisStatePrefix = RedisPrefix + "state:" // + state label: zset "token id" → participant deadline (ms)
	redisRoomsIndex  = RedisPrefix + "rooms"  // zset token → room deadline (ms)
	redisHawkIndex   = RedisPrefix + "hawks"  // zset id hash → session deadline (ms)
	redisSecretKey   = RedisPrefix + "secret" // the HMAC secret shared by the nodes (hex)
	// redisTxRetries bounds the optimistic retries of one operation under contention.
	redisTxRetries = 200
	// redisSweepBatch is the number of due entries one sweep step takes from an index.
	redisSweepBatch = 256
)

// RedisStoreConfig configures a [RedisStore].
type RedisStoreConfig struct {
	// Client is the Redis client (required).
	Client redis.UniversalClient
	// Grace is how long a room or participant record outlives its deadline in Redis before
	// Redis deletes it, so that a node's sweep can still read it and publish the presence events
	// of its expiry. The record is invisible to every read from its deadline on. Default 1m.
	Grace time.Duration
}

// RedisStore is the [Store] kept in Redis: rooms, participants with their session states,
// tombstones, Hawk sessions and nonces, shared by every node on the same Redis and kept across
// restarts. Each record is a key with its own expiry; compound operations are atomic across nodes
// (optimistic WATCH/MULTI transactions, retried on conflict, and Lua scripts).
type RedisStore struct {
	c     redis.UniversalClient
	grace time.Duration
}

// NewRedisStore returns a store on cfg.Client.
func NewRedisStore(cfg RedisStoreConfig) *RedisStore {
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultRedisGrace
	}
	return &RedisStore{c: cfg.Client, grace: cfg.Grace}
}

// ErrConflict is returned by the [RedisStore] when an operation lost its optimistic
// transaction to concurrent writers more times than it retries.
var ErrConflict = errors.New("rooms: too much contention on a record")

// SharedSecret returns the HMAC secret of the rooms service shared by every node on this Redis:
// the first node to ask creates it (32 random bytes); it has no expiry, so session tokens and
// Hawk ids keep their keys across restarts.
func (s *RedisStore) SharedSecret(ctx context.Context) ([]byte, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if err := s.c.SetNX(ctx, redisSecretKey, hex.EncodeToString(b), 0).Err(); err != nil {
		return nil, err
	}
	v, err := s.c.Get(ctx, redisSecretKey).Result()
	if err != nil {
		return nil, err
	}
	out, err := hex.DecodeString(v)
	if err != nil || len(out) < 16 {
		return nil, fmt.Errorf("rooms: invalid secret in %s", redisSecretKey)
	}
	return out, nil
}

func roomKey(token string) string         { return redisRoomPrefix + token }
func partsKey(token string) string        { return redisPartsPrefix + token }
func partKey(token, id string) string     { return redisPartPrefix + token + ":" + id }
func ownerKey(owner string) string        { return redisOwnerPrefix + owner }
func tombsKey(owner string) string        { return redisTombsPrefix + owner }
func stateKey(label string) string        { return redisStatePrefix + label }
func stateMember(token, id string) string { return token + " " + id }

// ms is t in Unix milliseconds (the scores and deadlines of the store).
func ms(t time.Time) int64 { return t.UnixMilli() }

// Grace returns how long a record outlives its deadline in Redis: the service sweeps at least
// four times within it, so that every expiry is read, and reported, before Redis deletes it.
func (s *RedisStore) Grace() time.Duration { return s.grace }

// ttl is the key lifetime of a record whose deadline is at deadline: what is left of it at now
// plus the grace; at least a millisecond.
func (s *RedisStore) ttl(deadline, now time.Time) time.Duration {
	return max(deadline.Sub(now)+s.grace, time.Millisecond)
}

// roomRec is the JSON form of a [Room] in Redis.
type roomRec struct {
	Token     string          `json:"t"`
	Name      string          `json:"n,omitempty"`
	HasName   bool            `json:"hn,omitempty"`
	Context   json.RawMessage `json:"c,omitempty"`
	Owner     string          `json:"o"`
	OwnerID   string          `json:"oid"`
	MaxSize   int             `json:"ms"`
	ExpiresIn int             `json:"ei"`
	Created   int64           `json:"ct"`
	Updated   int64           `json:"ut"`
	ExpiresAt int64           `json:"ea"`
	Channel   string          `json:"ch,omitempty"`
	SessionID string          `json:"sid"`
	Directory bool            `json:"dir,omitempty"`
}

func encodeRoom(r Room) string {
	b, _ := json.Marshal(roomRec{r.Token, r.Name, r.HasName, r.Context, r.Owner, r.OwnerID, r.MaxSize, r.ExpiresIn,
		r.CreationTime, r.UpdateTime, r.ExpiresAt, r.Channel, r.SessionID, r.Directory})
	return string(b)
}

func decodeRoom(v string) (Room, error) {
	var x roomRec
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return Room{}, fmt.Errorf("rooms: corrupt room record: %w", err)
	}
	return Room{Token: x.Token, Name: x.Name, HasName: x.HasName, Context: x.Context, Owner: x.Owner, OwnerID: x.OwnerID,
		MaxSize: x.MaxSize, ExpiresIn: x.ExpiresIn, CreationTime: x.Created, UpdateTime: x.Updated, ExpiresAt: x.ExpiresAt,
		Channel: x.Channel, SessionID: x.SessionID, Directory: x.Directory}, nil
}

func roomDeadline(r Room) time.Time { return time.Unix(r.ExpiresAt, 0) }

// partRec is the JSON form of a [Participant] in Redis; times are Unix nanoseconds (0: zero).
type partRec struct {
	ID            string `json:"id"`
	ConnectionID  string `json:"cid"`
	DisplayName   string `json:"dn"`
	ClientMaxSize int    `json:"cms"`
	UserID        string `json:"uid,omitempty"`
	Kind          int    `json:"k,omitempty"`
	UUID          string `json:"u,omitempty"`
	Basic         bool   `json:"b,omitempty"`
	JoinedAt      int64  `json:"ja"`
	ExpiresAt     int64  `json:"ea"`
	State         string `json:"s,omitempty"`
	Event         string `json:"e,omitempty"`
	Connections   int64  `json:"sc,omitempty"`
	SendStreams   int64  `json:"ss,omitempty"`
	RecvStreams   int64  `json:"sr,omitempty"`
	Updates       int64  `json:"su,omitempty"`
	UpdatedAt     int64  `json:"sa,omitempty"`
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func encodePart(p Participant) string {
	b, _ := json.Marshal(partRec{p.ID, p.ConnectionID, p.DisplayName, p.ClientMaxSize, p.UserID, int(p.Kind), p.UUID, p.Basic,
		nanos(p.JoinedAt), nanos(p.ExpiresAt), p.Status.State, p.Status.Event, p.Status.Connections, p.Status.SendStreams,
		p.Status.RecvStreams, p.Status.Updates, nanos(p.Status.UpdatedAt)})
	return string(b)
}

func decodePart(v string) (Participant, error) {
	var x partRec
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return Participant{}, fmt.Errorf("rooms: corrupt participant record: %w", err)
	}
	p := Participant{ID: x.ID, ConnectionID: x.ConnectionID, DisplayName: x.DisplayName, ClientMaxSize: x.ClientMaxSize,
		UserID: x.UserID, UUID: x.UUID, Basic: x.Basic, JoinedAt: fromNanos(x.JoinedAt), ExpiresAt: fromNanos(x.ExpiresAt),
		Status: Status{State: x.State, Event: x.Event, Connections: x.Connections, SendStreams: x.SendStreams,
			RecvStreams: x.RecvStreams, Updates: x.Updates, UpdatedAt: fromNanos(x.UpdatedAt)}}
	p.Kind = directory.Kind(x.Kind)
	return p, nil
}

// watch runs fn in an optimistic transaction on keys (fn reads, then writes with
// tx.TxPipelined), retrying when another client changed a watched key meanwhile.
func (s *RedisStore) watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	for i := range redisTxRetries {
		err := s.c.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if i > 2 { // heavy contention: let the winner finish
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(i) * 100 * time.Microsecond):
			}
		}
	}
	return ErrConflict
}

// extendScript sets KEYS[1]'s expiry to ARGV[1] ms unless it already lives longer (an index key
// covering several records lives as long as the last of them).
var extendScript = redis.NewScript(`
local t = redis.call('PTTL', KEYS[1])
if t == -1 or (t >= 0 and t < tonumber(ARGV[1])) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0`)

func extend(ctx context.Context, p redis.Pipeliner, key string, d time.Duration) {
	extendScript.Eval(ctx, p, []string{key}, d.Milliseconds())
}

// getRoom reads a live room with c (a transaction or the client).
func getRoom(ctx context.Context, c redis.Cmdable, token string, now time.Time) (Room, error) {
	v, err := c.Get(ctx, roomKey(token)).Result()
	if errors.Is(err, redis.Nil) {
		return Room{}, ErrNotFound
	}
	if err != nil {
		return Room{}, err
	}
	r, err := decodeRoom(v)
	if err != nil {
		return Room{}, err
	}
	if r.Expired(now) {
		return Room{}, ErrNotFound
	}
	return r, nil
}

// putRoom queues the writes of a room record and of the indexes that carry its deadline.
func (s *RedisStore) putRoom(ctx context.Context, p redis.Pipeliner, r Room, now time.Time) {
	d := roomDeadline(r)
	ttl := s.ttl(d, now)
	p.Set(ctx, roomKey(r.Token), encodeRoom(r), ttl)
	p.ZAdd(ctx, redisRoomsIndex, redis.Z{Score: float64(ms(d)), Member: r.Token})
	p.ZAdd(ctx, ownerKey(r.OwnerID), redis.Z{Score: float64(ms(d)), Member: r.Token})
	extend(ctx, p, ownerKey(r.OwnerID), ttl)
	extend(ctx, p, partsKey(r.Token), ttl)
}

// putPart queues the writes of a participant record and its state index entry; prev is the
// record it replaces, if any.
func (s *RedisStore) putPart(ctx context.Context, p redis.Pipeliner, token string, x Participant, prev *Participant, now time.Time) {
	m := stateMember(token, x.ID)
	if prev != nil {
		if l := stateLabel(prev.Status); l != stateLabel(x.Status) {
			p.ZRem(ctx, stateKey(l), m)
		}
	}
	p.Set(ctx, partKey(token, x.ID), encodePart(x), s.ttl(x.ExpiresAt, now))
	p.ZAdd(ctx, stateKey(stateLabel(x.Status)), redis.Z{Score: float64(ms(x.ExpiresAt)), Member: m})
}

// delParts queues the deletion of participant records and their index entries.
func delParts(ctx context.Context, p redis.Pipeliner, token string, ps []Participant) {
	for _, x := range ps {
		p.Del(ctx, partKey(token, x.ID))
		p.ZRem(ctx, stateKey(stateLabel(x.Status)), stateMember(token, x.ID))
	}
}

// CreateRoom implements [Store].
func (s *RedisStore) CreateRoom(ctx context.Context, r Room, now time.Time, maxPerOwner int) error {
	owner := ownerKey(r.OwnerID)
	return s.watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, roomKey(r.Token)).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		if maxPerOwner > 0 {
			live, err := tx.ZCount(ctx, owner, "("+strconv.FormatInt(ms(now), 10), "+inf").Result()
			if err != nil {
				return err
			}
			if live >= int64(maxPerOwner) {
				return ErrLimit
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRemRangeByScore(ctx, owner, "-inf", strconv.FormatInt(ms(now), 10))
			s.putRoom(ctx, p, r, now)
			return nil
		})
		return err
	}, roomKey(r.Token), owner)
}

// Room implements [Store].
func (s *RedisStore) Room(ctx context.Context, token string, now time.Time) (Room, error) {
	return getRoom(ctx, s.c, token, now)
}

// UpdateRoom implements [Store].
func (s *RedisStore) UpdateRoom(ctx context.Context, token string, now time.Time, fn func(*Room) error) (Room, error) {
	var out Room
	err := s.watch(ctx, func(tx *redis.Tx) error {
		r, err := getRoom(ctx, tx, token, now)
		if err != nil {
			return err
		}
		c := r
		if err := fn(&c); err != nil {
			return err
		}
		c.Token, c.OwnerID = r.Token, r.OwnerID // identity fields never change
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			s.putRoom(ctx, p, c, now)
			return nil
		})
		out = c
		return err
	}, roomKey(token))
	return out, err
}

// readParts reads the participant records of a room (all of them, expired ones included) with
// c; when c is a transaction, the records are watched too.
func readParts(ctx context.Context, c redis.Cmdable, token string) ([]Participant, error) {
	ids, err := c.SMembers(ctx, partsKey(token)).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = partKey(token, id)
	}
	if tx, ok := c.(*redis.Tx); ok {
		if err := tx.Watch(ctx, keys...).Err(); err != nil {
			return nil, err
		}
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Participant, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // expired in Redis
		}
		p, err := decodePart(str)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func liveOnly(ps []Participant, now time.Time) []Participant {
	out := ps[:0:0]
	for _, p := range ps {
		if !p.Expired(now) {
			out = append(out, p)
		}
	}
	sortParts(out)
	return out
}

// DeleteRoom implements [Store].
func (s *RedisStore) DeleteRoom(ctx context.Context, token string, now, tombUntil time.Time) (Room, []Participant, error) {
	var room Room
	var ps []Participant
	err := s.watch(ctx, func(tx *redis.Tx) error {
		var err error
		if room, err = getRoom(ctx, tx, token, now); err != nil {
			return err
		}
		if ps, err = readParts(ctx, tx, token); err != nil {
			return err
		}
		tk := tombsKey(room.OwnerID)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			s.removeRoom(ctx, p, room, ps)
			p.ZRemRangeByScore(ctx, tk, "-inf", strconv.FormatInt(ms(now), 10))
			p.ZAdd(ctx, tk, redis.Z{Score: float64(ms(tombUntil)), Member: token + " " + strconv.FormatInt(now.Unix(), 10)})
			extend(ctx, p, tk, max(tombUntil.Sub(now), time.Millisecond))
			return nil
		})
		return err
	}, roomKey(token), partsKey(token))
	if err != nil {
		return Room{}, nil, err
	}
	return room, ps, nil
}

// removeRoom queues the deletion of a room, its participants and its index entries.
func (s *RedisStore) removeRoom(ctx context.Context, p redis.Pipeliner, r Room, ps []Participant) {
	p.Del(ctx, roomKey(r.Token), partsKey(r.Token))
	delParts(ctx, p, r.Token, ps)
	p.ZRem(ctx, redisRoomsIndex, r.Token)
	p.ZRem(ctx, ownerKey(r.OwnerID), r.Token)
}

// rooms reads the live rooms among tokens.
func (s *RedisStore) rooms(ctx context.Context, tokens []string, now time.Time) ([]Room, error) {
	if len(tokens) == 0 {
		return nil, nil
	}
	keys := make([]string, len(tokens))
	for i, t := range tokens {
		keys[i] = roomKey(t)
	}
	vals, err := s.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Room, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		r, err := decodeRoom(str)
		if err != nil {
			return nil, err
		}
		if !r.Expired(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

// OwnerRooms implements [Store].
func (s *RedisStore) OwnerRooms(ctx context.Context, owner string, now time.Time) ([]Room, error) {
	toks, err := s.c.ZRangeByScore(ctx, ownerKey(owner), &redis.ZRangeBy{Min: "(" + strconv.FormatInt(ms(now), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	return s.rooms(ctx, toks, now)
}

// AllRooms implements [Store].
func (s *RedisStore) AllRooms(ctx context.Context, now time.Time) ([]Room, error) {
	toks, err := s.c.ZRangeByScore(ctx, redisRoomsIndex, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(ms(now), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	return s.rooms(ctx, toks, now)
}

// Tombstones implements [Store].
func (s *RedisStore) Tombstones(ctx context.Context, owner string, now time.Time) ([]Tombstone, error) {
	members, err := s.c.ZRangeByScore(ctx, tombsKey(owner), &redis.ZRangeBy{Min: "(" + strconv.FormatInt(ms(now), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Tombstone, 0, len(members))
	for _, m := range members {
		tok, at, _ := strings.Cut(m, " ")
		n, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("rooms: corrupt tombstone %q", m)
		}
		out = append(out, Tombstone{Token: tok, DeletedAt: n})
	}
	return out, nil
}

// Join implements [Store].
func (s *RedisStore) Join(ctx context.Context, token string, now time.Time, decide func(*Room, []Participant) (Participant, error)) (Room, *Participant, error) {
	var out Room
	var prev *Participant
	err := s.watch(ctx, func(tx *redis.Tx) error {
		prev = nil
		r, err := getRoom(ctx, tx, token, now)
		if err != nil {
			return err
		}
		all, err := readParts(ctx, tx, token)
		if err != nil {
			return err
		}
		c := r
		p, err := decide(&c, liveOnly(all, now))
		if err != nil {
			return err
		}
		c.Token, c.OwnerID = r.Token, r.OwnerID
		for i := range all {
			if all[i].ID == p.ID {
				cp := all[i]
				prev = &cp
			}
		}
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			// The room record is written on every join: it is watched by every other join,
			// so concurrent joins on any node are serialised. The set is written first so
			// that putRoom gives it the room's expiry.
			pl.SAdd(ctx, partsKey(token), p.ID)
			s.putRoom(ctx, pl, c, now)
			s.putPart(ctx, pl, token, p, prev, now)
			return nil
		})
		out = c
		return err
	}, roomKey(token), partsKey(token))
	if err != nil {
		return Room{}, nil, err
	}
	return out, prev, nil
}

// Participants implements [Store].
func (s *RedisStore) Participants(ctx context.Context, token string, now time.Time) ([]Participant, error) {
	if _, err := getRoom(ctx, s.c, token, now); err != nil {
		return nil, err
	}
	all, err := readParts(ctx, s.c, token)
	if err != nil {
		return nil, err
	}
	return liveOnly(all, now), nil
}

// part reads a live participant of a live room (one round trip).
func (s *RedisStore) part(ctx context.Context, c redis.Cmdable, token, id string, now time.Time) (Participant, error) {
	p, _, err := s.partRaw(ctx, c, token, id, now)
	return p, err
}

// partRaw is part that also returns the record as stored.
func (s *RedisStore) partRaw(ctx context.Context, c redis.Cmdable, token, id string, now time.Time) (Participant, string, error) {
	vals, err := c.MGet(ctx, roomKey(token), partKey(token, id)).Result()
	if err != nil {
		return Participant{}, "", err
	}
	rv, ok := vals[0].(string)
	if !ok {
		return Participant{}, "", ErrNotFound
	}
	r, err := decodeRoom(rv)
	if err != nil {
		return Participant{}, "", err
	}
	pv, ok := vals[1].(string)
	if !ok || r.Expired(now) {
		return Participant{}, "", ErrNotFound
	}
	p, err := decodePart(pv)
	if err != nil {
		return Participant{}, "", err
	}
	if p.Expired(now) {
		return Participant{}, "", ErrNotFound
	}
	return p, pv, nil
}

// Participant implements [Store].
func (s *RedisStore) Participant(ctx context.Context, token, id string, now time.Time) (Participant, error) {
	return s.part(ctx, s.c, token, id, now)
}

// casPartScript replaces a participant record if it is still the one read and its room still
// exists, and moves its state index entry. KEYS: record, room, old state index, new state index.
// ARGV: record as read, new record, ttl (ms), index member, new deadline (ms).
var casPartScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if KEYS[3] ~= KEYS[4] then redis.call('ZREM', KEYS[3], ARGV[4]) end
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
return 1`)

// UpdateParticipant implements [Store]: read, apply fn, then compare-and-set in one script (two
// round trips), retried when another node changed the record meanwhile. Being a write to the
// record, it also fails a concurrent join's transaction, which then re-reads.
func (s *RedisStore) UpdateParticipant(ctx context.Context, token, id string, now time.Time, fn func(*Participant) error) (Participant, error) {
	for range redisTxRetries {
		p, raw, err := s.partRaw(ctx, s.c, token, id, now)
		if err != nil {
			return Participant{}, err
		}
		c := p
		if err := fn(&c); err != nil {
			return Participant{}, err
		}
		c.ID = p.ID
		ok, err := casPartScript.Run(ctx, s.c,
			[]string{partKey(token, id), roomKey(token), stateKey(stateLabel(p.Status)), stateKey(stateLabel(c.Status))},
			raw, encodePart(c), s.ttl(c.ExpiresAt, now).Milliseconds(), stateMember(token, id), ms(c.ExpiresAt)).Int()
		if err != nil {
			return Participant{}, err
		}
		if ok == 1 {
			return c, nil
		}
	}
	return Participant{}, ErrConflict
}

// DeleteParticipant implements [Store].
func (s *RedisStore) DeleteParticipant(ctx context.Context, token, id string, now time.Time) (Participant, error) {
	var out Participant
	err := s.watch(ctx, func(tx *redis.Tx) error {
		p, err := s.part(ctx, tx, token, id, now)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			delParts(ctx, pl, token, []Participant{p})
			pl.SRem(ctx, partsKey(token), id)
			return nil
		})
		out = p
		return err
	}, roomKey(token), partKey(token, id))
	return out, err
}

// putHawkScript stores a Hawk session unless the cap is reached.
// KEYS: session key, sessions index. ARGV: id hash, value, now, until (ms), ttl (ms), max.
var putHawkScript = redis.NewScript(`
local max = tonumber(ARGV[6])
if max > 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[3], '+inf') >= max then return 0 end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1`)

// PutHawkSession implements [Store].
func (s *RedisStore) PutHawkSession(ctx context.Context, idHash, key string, now, until time.Time, max int) error {
	n, err := putHawkScript.Run(ctx, s.c, []string{redisHawkPrefix + idHash, redisHawkIndex}, idHash,
		strconv.FormatInt(ms(until), 10)+" "+key, ms(now), ms(until), until.Sub(now).Milliseconds(), max).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLimit
	}
	return nil
}

// hawkScript returns a live session's key and extends it.
// KEYS: session key, sessions index. ARGV: id hash, now, until (ms), ttl (ms).
var hawkScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local sp = string.find(v, ' ', 1, true)
if not sp or tonumber(string.sub(v, 1, sp - 1)) <= tonumber(ARGV[2]) then return false end
local key = string.sub(v, sp + 1)
redis.call('SET', KEYS[1], ARGV[3] .. ' ' .. key, 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return key`)

// HawkSession implements [Store].
func (s *RedisStore) HawkSession(ctx context.Context, idHash string, now, until time.Time) (string, error) {
	key, err := hawkScript.Run(ctx, s.c, []string{redisHawkPrefix + idHash, redisHawkIndex}, idHash, ms(now), ms(until),
		max(until.Sub(now).Milliseconds(), 1)).Text()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	return key, err
}

// nonceScript records a nonce unless it is live. KEYS: nonce key. ARGV: now, until, ttl (ms).
var nonceScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

// UseNonce implements [Store].
func (s *RedisStore) UseNonce(ctx context.Context, nonce string, now, until time.Time) (bool, error) {
	n, err := nonceScript.Run(ctx, s.c, []string{redisNoncePrefix + nonce}, ms(now), ms(until), max(until.Sub(now).Milliseconds(), 1)).Int()
	return n == 1, err
}

// Sweep implements [Store]: it takes the rooms and participants whose deadline has passed from
// the deadline indexes and deletes each in a transaction, so that exactly one node reports each
// expiry however many sweep at once. Records already deleted by Redis (every node down for
// longer than the grace) leave only their index entries, which are dropped.
func (s *RedisStore) Sweep(ctx context.Context, now time.Time) (Expired, error) {
	var out Expired
	nowS := strconv.FormatInt(ms(now), 10)
	for {
		toks, err := s.c.ZRangeByScore(ctx, redisRoomsIndex, &redis.ZRangeBy{Min: "-inf", Max: nowS, Count: redisSweepBatch}).Result()
		if err != nil {
			return out, err
		}
		for _, tok := range toks {
			e, ok, err := s.expireRoom(ctx, tok, now)
			if err != nil {
				return out, err
			}
			if ok {
				out.Rooms = append(out.Rooms, e)
			}
		}
		if len(toks) < redisSweepBatch {
			break
		}
	}
	for _, label := range stateLabels() {
		for {
			members, err := s.c.ZRangeByScore(ctx, stateKey(label), &redis.ZRangeBy{Min: "-inf", Max: nowS, Count: redisSweepBatch}).Result()
			if err != nil {
				return out, err
			}
			for _, m := range members {
				e, ok, err := s.expirePart(ctx, label, m, now)
				if err != nil {
					return out, err
				}
				if ok {
					out.Participants = append(out.Participants, e)
				}
			}
			if len(members) < redisSweepBatch {
				break
			}
		}
	}
	if err := s.c.ZRemRangeByScore(ctx, redisHawkIndex, "-inf", nowS).Err(); err != nil {
		return out, err
	}
	return out, nil
}

func (s *RedisStore) expireRoom(ctx context.Context, tok string, now time.Time) (ExpiredRoom, bool, error) {
	var e ExpiredRoom
	var done bool
	err := s.watch(ctx, func(tx *redis.Tx) error {
		done = false
		v, err := tx.Get(ctx, roomKey(tok)).Result()
		if errors.Is(err, redis.Nil) { // deleted meanwhile, or by Redis
			return tx.ZRem(ctx, redisRoomsIndex, tok).Err()
		}
		if err != nil {
			return err
		}
		r, err := decodeRoom(v)
		if err != nil {
			return err
		}
		if !r.Expired(now) { // a stale index entry: put the room's deadline back
			return tx.ZAdd(ctx, redisRoomsIndex, redis.Z{Score: float64(ms(roomDeadline(r))), Member: tok}).Err()
		}
		ps, err := readParts(ctx, tx, tok)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			s.removeRoom(ctx, p, r, ps)
			return nil
		})
		e, done = ExpiredRoom{Room: r, Participants: ps}, err == nil
		return err
	}, roomKey(tok), partsKey(tok))
	return e, done, err
}

func (s *RedisStore) expirePart(ctx context.Context, label, member string, now time.Time) (ExpiredParticipant, bool, error) {
	tok, id, _ := strings.Cut(member, " ")
	var e ExpiredParticipant
	var done bool
	err := s.watch(ctx, func(tx *redis.Tx) error {
		done = false
		v, err := tx.Get(ctx, partKey(tok, id)).Result()
		if errors.Is(err, redis.Nil) {
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.ZRem(ctx, stateKey(label), member)
				p.SRem(ctx, partsKey(tok), id)
				return nil
			})
			return err
		}
		if err != nil {
			return err
		}
		p, err := decodePart(v)
		if err != nil {
			return err
		}
		switch {
		case stateLabel(p.Status) != label: // a stale index entry
			return tx.ZRem(ctx, stateKey(label), member).Err()
		case !p.Expired(now):
			return tx.ZAdd(ctx, stateKey(label), redis.Z{Score: float64(ms(p.ExpiresAt)), Member: member}).Err()
		}
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			delParts(ctx, pl, tok, []Participant{p})
			pl.SRem(ctx, partsKey(tok), id)
			return nil
		})
		e, done = ExpiredParticipant{Token: tok, Participant: p}, err == nil
		return err
	}, partKey(tok, id))
	return e, done, err
}

// Counts implements [Store]: from the deadline indexes, so every node reports the cluster's
// figures.
func (s *RedisStore) Counts(ctx context.Context, now time.Time) (Counts, error) {
	from := "(" + strconv.FormatInt(ms(now), 10)
	labels := stateLabels()
	cmds := make([]*redis.IntCmd, len(labels))
	var rooms *redis.IntCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		rooms = p.ZCount(ctx, redisRoomsIndex, from, "+inf")
		for i, l := range labels {
			cmds[i] = p.ZCount(ctx, stateKey(l), from, "+inf")
		}
		return nil
	})
	if err != nil {
		return Counts{}, err
	}
	c := Counts{Rooms: int(rooms.Val()), Participants: make(map[string]int, len(labels))}
	for i, l := range labels {
		c.Participants[l] = int(cmds[i].Val())
	}
	return c, nil
}

var _ Store = (*RedisStore)(nil)

// limitScript is the generic cell rate algorithm of [TokenBucket] on one key: KEYS[1] holds the
// key's theoretical arrival time (ms) and expires when its bucket is full again.
// ARGV: now, interval, tolerance (ms). Returns 0 (allowed, one token taken) or the wait (ms).
var limitScript = redis.NewScript(`
local now, interval, tol = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - tol
if wait > 0 then return wait end
tat = tat + interval
redis.call('SET', KEYS[1], tat, 'PX', tat - now)
return 0`)

// RedisLimiter is the [Limiter] shared by every node on one Redis: the algorithm of
// [TokenBucket] in a Lua script, one key per limited source or identity
// (teragate:rooms:limit:<name>:<key>) that expires when its bucket is full again.
type RedisLimiter struct {
	c         redis.UniversalClient
	prefix    string
	interval  time.Duration
	tolerance time.Duration
}

// Limiter returns a limiter on the store's Redis named name, allowing burst requests at once per
// key and one more every interval. [New] uses it for the rate limits when the store is a
// RedisStore, so the limits hold for the whole cluster.
func (s *RedisStore) Limiter(name string, burst int, interval time.Duration) Limiter {
	burst = max(burst, 1)
	return &RedisLimiter{c: s.c, prefix: RedisPrefix + "limit:" + name + ":", interval: interval,
		tolerance: time.Duration(burst-1) * interval}
}

// Allow implements [Limiter].
func (l *RedisLimiter) Allow(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	wait, err := limitScript.Run(ctx, l.c, []string{l.prefix + key}, ms(now), l.interval.Milliseconds(), l.tolerance.Milliseconds()).Int64()
	if err != nil {
		return 0, err
	}
	return time.Duration(wait) * time.Millisecond, nil
}

var _ Limiter = (*RedisLimiter)(nil)
