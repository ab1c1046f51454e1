// Package rooms is teragate's implementation of Mozilla Loop's rooms API
// (docs/loop-rooms.md) and of the room session state that Loop clients report.
//
// # What it serves
//
//	POST   /rooms                 create (Hawk or teragate token)
//	GET    /rooms[?version=N]     list the caller's rooms, with tombstones since N
//	PATCH  /rooms                 bulk delete {deleteRoomTokens: [...]}
//	GET    /rooms/{token}         public view (anonymous) or full view (participant/owner)
//	PATCH  /rooms/{token}         update (owner)
//	DELETE /rooms/{token}         delete (owner)
//	POST   /rooms/{token}         actions join, refresh, status, leave, logDomain
//	POST   /registration          Hawk session creation (Hawk-Session-Token header)
//	GET    /api/admin/rooms       every room with its session state (admin principals)
//
// Every route is also mounted under /v1. Status codes, errno values and messages are Loop's
// (see errors.go); 200 and 401 answers carry a Timestamp header, 429 and 503 a Retry-After.
//
// # Authentication
//
//   - Basic with the sessionToken returned by join as user id and an empty password
//     (link-clickers). Only a keyed hash of the token is stored, on the participant record, so it
//     shares the participant's TTL: refresh extends it, leave and expiry delete it.
//   - Hawk (RFC-style header MAC, HMAC-SHA256) for registered clients. Credentials come from
//     POST /registration: the Hawk-Session-Token header is 32 random bytes in hex, from which the
//     client derives the Hawk id and key with HKDF-SHA256 (info
//     "identity.mozilla.com/picl/v1/sessionToken", 64 bytes: id = hex of the first half, key =
//     hex of the second half, used as the HMAC key string). Timestamps outside the skew window and
//     replayed nonces are rejected.
//   - teragate tokens ("Authorization: OpenTera <token>" or "Bearer <token>") of directory users,
//     participants, devices and services. Such a principal can own rooms and join them; a user,
//     participant or device that joins becomes busy in presence.
//
// # Presence
//
// Each room has a session uuid (returned as sessionId by join). When a directory principal joins,
// a JoinSessionEvent for that uuid is sent to the user manager
// (module.TeraServer.UserManagerModule.messages) and directly to the joiner's websocket topic;
// leave and participant expiry send a LeaveSessionEvent; deleting (or expiry of) a room that had
// directory participants sends a StopSessionEvent.
//
// # Differences from the final Loop server (deliberate)
//
//   - No TokBox: apiKey is configured, sessionId is the room's session uuid, sessionToken is a
//     random bearer secret.
//   - Known quirks fixed: malformed JSON gets errno 106 (Loop referenced an undefined errno); a
//     non-numeric maxSize is rejected; PATCH without expiresIn keeps the room's lifetime; the 401
//     for a missing credential advertises "Basic,Hawk" (Loop said "Token,Hawk").
//   - Status updates are kept: each participant's last state, event and counters are stored,
//     aggregated per room, shown to the owner (sessionState in the room info) and to admins, and
//     counted in metrics. Strict mode (off by default) enforces the session state machine (docs/loop-rooms.md).
//   - Oversized fields (displayName, event, state, domains) are rejected with errno 107 and a
//     body above the size limit with 413 errno 113.
//
// # Limits
//
// Loop left rate limiting to a front proxy (Videur, driven by /api-specs) and capped nothing; an
// anonymous client could fill memory with sessions and rooms. teragate limits in the service:
//
//   - POST /registration creating a session: a token bucket per source address (the TCP peer,
//     IPv6 per /64; forwarding headers are not trusted), default 20 then one every 3 s.
//   - Every authenticated request: a token bucket per identity (Hawk session, teragate
//     principal, link-clicker session), default 60 then one a second; anonymous joins draw on
//     their source address's bucket. For Hawk the check precedes recording the nonce, so a
//     refused flood stores nothing.
//   - Over a rate: 429 errno 123 "Too many requests." with Retry-After the seconds until the
//     next token (rounded up).
//   - Rooms per owner (default 1000 live rooms): 403 errno 205; nothing is stored.
//   - Live Hawk sessions (default 200,000): 503 errno 206 with Retry-After; no session is
//     evicted. A session never used after registration may be given a shorter lifetime
//     (Config.HawkUnusedSessionTTL; Loop's full lifetime by default).
//
// Errno 123, 205 and 206 are teragate's, chosen outside Loop's table. Refusals are counted in
// teragate_rooms_refused_total{reason}. The limiters sit behind [Limiter]: the in-memory
// [TokenBucket] on a single node, the [RedisLimiter] shared by every node with the Redis store.
//
// # Storage
//
// [MemoryStore] is the single-node default: one mutex, lazy expiry on reads, deletion by the
// sweep; rooms are lost when the process stops. [RedisStore] (the gateway uses it with --redis)
// keeps everything in Redis, so that every node behind a load balancer serves every room and a
// restart of every node loses nothing. Key layout (P = "teragate:rooms:"; deadlines and scores
// in Unix milliseconds):
//
//	P room:<token>             string  room record (JSON)                  expires at its deadline + grace
//	P parts:<token>            set     the room's participant ids          expires with the room
//	P part:<token>:<id>        string  participant record (JSON): display  expires at its deadline + grace
//	                                   name, credential kind, last status
//	P owner:<owner>            zset    room token → room deadline          expires with the owner's last room
//	P tombs:<owner>            zset    "<token> <deletedAt s>" → kept until expires with the newest tombstone
//	P hawk:<id hash>           string  "<deadline> <key>"                  expires at its deadline (sliding)
//	P nonce:<id hash>:<nonce>  string  deadline                            expires at its deadline (2 × skew)
//	P rooms                    zset    room token → room deadline          index: sweep, gauges, admin list
//	P state:<label>            zset    "<token> <id>" → participant        index: sweep, gauges by state
//	                                   deadline, per state label
//	P hawks                    zset    id hash → session deadline          index: the session cap
//	P limit:<name>:<key>       string  rate limit state (arrival time)     expires when the bucket is full
//	P secret                   string  the HMAC secret of every node       no expiry
//
// Every record key carries a Redis expiry, so Redis deletes it by itself even when no node runs.
// Reads compare the deadline stored in the record as well, so a record is invisible from its
// deadline on, to the millisecond. Room and participant keys outlive their deadline by a grace
// ([RedisStoreConfig.Grace], 1 minute by default) so that a node's sweep can still read them and
// publish the presence events of the expiry; the sweep takes the due entries of the indexes and
// deletes each record in a transaction, so exactly one node reports each expiry. The indexes
// have no expiry of their own: the sweep drops their stale entries (also those of records Redis
// deleted while every node was down), and Redis removes a sorted set or set that becomes empty.
//
// Atomicity across nodes: create (the per-owner cap), join (the capacity check against the live
// participants), update, delete and the sweep are optimistic WATCH/MULTI transactions on the
// records they read, retried on conflict; every join writes the room record, so concurrent joins
// on any nodes are serialised and a room never exceeds its capacity. Participant updates
// (status, refresh) are a compare-and-set Lua script on the record as read. The Hawk session cap,
// the sliding session lifetime and the nonce check are Lua scripts, so a nonce is accepted once in
// the whole cluster. The HMAC secret that keys session tokens and Hawk ids is created in Redis by
// the first node ([RedisStore.SharedSecret]) and read by the others. The gauges
// teragate_rooms_rooms and teragate_rooms_participants are counted from the indexes at each
// scrape, so every node reports the cluster's figures (take one node's value, do not sum); the
// counters count each node's own requests (sum them). The rate limits use [RedisLimiter] (the
// token bucket of [TokenBucket] in a Lua script, one expiring key per source or identity), so they
// too hold for the whole cluster.
//
// # Concurrency
//
// [Service] is safe for concurrent use. [MemoryStore] serialises operations on one mutex;
// compound operations (join's capacity check and insert) are atomic in the store. Expired
// records are invisible to reads as soon as their deadline passes; [Service.Sweep] (run
// periodically by [Service.Run]) deletes them and publishes the resulting presence events.
package rooms
