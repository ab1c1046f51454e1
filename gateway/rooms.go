package gateway

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/rooms"
)

// RoomsConfig configures the Mozilla Loop rooms API (docs/loop-rooms.md). The zero
// value of every field means Loop's default.
type RoomsConfig struct {
	// DefaultTTL is a room's lifetime when the client gives no expiresIn. Default 1344h (8 weeks).
	DefaultTTL Duration `yaml:"default_ttl"`
	// MaxTTL is the largest expiresIn accepted. Default 1344h.
	MaxTTL Duration `yaml:"max_ttl"`
	// ExtendTTL is the lifetime a room gets again on every join, leave and participant expiry.
	// Default 1344h.
	ExtendTTL Duration `yaml:"extend_ttl"`
	// ParticipantTTL is how long a participant (and a link-clicker's session token) lives without
	// a refresh. Default 5m.
	ParticipantTTL Duration `yaml:"participant_ttl"`
	// DeletedTTL is how long deletion tombstones are kept for GET /rooms?version=. Default 27m.
	DeletedTTL Duration `yaml:"deleted_ttl"`
	// MaxSize caps a room's maxSize. Default 5.
	MaxSize int `yaml:"max_size"`
	// MaxRoomNameSize and MaxRoomOwnerSize bound roomName and roomOwner (characters).
	// Defaults 100 and 255.
	MaxRoomNameSize  int `yaml:"max_room_name_size"`
	MaxRoomOwnerSize int `yaml:"max_room_owner_size"`
	// MaxBodyBytes bounds a rooms request body (413 errno 113 above it). Default 64 KiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// WebAppURL is the roomUrl template, "{token}" replaced by the room token.
	// Default "http://localhost:3000/{token}".
	WebAppURL string `yaml:"web_app_url"`
	// APIKey is the apiKey join returns (Loop's TokBox key). Default "teragate".
	APIKey string `yaml:"api_key"`
	// HawkSkew is the accepted clock difference of Hawk timestamps. Default 60s.
	HawkSkew Duration `yaml:"hawk_skew"`
	// HawkSessionTTL is the sliding lifetime of a Hawk session. Default 720h (30 days).
	HawkSessionTTL Duration `yaml:"hawk_session_ttl"`
	// HawkUnusedSessionTTL is the lifetime of a Hawk session that has not authenticated a request
	// yet; its first use extends it to HawkSessionTTL. Default HawkSessionTTL (as Loop).
	HawkUnusedSessionTTL Duration `yaml:"hawk_unused_session_ttl"`
	// MaxHawkSessions caps the live Hawk sessions: POST /registration beyond it answers 503
	// errno 206 with Retry-After; no session is evicted. Default 200000; -1 means no cap.
	MaxHawkSessions int `yaml:"max_hawk_sessions"`
	// MaxRoomsPerOwner caps the live rooms of one owner (Hawk session or teragate principal):
	// one more answers 403 errno 205. Default 1000; -1 means no cap.
	MaxRoomsPerOwner int `yaml:"max_rooms_per_owner"`
	// RegistrationBurst and RegistrationInterval rate-limit session creation (POST /registration
	// without credentials) per source address (TCP peer; IPv6 per /64; forwarding headers are
	// not trusted): that many at once, then one per interval; beyond, 429 errno 123 with
	// Retry-After. Defaults 20 and 3s; a burst of -1 disables the limit.
	RegistrationBurst    int      `yaml:"registration_burst"`
	RegistrationInterval Duration `yaml:"registration_interval"`
	// RequestBurst and RequestInterval rate-limit every authenticated rooms request per identity
	// (Hawk session, teragate principal, link-clicker session), and anonymous joins per source
	// address. Defaults 60 and 1s; a burst of -1 disables the limit.
	RequestBurst    int      `yaml:"request_burst"`
	RequestInterval Duration `yaml:"request_interval"`
	// StrictStates enforces the wiki's room session state machine on status updates.
	// Default false (as the final Loop server: any state and event accepted).
	StrictStates bool `yaml:"strict_states"`
	// RedisExpiryGrace is, with --redis, how long Redis keeps a room or participant record past
	// its deadline before deleting it, so that a node's sweep can still publish the presence
	// events of the expiry. Default 1m.
	RedisExpiryGrace Duration `yaml:"redis_expiry_grace"`
}

// withDefaults fills the zero fields of c with the rooms service's defaults ([rooms.Defaults]:
// they are written there only).
func (c RoomsConfig) withDefaults() RoomsConfig {
	d := rooms.Defaults()
	def := func(v *Duration, dv time.Duration) {
		if *v == 0 {
			*v = Duration(dv)
		}
	}
	defInt := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&c.DefaultTTL, d.DefaultTTL)
	def(&c.MaxTTL, d.MaxTTL)
	def(&c.ExtendTTL, d.ExtendTTL)
	def(&c.ParticipantTTL, d.ParticipantTTL)
	def(&c.DeletedTTL, d.DeletedTTL)
	def(&c.HawkSkew, d.HawkSkew)
	def(&c.HawkSessionTTL, d.HawkSessionTTL)
	def(&c.HawkUnusedSessionTTL, time.Duration(c.HawkSessionTTL))
	def(&c.RegistrationInterval, d.RegistrationInterval)
	def(&c.RequestInterval, d.RequestInterval)
	def(&c.RedisExpiryGrace, rooms.DefaultRedisGrace)
	defInt(&c.MaxHawkSessions, d.MaxHawkSessions)
	defInt(&c.MaxRoomsPerOwner, d.MaxRoomsPerOwner)
	defInt(&c.RegistrationBurst, d.RegistrationBurst)
	defInt(&c.RequestBurst, d.RequestBurst)
	defInt(&c.MaxSize, d.MaxSize)
	defInt(&c.MaxRoomNameSize, d.MaxRoomNameSize)
	defInt(&c.MaxRoomOwnerSize, d.MaxRoomOwnerSize)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.WebAppURL == "" {
		c.WebAppURL = d.WebAppURL
	}
	if c.APIKey == "" {
		c.APIKey = d.APIKey
	}
	return c
}

// validate reports the first invalid rooms field.
func (c RoomsConfig) validate() error {
	for _, f := range []struct {
		name string
		d    Duration
	}{{"default_ttl", c.DefaultTTL}, {"max_ttl", c.MaxTTL}, {"extend_ttl", c.ExtendTTL},
		{"participant_ttl", c.ParticipantTTL}, {"deleted_ttl", c.DeletedTTL}, {"hawk_skew", c.HawkSkew}, {"hawk_session_ttl", c.HawkSessionTTL},
		{"hawk_unused_session_ttl", c.HawkUnusedSessionTTL}, {"registration_interval", c.RegistrationInterval}, {"request_interval", c.RequestInterval},
		{"redis_expiry_grace", c.RedisExpiryGrace}} {
		if f.d <= 0 {
			return fmt.Errorf("%w: rooms.%s must be positive", ErrInvalidConfig, f.name)
		}
	}
	if c.MaxSize < 1 || c.MaxRoomNameSize < 1 || c.MaxRoomOwnerSize < 1 || c.MaxBodyBytes < 1024 {
		return fmt.Errorf("%w: rooms: max_size, max_room_name_size and max_room_owner_size must be ≥ 1, max_body_bytes ≥ 1024", ErrInvalidConfig)
	}
	if c.HawkUnusedSessionTTL > c.HawkSessionTTL {
		return fmt.Errorf("%w: rooms.hawk_unused_session_ttl (%s) must not exceed rooms.hawk_session_ttl (%s)", ErrInvalidConfig,
			time.Duration(c.HawkUnusedSessionTTL), time.Duration(c.HawkSessionTTL))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max_hawk_sessions", c.MaxHawkSessions}, {"max_rooms_per_owner", c.MaxRoomsPerOwner},
		{"registration_burst", c.RegistrationBurst}, {"request_burst", c.RequestBurst}} {
		if f.v < -1 {
			return fmt.Errorf("%w: rooms.%s must be positive, or -1 for no limit", ErrInvalidConfig, f.name)
		}
	}
	return nil
}

// initRooms builds the rooms service and mounts its routes on the API. With Redis the rooms
// live there, shared by every node, and the HMAC secret of session tokens and Hawk ids is the
// one stored in Redis; on a single node they live in memory.
func (g *Gateway) initRooms() error {
	c := g.cfg.Rooms // validated with the rest of the config
	var store rooms.Store
	var secret []byte
	if g.redis != nil {
		rs := rooms.NewRedisStore(rooms.RedisStoreConfig{Client: g.redis, Grace: time.Duration(c.RedisExpiryGrace)})
		ctx, cancel := context.WithTimeout(context.Background(), redisDialTimeout)
		defer cancel()
		var err error
		if secret, err = rs.SharedSecret(ctx); err != nil {
			return fmt.Errorf("gateway: rooms: read the shared secret from redis: %w", err)
		}
		store = rs
	}
	g.rooms = rooms.New(rooms.Config{
		Store: store, Secret: secret,
		DefaultTTL: time.Duration(c.DefaultTTL), MaxTTL: time.Duration(c.MaxTTL), ExtendTTL: time.Duration(c.ExtendTTL),
		ParticipantTTL: time.Duration(c.ParticipantTTL), DeletedTTL: time.Duration(c.DeletedTTL),
		MaxSize: c.MaxSize, MaxRoomNameSize: c.MaxRoomNameSize, MaxRoomOwnerSize: c.MaxRoomOwnerSize,
		MaxBodyBytes: c.MaxBodyBytes, WebAppURL: c.WebAppURL, APIKey: c.APIKey,
		HawkSkew: time.Duration(c.HawkSkew), HawkSessionTTL: time.Duration(c.HawkSessionTTL), Strict: c.StrictStates,
		HawkUnusedSessionTTL: time.Duration(c.HawkUnusedSessionTTL), MaxHawkSessions: c.MaxHawkSessions,
		MaxRoomsPerOwner: c.MaxRoomsPerOwner, RegistrationBurst: c.RegistrationBurst,
		RegistrationInterval: time.Duration(c.RegistrationInterval), RequestBurst: c.RequestBurst,
		RequestInterval: time.Duration(c.RequestInterval),
		Authenticate:    func(r *http.Request) (auth.Principal, error) { return g.api.Authenticate(r) },
		Publish: func(ctx context.Context, channel string, payload []byte) error {
			if err := g.bus.Publish(ctx, channel, payload); err != nil {
				return err
			}
			g.metrics.Published("rooms")
			return nil
		},
		Registerer: g.metrics.Registry(),
		Logger:     g.log.Named("rooms"),
	})
	g.rooms.Mount(g.api.Handle)
	return nil
}

// startRooms runs the rooms expiry sweep until the gateway stops.
