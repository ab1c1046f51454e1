package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
	"github.com/teragate/teragate/gateway/internal/auth"
	"gopkg.in/yaml.v3"
)

// DefaultDataDir is the data directory when none is configured.
const DefaultDataDir = "data"

// ErrInvalidConfig is wrapped by every configuration validation error.
var ErrInvalidConfig = errors.New("gateway: invalid config")

// Duration is a time.Duration that reads "10s"-style strings from YAML.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is the gateway's configuration: the YAML config file, overridden by command-line flags.
// The zero value of every field means its documented default.
type Config struct {
	// Listen is the address the HTTP(S) server listens on. Default "127.0.0.1:4040".
	Listen string `yaml:"listen"`
	// Insecure serves plain HTTP and ws:// instead of TLS. Default false (TLS).
	Insecure bool `yaml:"insecure"`
	// TLSCert and TLSKey are PEM files of the server certificate. Empty (the default) means a
	// self-signed certificate generated into DataDir/tls.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// PublicHost is the host[:port] put in websocket_url: set it to the name clients reach the
	// gateway by (the host of its TLS certificate, or the proxy's public address). Empty means
	// the address the login request arrived on. Request headers (Host, X-Forwarded-…) are never
	// used: a client could point the URL, and its ticket, anywhere.
	PublicHost string `yaml:"public_host"`
	// Identities is the YAML identity directory, hot-reloaded on change. Empty means the embedded
	// demo directory.
	Identities string `yaml:"identities"`
	// Plugins is the Wasm plugin directory, hot-reloaded: <id>.wasm files such as filter.user.wasm
	// or rpc.sessions.wasm. A file replaces the built-in plugin of the same id (see Builtins);
	// removing it brings the built-in back. Empty means no directory: only the built-ins, and the
	// native OpenTera filter table for kinds no plugin filters. teragate serve defaults it to
	// <data>/plugins.
	Plugins string `yaml:"plugins"`
	// ReturnMemory set to false stops the gateway returning freed memory to the OS after a burst
	// of connections (at least 200 connects and disconnects followed by 2 s without any: one
	// collection, see memtrim.go). Default true.
	ReturnMemory *bool `yaml:"return_memory"`
	// BuiltinPlugins set to false stops the gateway serving Builtins (the first-party plugins
	// compiled into the teragate binary). Default true.
	BuiltinPlugins *bool `yaml:"builtin_plugins"`
	// Builtins are plugin modules by id served unless the plugin directory replaces them.
	// teragate serve passes the ones compiled into the binary; a program embedding the gateway
	// passes its own or none.
	Builtins map[string][]byte `yaml:"-"`
	// PluginConfig maps plugin ids to their configuration and limits. Ids not listed get the
	// defaults.
	PluginConfig map[string]PluginConfig `yaml:"plugin_config"`
	// Roles is the directory of station role plugins (<role>.wasm), served to stations by
	// content hash and hot-reloaded onto the stations running the role. Empty means
	// <data>/roles.
	Roles string `yaml:"roles"`
	// StationPushTimeout bounds the wait for a station's answer to a configuration push (an
	// admin edit answers 504 after it; the station may fetch and compile role plugins first).
	// Default 60s.
	StationPushTimeout Duration `yaml:"station_push_timeout"`
	// DataDir holds generated state (the self-signed certificate). Default "./data".
	DataDir string `yaml:"data"`
	// Redis is the Redis URL of a multi-node deployment (redis://[user:password@]host:port[/db],
	// rediss:// for TLS). With it, the bus is Redis pub/sub on OpenTera's channel names, and
	// websocket tickets, token revocations and presence live in Redis, so any node can serve any
	// client. Empty (the default) means a single node with the in-memory bus.
	Redis string `yaml:"redis"`
	// RedisNodeTTL is, with Redis, the lifetime of this node's presence heartbeat key (refreshed
	// every third of it): a node silent for that long is dead, and another node takes its
	// connections offline. Default 10s (a dead node's clients go offline within about 14 s).
	RedisNodeTTL Duration `yaml:"redis_node_ttl"`
	// LogLevel is trace, debug, info, warn or error. Default "info".
	LogLevel string `yaml:"log_level"`
	// JWTKey is the HS256 key of the tokens teragate issues and accepts (OpenTera's
	// UserTokenAPIKey when running beside an OpenTera server). Empty means a random key per start.
	JWTKey string `yaml:"jwt_key"`
	// UserJWTKey, ParticipantJWTKey and DeviceJWTKey, when set, replace JWTKey for the tokens of
	// one kind, as OpenTera keeps separate UserTokenAPIKey, ParticipantTokenAPIKey and
	// DeviceTokenAPIKey: set each to the OpenTera server's value and tokens it issued verify here
	// (and the ones teragate issues verify there). At least 16 bytes each.
	UserJWTKey        string `yaml:"user_jwt_key"`
	ParticipantJWTKey string `yaml:"participant_jwt_key"`
	DeviceJWTKey      string `yaml:"device_jwt_key"`
	// SingleSocket restores OpenTera's refusal (403 "already logged in") of a websocket login for
	// an entity that is already online. Default false: an entity may hold several sockets.
	SingleSocket bool `yaml:"single_socket"`
	// TokenTTL is the lifetime of issued tokens. Default 1h.
	TokenTTL Duration `yaml:"token_ttl"`
	// TicketTTL is the lifetime of a websocket ticket. Default 60s.
	TicketTTL Duration `yaml:"ticket_ttl"`
	// MaxFailedLogins is how many wrong passwords for one username from one source address lock
	// that username for that address (not for the owner elsewhere). Default 5.
	MaxFailedLogins int `yaml:"max_failed_logins"`
	// LockoutDuration is how long a first lock lasts (and the window failures are counted in); each
	// further lock of the same username and address lasts twice as long, up to 1 h. Default 120s.
	LockoutDuration Duration `yaml:"lockout_duration"`
	// LoginRate is how many logins a second one entity (user, participant or device, from any
	// address) may make once its burst is spent; beyond it a login is answered 429 with
	// Retry-After, and counted as teragate_logins_total{result="rate_limited"}. It keeps a client
	// reconnecting in a tight loop from starving the others. Default 20; negative: no limit.
	LoginRate float64 `yaml:"login_rate"`
	// LoginBurst is how many logins one entity may make at once. Default 2000, so an entity
	// holding up to ~1,000 sockets can have them all come back together twice in a minute (a
	// connect storm after a network cut or a restart) without a refusal.
	LoginBurst int `yaml:"login_burst"`
	// PingInterval is the time between server pings. Default 10s.
	PingInterval Duration `yaml:"ping_interval"`
	// PongTimeout closes a socket silent for that long. Default 30s.
	PongTimeout Duration `yaml:"pong_timeout"`
	// MaxQueueFrames bounds one socket's outbound queue; overflow closes it with 4001. Default 1024.
	MaxQueueFrames int `yaml:"max_queue_frames"`
	// MaxQueueBytes bounds one socket's outbound queue in bytes. Default 4 MiB.
	MaxQueueBytes int `yaml:"max_queue_bytes"`
	// MaxBodyBytes bounds HTTP request bodies (POST /api/events). Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxModuleBytes bounds a plugin or role module uploaded through PUT /api/plugins/{id} or
	// PUT /api/roles/{name} (413 above it) and, with Redis, one shared with the cluster. Default
	// 32 MiB.
	MaxModuleBytes int64 `yaml:"max_module_bytes"`
	// ShutdownTimeout bounds a graceful shutdown. Default 10s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout the whole request with its
	// body, IdleTimeout how long a keep-alive connection may wait for its next request. A client
	// that sends slower is disconnected, so slow senders cannot hold connections. A websocket is
	// not bound by them once upgraded (pings and pongs watch it). Defaults 10s, 30s, 120s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`

	// HistoryMaxEvents bounds the event history kept for clients that resume after a reconnect
	// (resume=1&since=…): at most that many events. Default 100000; -1 keeps no history (a resume
	// then gets ResumeFailed "disabled").
	HistoryMaxEvents int `yaml:"history_max_events"`
	// HistoryMaxAge bounds the event history by age. Default 10m.
	HistoryMaxAge Duration `yaml:"history_max_age"`

	// Rooms configures the Mozilla Loop rooms API; zero fields mean Loop's defaults.
	Rooms RoomsConfig `yaml:"rooms"`

	// Logger is the root logger (not from the file). Nil means a logger on stderr at LogLevel.
	Logger hclog.Logger `yaml:"-"`
}

// LoadConfig reads a YAML config file. Unknown keys are an error, so a typo is not silently ignored.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("gateway: read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, path, err)
	}
	return c, nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:4040"
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = Duration(time.Hour)
	}
	if c.TicketTTL == 0 {
		c.TicketTTL = Duration(60 * time.Second)
	}
	if c.MaxFailedLogins == 0 {
		c.MaxFailedLogins = 5
	}
	if c.LoginRate == 0 {
		c.LoginRate = 20
	}
	if c.LoginBurst <= 0 {
		c.LoginBurst = 2000
	}
	if c.LockoutDuration == 0 {
		c.LockoutDuration = Duration(120 * time.Second)
	}
	if c.PingInterval == 0 {
		c.PingInterval = Duration(10 * time.Second)
	}
	if c.PongTimeout == 0 {
		c.PongTimeout = Duration(30 * time.Second)
	}
	if c.MaxQueueFrames == 0 {
		c.MaxQueueFrames = 1024
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = 4 << 20
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxModuleBytes == 0 {
		c.MaxModuleBytes = 32 << 20
	}
	if c.RedisNodeTTL == 0 {
		c.RedisNodeTTL = Duration(10 * time.Second)
	}
	if c.HistoryMaxEvents == 0 {
		c.HistoryMaxEvents = 100000
	}
	if c.HistoryMaxAge == 0 {
		c.HistoryMaxAge = Duration(10 * time.Minute)
	}
	if c.StationPushTimeout == 0 {
		c.StationPushTimeout = Duration(60 * time.Second)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(10 * time.Second)
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = Duration(30 * time.Second)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = Duration(120 * time.Second)
	}
	c.Rooms = c.Rooms.withDefaults()
	return c
}

// Validate reports the first invalid field of a config with defaults applied.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen %q: %v", c.Listen, err)
	}
	if c.MaxModuleBytes < 0 {
		return bad("max_module_bytes must not be negative")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return bad("tls_cert and tls_key must be set together")
	}
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		return bad("log_level %q: want trace, debug, info, warn or error", c.LogLevel)
	}
	if c.Plugins != "" {
		if st, err := os.Stat(c.Plugins); err != nil || !st.IsDir() {
			return bad("plugins %q: not a directory", c.Plugins)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.PluginConfig)) {
		if _, err := c.PluginConfig[id].settings(); err != nil {
			return bad("plugin_config.%s: %v", id, err)
		}
	}
	keys := auth.Config{JWTKey: []byte(c.JWTKey), UserJWTKey: []byte(c.UserJWTKey),
		ParticipantJWTKey: []byte(c.ParticipantJWTKey), DeviceJWTKey: []byte(c.DeviceJWTKey)}
	if err := keys.Validate(); err != nil {
		return bad("%v (e.g. the output of `openssl rand -base64 32`)", err)
	}
	if c.Redis != "" {
		if _, err := redis.ParseURL(c.Redis); err != nil {
			return bad("redis %q: %v (want redis://[user:password@]host:port[/db] or rediss://…)", c.Redis, err)
		}
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"token_ttl", c.TokenTTL}, {"ticket_ttl", c.TicketTTL}, {"lockout_duration", c.LockoutDuration},
		{"ping_interval", c.PingInterval}, {"pong_timeout", c.PongTimeout}, {"shutdown_timeout", c.ShutdownTimeout}, {"redis_node_ttl", c.RedisNodeTTL},
		{"station_push_timeout", c.StationPushTimeout},
		{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if f.d < 0 {
			return bad("%s must not be negative", f.name)
		}
	}
	if c.PongTimeout <= c.PingInterval {
		return bad("pong_timeout (%s) must be longer than ping_interval (%s)", time.Duration(c.PongTimeout), time.Duration(c.PingInterval))
	}
	if c.MaxQueueFrames < 1 || c.MaxQueueBytes < 1024 {
		return bad("max_queue_frames must be ≥ 1 and max_queue_bytes ≥ 1024")
	}
	if c.HistoryMaxEvents < -1 || c.HistoryMaxAge < 0 {
		return bad("history_max_events must be ≥ -1 (-1: no history) and history_max_age not negative")
	}
	return c.Rooms.validate()
}
