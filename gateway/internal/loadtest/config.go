package loadtest

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Target is what the bench drives.
type Target string

const (
	// TargetGateway is a teragate gateway: clients log in through the HTTP
	// login endpoints, events are posted as TeraEvents.
	TargetGateway Target = "gateway"
	// TargetBare is a BareServer: clients connect straight to /ws, events are
	// posted as ready-made frames.
	TargetBare Target = "bare"
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("loadtest: invalid config")

// Config describes one bench run.
type Config struct {
	// Target is what is driven. Zero value means TargetGateway.
	Target Target
	// BaseURL is the server's HTTP base URL, e.g. "http://127.0.0.1:4040".
	// Required.
	BaseURL string
	// Dir holds the identities clients log in with and the publishing
	// service's token. Required for TargetGateway.
	Dir *Directory
	// ServiceToken authenticates POST /api/events. Empty means Dir's admin
	// service.
	ServiceToken string
	// Clients is how many clients of each type to open. With fewer
	// entities of a type in Dir than clients, entities hold several sockets.
	Clients Mix
	// Format is the frame format clients ask for. Zero value means FormatJSON.
	Format Format
	// Event is the kind of event published. Zero value means EventStop.
	Event EventKind
	// Rate is the offered load in events per second.
	Rate float64
	// Deliveries, when positive, sets the offered load in deliveries per
	// second instead: Rate = Deliveries / expected recipients per event.
	Deliveries float64
	// Duration is the measured publishing time. Zero value means 20s.
	Duration time.Duration
	// Warmup is the publishing time before measurement starts. Zero value
	// means no warmup.
	Warmup time.Duration
	// Idle selects idle mode: connect, wait IdleWait, report RSS growth per
	// connection; nothing is published.
	Idle bool
	// IdleWait is how long idle mode waits. Zero value means 25s (two 10 s
	// ping rounds).
	IdleWait time.Duration
	// ConnectRate is how many clients start connecting per second. Zero
	// value means 2000.
	ConnectRate float64
	// ConnectConcurrency bounds logins + websocket handshakes in flight.
	// Zero value means 100.
	ConnectConcurrency int
	// Publishers is the number of concurrent publishing connections. Zero
	// value means 4.
	Publishers int
	// Settle is the longest wait, after connecting, for the server's own
	// traffic (presence events) to stop before publishing or idling. Zero
	// value means 120s.
	Settle time.Duration
	// DrainTimeout is the longest wait for outstanding deliveries after
	// publishing stops. Zero value means 10s.
	DrainTimeout time.Duration
	// ServerPID is the server process for CPU and RSS figures. Zero means
	// none are reported.
	ServerPID int
	// BareMode labels the report of a bare run.
	BareMode BareMode
	// Progress receives one line per second while running. Nil means none.
	Progress io.Writer
	// InsecureSkipVerify accepts any TLS certificate (a gateway running on
	// its self-signed default certificate). Default false.
	InsecureSkipVerify bool
	// UserLogin is how user clients log in. Zero value means
	// UserLoginPassword (HTTP Basic, one bcrypt check per login);
	// UserLoginToken logs every user in once by password before the clock
	// starts and then logs in with the returned user_token (a JWT), as
	// OpenTera clients do after their first login. Participants and devices
	// always log in with their static tokens.
	UserLogin UserLogin
	// ConnectOnly stops after connecting and the server's presence traffic
	// settled: the report holds the open rate and the CPU per open; nothing is
	// published.
	ConnectOnly bool
	// Storm, when not nil, runs a connect storm instead of a steady
	// measurement: see [StormConfig]. Gateway target only.
	Storm *StormConfig
}

// UserLogin is how user clients authenticate on /api/user/login.
type UserLogin string

const (
	// UserLoginPassword is HTTP Basic with the user's password.
	UserLoginPassword UserLogin = "password"
	// UserLoginToken is `Authorization: OpenTera <user_token>`.
	UserLoginToken UserLogin = "token"
)

func (c *Config) fill() error {
	if c.Target == "" {
		c.Target = TargetGateway
	}
	if c.Format == "" {
		c.Format = FormatJSON
	}
	if c.Event == "" {
		c.Event = EventStop
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.IdleWait <= 0 {
		c.IdleWait = 25 * time.Second
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = 2000
	}
	if c.UserLogin == "" {
		c.UserLogin = UserLoginPassword
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 100
	}
	if c.Publishers <= 0 {
		c.Publishers = 4
	}
	if c.Settle <= 0 {
		c.Settle = 120 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	switch {
	case c.Target != TargetGateway && c.Target != TargetBare:
		return fmt.Errorf("%w: target %q", ErrConfig, c.Target)
	case c.Format != FormatJSON && c.Format != FormatProto:
		return fmt.Errorf("%w: format %q", ErrConfig, c.Format)
	case c.Event != EventStop && c.Event != EventParticipant:
		return fmt.Errorf("%w: event %q", ErrConfig, c.Event)
	case c.UserLogin != UserLoginPassword && c.UserLogin != UserLoginToken:
		return fmt.Errorf("%w: user login %q", ErrConfig, c.UserLogin)
	case c.BaseURL == "":
		return fmt.Errorf("%w: no base URL", ErrConfig)
	case c.Clients.Total() <= 0:
		return fmt.Errorf("%w: no clients", ErrConfig)
	case !c.Idle && !c.ConnectOnly && c.Rate <= 0 && c.Deliveries <= 0:
		return fmt.Errorf("%w: no rate or deliveries", ErrConfig)
	}
	if c.Storm != nil {
		if err := c.Storm.fill(c.Target); err != nil {
			return err
		}
	}
	if c.Target == TargetBare && c.Event == EventParticipant && c.Dir == nil {
		d, err := GenerateDirectory(GenerateOptions{Participants: 1, Projects: 1})
		if err != nil {
			return err
		}
		c.Dir = d
	}
	if c.Target == TargetGateway {
		if c.Dir == nil {
			return fmt.Errorf("%w: gateway target needs identities", ErrConfig)
		}
		if c.ServiceToken == "" {
			c.ServiceToken = c.Dir.AdminServiceToken()
		}
		if !c.Idle && !c.ConnectOnly && c.ServiceToken == "" {
			return fmt.Errorf("%w: no service token", ErrConfig)
		}
		if c.Clients.Users > 0 && len(c.Dir.Users) == 0 ||
			c.Clients.Participants > 0 && len(c.Dir.Participants) == 0 ||
			c.Clients.Devices > 0 && len(c.Dir.Devices) == 0 {
			return fmt.Errorf("%w: identities lack a requested client type", ErrConfig)
		}
		if c.Event == EventParticipant && len(c.Dir.Participants) == 0 {
			return fmt.Errorf("%w: participant events need participants", ErrConfig)
		}
	}
	return nil
}
