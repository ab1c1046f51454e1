package rooms

import (
	"context"
	"crypto/rand"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/teragate/teragate/gateway/internal/auth"
)

// Config configures a [Service]. The zero value of every field means its documented default,
// which is Loop's (loop-server config.js).
type Config struct {
	// DefaultTTL is a room's lifetime when expiresIn is omitted. Default 1344h (8 weeks).
	DefaultTTL time.Duration
	// MaxTTL is the largest accepted expiresIn. Default 1344h.
	MaxTTL time.Duration
	// ExtendTTL is the lifetime a room gets again on every join, leave and participant expiry.
	// Default 1344h.
	ExtendTTL time.Duration
	// ParticipantTTL is how long a participant (and a link-clicker's Basic credential) lives
	// without refresh; returned as expires (seconds). Default 5m.
	ParticipantTTL time.Duration
	// DeletedTTL is how long a deletion tombstone is kept for GET /rooms?version=. Default 27m.
	DeletedTTL time.Duration
	// MaxSize caps a room's maxSize. Default 5.
	MaxSize int
	// MaxRoomNameSize bounds roomName (characters). Default 100.
	MaxRoomNameSize int
	// MaxRoomOwnerSize bounds roomOwner (characters). Default 255.
	MaxRoomOwnerSize int
	// MaxDisplayNameSize bounds a joiner's displayName (characters). Default 255.
	MaxDisplayNameSize int
	// MaxFieldSize bounds the status fields event and state and logDomain's domain. Default 128.
	MaxFieldSize int
	// MaxDomains bounds the length of logDomain's domains list. Default 100.
	MaxDomains int
	// MaxBodyBytes bounds request bodies; larger ones get 413 errno 113. Default 64 KiB.
	MaxBodyBytes int64
	// TokenSize is the number of random bytes of a room token. Default 8 (11 characters).
	TokenSize int
	// WebAppURL is the roomUrl template; "{token}" is replaced by the room token.
	// Default "http://localhost:3000/{token}".
	WebAppURL string
	// APIKey is returned as apiKey by join (Loop's TokBox API key). Default "teragate".
	APIKey string
	// RetryAfter is the Retry-After of 503 answers. Default 30s.
	RetryAfter time.Duration
	// HawkSessionTTL is the sliding lifetime of a Hawk session. Default 720h (30 days).
	HawkSessionTTL time.Duration
	// HawkUnusedSessionTTL is the lifetime of a Hawk session that has not yet authenticated a
	// request; the first use extends it to HawkSessionTTL. Default HawkSessionTTL (Loop gave every
	// new session its full lifetime).
	HawkUnusedSessionTTL time.Duration
	// HawkSkew is the accepted clock difference of a Hawk timestamp. Default 60s.
	HawkSkew time.Duration
	// MaxHawkSessions caps the live Hawk sessions; POST /registration beyond it answers 503
	// errno 206 with Retry-After (no session is evicted). Default 200,000; negative means no cap.
	MaxHawkSessions int
	// MaxRoomsPerOwner caps the live rooms of one owner (Hawk session or teragate principal);
	// creating one more answers 403 errno 205. Default 1000; negative means no cap.
	MaxRoomsPerOwner int
	// RegistrationBurst and RegistrationInterval rate-limit POST /registration without
	// credentials (session creation) per source address (the TCP peer; IPv6 per /64): RegistrationBurst
	// at once, then one every RegistrationInterval; beyond that 429 errno 123 with Retry-After.
	// Defaults 20 and 3s (20 a minute); a negative burst disables the limit.
	RegistrationBurst    int
	RegistrationInterval time.Duration
	// RequestBurst and RequestInterval rate-limit every authenticated request per identity (Hawk
	// session, teragate principal, link-clicker session) and anonymous joins per source address.
	// Defaults 60 and 1s (60 a minute); a negative burst disables the limit.
	RequestBurst    int
	RequestInterval time.Duration
	// RegistrationLimiter and RequestLimiter replace the in-memory token buckets built from the
	// bursts and intervals above (a limiter shared by several nodes).
	RegistrationLimiter Limiter
	RequestLimiter      Limiter
	// Strict enforces the wiki's room session state machine on status updates. Default false
	// (the final Loop server accepts any state and event).
	Strict bool
	// SweepInterval is the period of [Service.Run]'s expiry sweep. Default ParticipantTTL/4,
	// between 10ms and 1s.
	SweepInterval time.Duration
	// Secret keys the HMACs of session tokens and Hawk ids. Empty means 32 random bytes per start.
	Secret []byte

	// Store holds rooms, participants and Hawk sessions. Nil means a new [MemoryStore].
	Store Store
	// Authenticate resolves teragate tokens; nil disables teragate token authentication.
	Authenticate func(*http.Request) (auth.Principal, error)
	// Publish puts a bus payload on a channel (presence integration); nil disables it.
	Publish func(ctx context.Context, channel string, payload []byte) error
	// Registerer receives the rooms metrics; nil means they are not registered.
	Registerer prometheus.Registerer
	// Logger is the service's logger. Nil means no logging.
	Logger hclog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	i := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	d(&c.DefaultTTL, 1344*time.Hour)
	d(&c.MaxTTL, 1344*time.Hour)
	d(&c.ExtendTTL, 1344*time.Hour)
	d(&c.ParticipantTTL, 5*time.Minute)
	d(&c.DeletedTTL, 27*time.Minute)
	d(&c.RetryAfter, 30*time.Second)
	d(&c.HawkSessionTTL, 720*time.Hour)
	d(&c.HawkUnusedSessionTTL, c.HawkSessionTTL)
	d(&c.HawkSkew, 60*time.Second)
	d(&c.RegistrationInterval, 3*time.Second)
	d(&c.RequestInterval, time.Second)
	if c.SweepInterval <= 0 {
		c.SweepInterval = min(max(c.ParticipantTTL/4, 10*time.Millisecond), time.Second)
	}
	i(&c.MaxSize, 5)
	i(&c.MaxRoomNameSize, 100)
	i(&c.MaxRoomOwnerSize, 255)
	i(&c.MaxDisplayNameSize, 255)
	i(&c.MaxFieldSize, 128)
	i(&c.MaxDomains, 100)
	i(&c.TokenSize, 8)
	if c.MaxHawkSessions == 0 {
		c.MaxHawkSessions = 200_000
	}
	if c.MaxRoomsPerOwner == 0 {
		c.MaxRoomsPerOwner = 1000
	}
	if c.RegistrationBurst == 0 {
		c.RegistrationBurst = 20
	}
	if c.RequestBurst == 0 {
		c.RequestBurst = 60
	}
	if c.RegistrationLimiter == nil && c.RegistrationBurst > 0 {
		c.RegistrationLimiter = NewTokenBucket(c.RegistrationBurst, c.RegistrationInterval, 0)
	}
	if c.RequestLimiter == nil && c.RequestBurst > 0 {
		c.RequestLimiter = NewTokenBucket(c.RequestBurst, c.RequestInterval, 0)
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.WebAppURL == "" {
		c.WebAppURL = "http://localhost:3000/{token}"
	}
	if c.APIKey == "" {
		c.APIKey = "teragate"
	}
	if len(c.Secret) == 0 {
		c.Secret = make([]byte, 32)
		_, _ = rand.Read(c.Secret)
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
