package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/directory"
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
	lock    *lockout
	blocked func(directory.Kind, string) bool
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
			jwt.WithIssuer(Issuer), // OpenTera's tokens and ours say "TeraServer"
			jwt.WithTimeFunc(cfg.Now),
		),
		revoked: o.revocations,
		blocked: o.blocked,
		lock:    newLockout(cfg.MaxFailedAttempts, cfg.LockoutDuration),
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
//
// It returns [ErrUnknownUser] or [ErrWrongPassword] (both match [ErrBadCredentials]) for bad
// credentials, a [*LockedError] (matching [ErrLocked]) while the account is locked, and
// [ErrDisabled] when the password is right but the account is disabled.
//
// Guesses are throttled per account and source address (the ctx's [WithSource]): MaxFailedAttempts
// wrong passwords from one source within LockoutDuration lock that source out of the account for
// LockoutDuration, doubled for each further lock in a row (up to 32 times); a success clears the
// count. An unknown username is throttled the same way. Concurrent attempts beyond the budget wait
// for a slot rather than fail, so a right password is never refused because other attempts are in
// flight.
//
// # Notes
//
// An unknown username costs a bcrypt comparison too, so response time does not reveal which
// usernames exist; a disabled account is only reported to a caller who knows its password.
// Password blocks for the bcrypt comparison (tens of milliseconds) and cannot be interrupted; ctx
// is checked before it starts.
func (a *Authenticator) Password(ctx context.Context, kind directory.Kind, username, password string) (Principal, error) {
	if err := ctx.Err(); err != nil {
		return Principal{}, err
	}
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
	default:
		return Principal{}, fmt.Errorf("%w: no password login for %s", ErrKind, kind)
	}
	// The throttle key: the account (or, for an unknown name, the name) and the source. Unknown
	// names are throttled and answered like known ones.
	known := found && username != "" && hash != ""
	id := kind.String() + ":" + uuid
	if !known {
		id = kind.String() + ":?" + username
	}
	id += "|" + sourceOf(ctx)
	if err := a.lock.begin(ctx, id, a.now); err != nil {
		a.logger.Debug("login refused", "kind", kind, "username", username, "reason", "throttled", "error", err)
		return Principal{}, err
	}
	var ok bool
	if known {
		ok = CheckPassword(hash, password)
	} else {
		CheckPassword(dummyHash, password) // same cost as a real check
	}
	if until, locked := a.lock.end(id, ok, a.now()); locked {
		a.logger.Warn("login throttled after too many failed passwords", "kind", kind, "username", username, "source", sourceOf(ctx), "until", until)
	}
	if !known {
		a.logger.Debug("login failed", "kind", kind, "reason", "unknown user")
		if found {
			return Principal{}, ErrWrongPassword // a participant without a password
		}
		return Principal{}, ErrUnknownUser
	}
	if !ok {
		a.logger.Debug("login failed", "kind", kind, "uuid", uuid, "reason", "wrong password")
		return Principal{}, ErrWrongPassword
	}
	if !enabled {
		a.logger.Debug("login refused", "kind", kind, "uuid", uuid, "reason", "disabled")
		return Principal{}, ErrDisabled
	}
	return a.gate(Principal{Kind: kind, UUID: uuid, Admin: admin}, nil)
}

// gate refuses, as disabled, a principal the blocklist names ([WithBlocklist]).
func (a *Authenticator) gate(p Principal, err error) (Principal, error) {
	if err == nil && a.blocked != nil && a.blocked(p.Kind, p.UUID) {
		a.logger.Debug("login refused", "kind", p.Kind, "uuid", p.UUID, "reason", "blocked")
		return Principal{}, ErrDisabled
	}
	return p, err
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
