package auth

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
)

// Defaults, as OpenTera.
const (
	// DefaultTokenTTL is the lifetime of issued JWTs (OpenTera: 1 h).
	DefaultTokenTTL = time.Hour
	// DefaultMaxFailedAttempts is how many failed passwords lock an account (OpenTera: 5).
	DefaultMaxFailedAttempts = 5
	// DefaultLockoutDuration is the failure window and the duration of a first lock (OpenTera: 120 s).
	DefaultLockoutDuration = 120 * time.Second
	// DefaultMaxLockoutDuration caps the doubling of repeated locks.
	DefaultMaxLockoutDuration = time.Hour
	// DefaultMaxLoginWait is how long a login waits for attempts in flight to finish.
	DefaultMaxLoginWait = 10 * time.Second
	// DefaultTicketTTL is the lifetime of a websocket ticket (OpenTera: 60 s).
	DefaultTicketTTL = 60 * time.Second
	// MinKeyLen is the shortest HMAC key [New] accepts, in bytes.
	MinKeyLen = 16
	// Issuer is the iss claim of issued tokens, as OpenTera's.
	Issuer = "TeraServer"
)

// Config configures an [Authenticator]. The zero value is usable: it generates a random signing key
// and uses OpenTera's defaults.
type Config struct {
	// JWTKey is the HS256 key used to sign and verify JWTs. Share it with an OpenTera server (its
	// UserTokenAPIKey) to accept that server's tokens. Zero value: a random 32-byte key is generated
	// at [New], so tokens do not survive a restart. At least [MinKeyLen] bytes when set.
	JWTKey []byte
	// UserJWTKey, ParticipantJWTKey and DeviceJWTKey override JWTKey for the tokens of one kind, as
	// OpenTera keeps separate UserTokenAPIKey, ParticipantTokenAPIKey and DeviceTokenAPIKey. Zero
	// value means JWTKey.
	UserJWTKey, ParticipantJWTKey, DeviceJWTKey []byte
	// TokenTTL is the lifetime of the JWTs that [Authenticator.IssueToken] signs. Zero value means
	// [DefaultTokenTTL].
	TokenTTL time.Duration
	// MaxFailedAttempts is the number of wrong passwords for one username from one source address,
	// within LockoutDuration, that locks that username for that address. Zero value means
	// [DefaultMaxFailedAttempts]; a negative value disables the throttle.
	MaxFailedAttempts int
	// LockoutDuration is both the window in which failures are counted and how long a first lock
	// lasts; each further lock of the same username and address lasts twice as long as the one
	// before. Zero value means [DefaultLockoutDuration].
	LockoutDuration time.Duration
	// MaxLockoutDuration caps the doubling; a username and address that stay quiet this long after
	// a lock start over at LockoutDuration. Zero value means the larger of
	// [DefaultMaxLockoutDuration] and LockoutDuration; when set it must be at least LockoutDuration.
	MaxLockoutDuration time.Duration
	// MaxLoginWait bounds how long a password login waits for a slot while MaxFailedAttempts
	// attempts for the same username and address are being checked; after it the login fails with
	// [ErrBusy]. Zero value means [DefaultMaxLoginWait].
	MaxLoginWait time.Duration
	// Metrics counts locks and logins that gave up waiting. Zero value means a private set.
	Metrics *metrics.Metrics
	// Now returns the current time; tests inject a fake clock. Zero value means time.Now.
	Now func() time.Time
	// Logger receives failed logins (debug), lockouts (warn) and setup notes (info). Zero value
	// means no logging.
	Logger hclog.Logger
}

// withDefaults returns cfg with zero values replaced by defaults.
func (cfg Config) withDefaults() Config {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.MaxFailedAttempts == 0 {
		cfg.MaxFailedAttempts = DefaultMaxFailedAttempts
	}
	if cfg.LockoutDuration == 0 {
		cfg.LockoutDuration = DefaultLockoutDuration
	}
	if cfg.MaxLockoutDuration == 0 {
		cfg.MaxLockoutDuration = max(DefaultMaxLockoutDuration, cfg.LockoutDuration)
	}
	if cfg.MaxLoginWait == 0 {
		cfg.MaxLoginWait = DefaultMaxLoginWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return cfg
}

// Validate reports the first problem with cfg, wrapped in [ErrConfig]. Zero values are valid.
func (cfg Config) Validate() error {
	for _, k := range []struct {
		name string
		key  []byte
	}{{"jwt_key", cfg.JWTKey}, {"user_jwt_key", cfg.UserJWTKey}, {"participant_jwt_key", cfg.ParticipantJWTKey}, {"device_jwt_key", cfg.DeviceJWTKey}} {
		if len(k.key) > 0 && len(k.key) < MinKeyLen {
			return fmt.Errorf("%w: %s is %d bytes, need at least %d", ErrConfig, k.name, len(k.key), MinKeyLen)
		}
	}
	if cfg.TokenTTL < 0 {
		return fmt.Errorf("%w: negative token ttl", ErrConfig)
	}
	if cfg.LockoutDuration < 0 {
		return fmt.Errorf("%w: negative lockout duration", ErrConfig)
	}
	if cfg.MaxLockoutDuration < 0 {
		return fmt.Errorf("%w: negative max lockout duration", ErrConfig)
	}
	lock := cfg.LockoutDuration
	if lock == 0 {
		lock = DefaultLockoutDuration
	}
	if cfg.MaxLockoutDuration > 0 && cfg.MaxLockoutDuration < lock {
		return fmt.Errorf("%w: max lockout duration %s is shorter than the lockout duration", ErrConfig, cfg.MaxLockoutDuration)
	}
	if cfg.MaxLoginWait < 0 {
		return fmt.Errorf("%w: negative max login wait", ErrConfig)
	}
	return nil
}

// Option is a programmatic knob for [New].
type Option func(*options)

type options struct {
	revocations Revocations
	blocked     func(directory.Kind, string) bool
}

// WithBlocklist makes every login, token and issued token of an entity for which blocked reports
// true fail with [ErrDisabled], whatever the directory says: the gateway blocks an entity that
// OpenTera's database disabled or deleted until it is re-enabled.
func WithBlocklist(blocked func(kind directory.Kind, uuid string) bool) Option {
	return func(o *options) { o.blocked = blocked }
}

// WithRevocations stores revoked token ids in r instead of in process memory (for example in Redis,
// so that a logout on one node is honoured by all).
func WithRevocations(r Revocations) Option {
	return func(o *options) { o.revocations = r }
}
