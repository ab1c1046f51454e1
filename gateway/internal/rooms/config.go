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
	// HawkSkew is the accepted clock difference of a Hawk timestamp. Default 60s.
	HawkSkew time.Duration
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
	d(&c.HawkSkew, 60*time.Second)
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
