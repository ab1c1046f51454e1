// Package auth authenticates teragate's clients: password logins for users and participants,
// static and JWT tokens for every kind, token issue and revocation, a throttle on password guessing, and the
// one-time tickets that open websockets.
//
// # Responsibility
//
// [Authenticator] turns credentials into a [Principal] (kind, uuid, admin flag, token id) by
// checking them against the current [directory.Snapshot] of a [directory.Store]:
//   - [Authenticator.Password]: username and password (bcrypt) for users and participants,
//     throttled per (username, source address): 5 wrong passwords lock that pair for 120 s as
//     OpenTera locks the account, each further lock twice as long (up to 1 h), while the owner
//     logging in from elsewhere is not locked out;
//   - [Authenticator.Token]: a token presented for a known kind (static participant, device or
//     service token, or a JWT);
//   - [Authenticator.Any]: a token of any kind, for service calls (POST /api/events, RPC);
//   - [Authenticator.IssueToken] and [Authenticator.Revoke]: OpenTera-compatible HS256 JWTs
//     (claims iat, exp, iss "TeraServer", jti, user_uuid / participant_uuid / device_uuid), and
//     logout that really invalidates them (OpenTera #212). Verification requires iss "TeraServer"
//     (what OpenTera sets on every user, participant and device token) and numeric exp, nbf and iat.
//
// [Tickets] issues and redeems the random, single-use, short-lived tickets that the login reply puts
// in the websocket URL (wss://host/wss/<kind>?id=<ticket>); [MemoryTickets] is the in-process
// implementation. [HashPassword] and [CheckPassword] wrap bcrypt.
//
// The package does not speak HTTP, does not know about connections or presence, and does not decide
// what an authenticated principal may see (that is [directory.Access]).
//
// # Errors
//
// Callers should answer every error matching [ErrBadCredentials] the same way (HTTP 401) so as not to
// reveal which usernames exist; the finer reasons ([ErrUnknownUser], [ErrWrongPassword]) are for
// logs and LoginEvents. An unknown username costs one bcrypt comparison like a known one and is
// throttled like a known one, so neither timing nor a lock reveals it. [ErrLocked] (a
// [*LockedError] with the lock's end) and [ErrBusy] say nothing about the credentials.
//
// # Concurrency
//
// An [Authenticator] and a [MemoryTickets] are safe for concurrent use. Authentication reads the
// directory snapshot once per call, so a directory reload takes effect for the next call: tokens of
// entities that were removed or disabled stop working at once. Throttle counters, revoked token ids
// and tickets live in memory in this process; the [Revocations] and [Tickets] interfaces are the
// seams for shared (Redis) implementations.
package auth
