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
	// RegistrationLimiter and RequestLimiter replace the limiters built from the bursts and
	// intervals above: in-memory token buckets, or with a [RedisStore] its [RedisLimiter]s,
	// shared by every node.
	RegistrationLimiter Limiter
	RequestLimiter      Limiter
	// Strict enforces the wiki's room session state machine on status updates. Default false
	// (the final Loop server accepts any state and event).
	Strict bool
	// SweepInterval is the period of [Service.Run]'s expiry sweep. Default ParticipantTTL/4,
	// between 10ms and 1s, and at most a quarter of a [RedisStore]'s grace.
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

// Defaults returns the default of every field that has a fixed one (Loop's values where Loop
// had one). It is the one place the rooms defaults are written; the gateway's configuration
// takes its defaults from it. HawkUnusedSessionTTL (default HawkSessionTTL) and SweepInterval
// (default ParticipantTTL/4) depend on other fields and are left zero.
func Defaults() Config {
	return Config{
		DefaultTTL: 1344 * time.Hour, MaxTTL: 1344 * time.Hour, ExtendTTL: 1344 * time.Hour,
		ParticipantTTL: 5 * time.Minute, DeletedTTL: 27 * time.Minute,
		MaxSize: 5, MaxRoomNameSize: 100, MaxRoomOwnerSize: 255, MaxDisplayNameSize: 255, MaxFieldSize: 128,
		MaxDomains: 100, MaxBodyBytes: 64 << 10, TokenSize: 8,
		WebAppURL: "http://localhost:3000/{token}", APIKey: "teragate", RetryAfter: 30 * time.Second,
		HawkSessionTTL: 720 * time.Hour, HawkSkew: 60 * time.Second,
		MaxHawkSessions: 200_000, MaxRoomsPerOwner: 1000,
		RegistrationBurst: 20, RegistrationInterval: 3 * time.Second,
		RequestBurst: 60, RequestInterval: time.Second,
	}
}

// withDefaults fills zero fields from [Defaults]. Durations and sizes that are not positive
// take their default; the caps and bursts only when zero (negative: no limit).
func (c Config) withDefaults() Config {
	def := Defaults()
	d := func(v *time.Duration, dv time.Duration) {
		if *v <= 0 {
			*v = dv
		}
	}
	i := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	z := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	d(&c.DefaultTTL, def.DefaultTTL)
	d(&c.MaxTTL, def.MaxTTL)
	d(&c.ExtendTTL, def.ExtendTTL)
	d(&c.ParticipantTTL, def.ParticipantTTL)
	d(&c.DeletedTTL, def.DeletedTTL)
	d(&c.RetryAfter, def.RetryAfter)
	d(&c.HawkSessionTTL, def.HawkSessionTTL)
	d(&c.HawkUnusedSessionTTL, c.HawkSessionTTL)
	d(&c.HawkSkew, def.HawkSkew)
	d(&c.RegistrationInterval, def.RegistrationInterval)
	d(&c.RequestInterval, def.RequestInterval)
	if c.SweepInterval <= 0 {
		c.SweepInterval = min(max(c.ParticipantTTL/4, 10*time.Millisecond), time.Second)
		if g, ok := c.Store.(interface{ Grace() time.Duration }); ok && g.Grace() > 0 {
			// A record the store deletes by itself before any sweep read it expires unreported:
			// several sweeps fall within its grace.
			c.SweepInterval = min(c.SweepInterval, max(g.Grace()/4, 10*time.Millisecond))
		}
	}
	i(&c.MaxSize, def.MaxSize)
	i(&c.MaxRoomNameSize, def.MaxRoomNameSize)
	i(&c.MaxRoomOwnerSize, def.MaxRoomOwnerSize)
	i(&c.MaxDisplayNameSize, def.MaxDisplayNameSize)
	i(&c.MaxFieldSize, def.MaxFieldSize)
	i(&c.MaxDomains, def.MaxDomains)
	i(&c.TokenSize, def.TokenSize)
	z(&c.MaxHawkSessions, def.MaxHawkSessions)
	z(&c.MaxRoomsPerOwner, def.MaxRoomsPerOwner)
	z(&c.RegistrationBurst, def.RegistrationBurst)
	z(&c.RequestBurst, def.RequestBurst)
	// The rate limits live where the rooms live: in Redis they hold for the whole cluster.
	limiter := func(name string, burst int, interval time.Duration) Limiter {
		if shared, ok := c.Store.(interface {
			Limiter(string, int, time.Duration) Limiter
		}); ok {
			return shared.Limiter(name, burst, interval)
		}
		return NewTokenBucket(burst, interval, 0)
	}
	if c.RegistrationLimiter == nil && c.RegistrationBurst > 0 {
		c.RegistrationLimiter = limiter("registration", c.RegistrationBurst, c.RegistrationInterval)
	}
	if c.RequestLimiter == nil && c.RequestBurst > 0 {
		c.RequestLimiter = limiter("request", c.RequestBurst, c.RequestInterval)
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = def.MaxBodyBytes
	}
	if c.WebAppURL == "" {
		c.WebAppURL = def.WebAppURL
	}
	if c.APIKey == "" {
		c.APIKey = def.APIKey
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
