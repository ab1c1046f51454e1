package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// Principal is an authenticated entity.
type Principal struct {
	// Kind is the entity's kind.
	Kind directory.Kind
	// UUID is the entity's uuid in the directory.
	UUID string
	// Admin is true for a superadmin user or an admin service.
	Admin bool
	// TokenID identifies the JWT the principal presented or was issued (its jti, or a hash of the
	// token when it has none); empty for passwords and static tokens. [Authenticator.Revoke] uses it.
	TokenID string
	// ExpiresAt is the JWT's expiry; zero for passwords and static tokens.
	ExpiresAt time.Time
	// Limited is true for a participant that used its static token: OpenTera grants such a
	// participant limited access (no participant_token in the login reply, fewer API calls).
	Limited bool
}

// Authenticator checks credentials against a directory. Create it with [New]; it is safe for
// concurrent use.
type Authenticator struct {
	dir     *directory.Store
	now     func() time.Time
	ttl     time.Duration
	logger  hclog.Logger
	keys    [directory.KindService + 1][]byte // indexed by kind; KindService unused
	parser  *jwt.Parser
	revoked Revocations
	lock    *throttle
	blocked func(directory.Kind, string) bool
	metrics *metrics.Metrics
}

// New returns an Authenticator that checks credentials against dir's current snapshot. It fills
// zero values of cfg with defaults and validates it (errors match [ErrConfig]).
func New(cfg Config, dir *directory.Store, opts ...Option) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dir == nil {
		return nil, fmt.Errorf("%w: nil directory store", ErrConfig)
	}
	cfg = cfg.withDefaults()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	a := &Authenticator{
		dir:    dir,
		now:    cfg.Now,
		ttl:    cfg.TokenTTL,
		logger: cfg.Logger.Named("auth"),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(Issuer),
			jwt.WithTimeFunc(cfg.Now),
		),
		revoked: o.revocations,
		blocked: o.blocked,
		lock:    newThrottle(cfg.MaxFailedAttempts, cfg.LockoutDuration, cfg.MaxLockoutDuration, cfg.MaxLoginWait, cfg.Now),
		metrics: cfg.Metrics,
	}
	if a.revoked == nil {
		a.revoked = NewMemoryRevocations(cfg.Now)
	}
	key := cfg.JWTKey
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails (crypto/rand, Go ≥ 1.24)
		a.logger.Info("no JWT key configured: using a random key, tokens will not survive a restart")
	}
	pick := func(k []byte) []byte {
		if len(k) > 0 {
			return k
		}
		return key
	}
	a.keys[directory.KindUser] = pick(cfg.UserJWTKey)
	a.keys[directory.KindParticipant] = pick(cfg.ParticipantJWTKey)
	a.keys[directory.KindDevice] = pick(cfg.DeviceJWTKey)
	return a, nil
}

// Password checks a username and password for a user or a participant (other kinds get [ErrKind]).
// source is the client's address (an IP, or host:port as in http.Request.RemoteAddr): guesses are
// throttled per (kind, username, source).
//
// It returns [ErrUnknownUser] or [ErrWrongPassword] (both match [ErrBadCredentials]) for bad
// credentials, a [*LockedError] (matching [ErrLocked]) while the username is locked for this
// source, [ErrBusy] when too many attempts for the same username and source are in flight, and
// [ErrDisabled] when the password is right but the account is disabled.
//
// MaxFailedAttempts wrong passwords within LockoutDuration from one source lock that username for
// that source for LockoutDuration, even the right password; each further lock of the same pair
// lasts twice as long as the one before, up to MaxLockoutDuration. A success from the source
// clears its count. Concurrent attempts beyond the limit wait for those in flight to finish (at
// most MaxLoginWait) rather than fail, so at most MaxFailedAttempts passwords are ever checked
// between two locks and a right password is never refused because others are in flight.
//
// # Notes
//
// Unknown usernames are throttled and answered exactly as known ones (same errors once locked, a
// bcrypt comparison otherwise), so neither the answers nor their timing reveal which usernames
// exist; a disabled account is only reported to a caller who knows its password. The rightful
// owner, logging in from an address of their own, is never locked by a guesser elsewhere.
// Password blocks for the bcrypt comparison (tens of milliseconds) and cannot be interrupted; ctx
// is checked before it starts and ends a wait for a slot.
func (a *Authenticator) Password(ctx context.Context, kind directory.Kind, username, password, source string) (Principal, error) {
	if err := ctx.Err(); err != nil {
		return Principal{}, err
	}
	if kind != directory.KindUser && kind != directory.KindParticipant {
		return Principal{}, fmt.Errorf("%w: no password login for %s", ErrKind, kind)
	}
	src := sourceAddr(source)
	key := makeKey(kind, username, src)
	if err := a.lock.acquire(ctx, key); err != nil {
		if errors.Is(err, ErrLocked) {
			a.logger.Debug("login refused", "kind", kind, "source", src, "reason", "locked")
		} else if errors.Is(err, ErrBusy) {
			a.metrics.LoginThrottle(kind, metrics.ThrottleBusy)
			a.logger.Warn("login refused: too many attempts in flight", "kind", kind, "source", src)
		}
		return Principal{}, err
	}
	p, ok, err := a.checkPassword(kind, username, password)
	if until, locked := a.lock.release(key, ok); locked {
		a.metrics.LoginThrottle(kind, metrics.ThrottleLocked)
		a.logger.Warn("login locked after too many failed passwords", "kind", kind, "source", src, "until", until)
	}
	return a.gate(p, err)
}

// gate refuses, as disabled, a principal the blocklist names ([WithBlocklist]).
func (a *Authenticator) gate(p Principal, err error) (Principal, error) {
	if err == nil && a.blocked != nil && a.blocked(p.Kind, p.UUID) {
		a.logger.Debug("login refused", "kind", p.Kind, "uuid", p.UUID, "reason", "blocked")
		return Principal{}, ErrDisabled
	}
	return p, err
}

// checkPassword looks the username up in the current directory and compares the password. ok is
// true when the password was right (the account may still be disabled).
func (a *Authenticator) checkPassword(kind directory.Kind, username, password string) (p Principal, ok bool, err error) {
	snap := a.dir.Current()
	var (
		uuid, hash     string
		enabled, admin bool
		found          bool
	)
	switch kind {
	case directory.KindUser:
		if u, ok := snap.UserByUsername(username); ok {
			uuid, hash, enabled, admin, found = u.UUID, u.PasswordHash, u.Enabled, u.Superadmin, true
		}
	case directory.KindParticipant:
		if p, ok := snap.ParticipantByUsername(username); ok {
			uuid, hash, enabled, found = p.UUID, p.PasswordHash, p.Enabled, true
		}
	}
	if !found || username == "" || hash == "" {
		CheckPassword(dummyHash, password) // same cost as a real check
		a.logger.Debug("login failed", "kind", kind, "reason", "unknown user")
		if found {
			return Principal{}, false, ErrWrongPassword // a participant without a password
		}
		return Principal{}, false, ErrUnknownUser
	}
	if !CheckPassword(hash, password) {
		a.logger.Debug("login failed", "kind", kind, "uuid", uuid, "reason", "wrong password")
		return Principal{}, false, ErrWrongPassword
	}
	if !enabled {
		a.logger.Debug("login refused", "kind", kind, "uuid", uuid, "reason", "disabled")
		return Principal{}, true, ErrDisabled
	}
	return Principal{Kind: kind, UUID: uuid, Admin: admin}, true, nil
}

// Token authenticates a token presented for a known kind:
//   - participant: its static token (the Principal is Limited) or a JWT with participant_uuid;
//   - device: its static token or a JWT with device_uuid;
//   - user: a JWT with user_uuid (users have no static token);
//   - service: its static token.
//
// Errors: [ErrInvalidToken] (including a token of another kind and [ErrRevokedToken]),
// [ErrExpiredToken], [ErrDisabled], [ErrKind].
func (a *Authenticator) Token(ctx context.Context, kind directory.Kind, token string) (Principal, error) {
	return a.gate(a.token(ctx, kind, token))
}

func (a *Authenticator) token(ctx context.Context, kind directory.Kind, token string) (Principal, error) {
	if err := ctx.Err(); err != nil {
		return Principal{}, err
	}
	if token == "" {
		return Principal{}, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	snap := a.dir.Current()
	switch kind {
	case directory.KindParticipant:
		if p, ok := snap.ParticipantByToken(token); ok {
			return static(kind, p.UUID, p.Enabled, false)
		}
	case directory.KindDevice:
		if d, ok := snap.DeviceByToken(token); ok {
			return static(kind, d.UUID, d.Enabled, false)
		}
	case directory.KindService:
		if s, ok := snap.ServiceByToken(token); ok {
			return static(kind, s.UUID, true, s.Admin)
		}
		return Principal{}, ErrInvalidToken
	case directory.KindUser:
	default:
		return Principal{}, fmt.Errorf("%w: %s", ErrKind, kind)
	}
	p, err := a.verifyJWT(ctx, snap, token)
	if err != nil {
		return Principal{}, err
	}
	if p.Kind != kind {
		return Principal{}, fmt.Errorf("%w: a %s token presented as %s", ErrInvalidToken, p.Kind, kind)
	}
	return p, nil
}

// Any authenticates a token of any kind: a static service, device or participant token, or a JWT
// whose claims say which kind it is. It is meant for endpoints that services and clients both call
// (POST /api/events, RPC). Errors as [Authenticator.Token].
func (a *Authenticator) Any(ctx context.Context, token string) (Principal, error) {
	return a.gate(a.anyToken(ctx, token))
}

func (a *Authenticator) anyToken(ctx context.Context, token string) (Principal, error) {
	if err := ctx.Err(); err != nil {
		return Principal{}, err
	}
	if token == "" {
		return Principal{}, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	snap := a.dir.Current()
	if kind, uuid, ok := snap.ByToken(token); ok {
		switch kind {
		case directory.KindService:
			s, _ := snap.Service(uuid)
			return static(kind, uuid, true, s.Admin)
		case directory.KindDevice:
			return static(kind, uuid, snap.Enabled(kind, uuid), false)
		case directory.KindParticipant:
			return static(kind, uuid, snap.Enabled(kind, uuid), false)
		}
	}
	return a.verifyJWT(ctx, snap, token)
}

// static builds the Principal of a static token.
func static(kind directory.Kind, uuid string, enabled, admin bool) (Principal, error) {
	if !enabled {
		return Principal{}, ErrDisabled
	}
	return Principal{Kind: kind, UUID: uuid, Admin: admin, Limited: kind == directory.KindParticipant}, nil
}

// Revoke makes the principal's JWT unusable until it expires (logout; OpenTera #212). It does
// nothing for a principal without a TokenID (password logins, static tokens). When ExpiresAt is
// zero the id is kept for the token TTL.
func (a *Authenticator) Revoke(ctx context.Context, p Principal) error {
	if p.TokenID == "" {
		return nil
	}
	until := p.ExpiresAt
	if until.IsZero() {
		until = a.now().Add(a.ttl)
	}
	if err := a.revoked.Revoke(ctx, p.TokenID, until); err != nil {
		return fmt.Errorf("auth: revoke: %w", err)
	}
	return nil
}
