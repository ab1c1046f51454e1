package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Format is the websocket frame format.
type Format int

const (
	// FormatJSON is OpenTera's JSON text frames (the default).
	FormatJSON Format = iota
	// FormatProto is binary protobuf TeraMessage frames (?format=proto).
	FormatProto
)

// Option configures a [Client].
type Option func(*options) error

type options struct {
	token      string
	httpClient *http.Client
	tls        *tls.Config
	format     Format
	logger     hclog.Logger
	backoffMin time.Duration
	backoffMax time.Duration
	stateHook  func(State, error)
	eventQueue int
	resume     bool
	since      string
}

func defaults() options {
	return options{logger: hclog.NewNullLogger(), backoffMin: 250 * time.Millisecond, backoffMax: 30 * time.Second, eventQueue: 256}
}

// WithToken sets the token used for RPC calls and event publishing (a service token, or a user,
// participant or device token obtained elsewhere). [Login] sets it from the login reply.
func WithToken(token string) Option {
	return func(o *options) error { o.token = token; return nil }
}

// WithHTTPClient sets the HTTP client of logins, RPC calls and publishing. Default: a client with
// keep-alive and the TLS settings of the other options. The TLS options still apply to the
// websocket.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("client: nil HTTP client")
		}
		o.httpClient = c
		return nil
	}
}

// WithTLSConfig sets the TLS configuration of HTTPS and WSS connections.
func WithTLSConfig(c *tls.Config) Option {
	return func(o *options) error { o.tls = c.Clone(); return nil }
}

// WithRootCAs trusts the certificates of pool (instead of the system roots).
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) error { o.tlsConfig().RootCAs = pool; return nil }
}

// WithCACertFile trusts the PEM certificates in path, for example the self-signed certificate of
// a gateway (data/tls/cert.pem).
func WithCACertFile(path string) Option {
	return func(o *options) error {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("client: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("client: no PEM certificate in %s", path)
		}
		o.tlsConfig().RootCAs = pool
		return nil
	}
}

// WithInsecureSkipVerify accepts any server certificate. For tests and demos only.
func WithInsecureSkipVerify() Option {
	return func(o *options) error { o.tlsConfig().InsecureSkipVerify = true; return nil } //nolint:gosec // asked for explicitly
}

// WithFormat sets the websocket frame format. Default [FormatJSON].
func WithFormat(f Format) Option {
	return func(o *options) error {
		if f != FormatJSON && f != FormatProto {
			return fmt.Errorf("client: unknown format %d", f)
		}
		o.format = f
		return nil
	}
}

// WithLogger sets the logger (reconnections are logged at info level). Default: no logging.
func WithLogger(l hclog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithBackoff sets the reconnection delays: the first retry waits about min, each failure doubles
// it up to max, and every wait is randomised between half and all of it. Defaults 250 ms and 30 s.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) error {
		if min <= 0 || max < min {
			return fmt.Errorf("client: bad backoff %v..%v", min, max)
		}
		o.backoffMin, o.backoffMax = min, max
		return nil
	}
}

// WithStateHook calls fn on every connection state change of a [Conn] (from its goroutine; fn
// must not block). err is the cause of a disconnection.
func WithStateHook(fn func(s State, err error)) Option {
	return func(o *options) error { o.stateHook = fn; return nil }
}

// WithEventBuffer sets the capacity of [Conn.Events]. Default 256.
func WithEventBuffer(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return errors.New("client: negative event buffer")
		}
		o.eventQueue = n
		return nil
	}
}

// WithResume makes a [Conn] resume after a reconnect: it opts in with resume=1, keeps the
// position of the last event it delivered ([Event.Position], [Conn.Position]) and reconnects
// with since=<that position>, so the gateway sends the events published while it was away
// before the live ones. When the gateway cannot resume (its history no longer reaches back, or
// the position is of another cluster), the first event after the reconnection has
// [Event.ResumeFailed] set: the caller then resynchronises its state (e.g. with the presence
// RPC). Against an OpenTera server the option changes nothing.
func WithResume() Option {
	return func(o *options) error { o.resume = true; return nil }
}

// WithResumeFrom is [WithResume] starting from a position kept from an earlier run (the last
// [Event.Position] processed): the first connection already resumes from it.
func WithResumeFrom(position string) Option {
	return func(o *options) error {
		if position == "" || strings.ContainsAny(position, "&#?= /") {
			return fmt.Errorf("client: bad resume position %q", position)
		}
		o.resume, o.since = true, position
		return nil
	}
}

func (o *options) tlsConfig() *tls.Config {
	if o.tls == nil {
		o.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o.tls
}
