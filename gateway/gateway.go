package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/teragate/teragate/gateway/internal/api"
	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/history"
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/modsync"
	"github.com/teragate/teragate/gateway/internal/nodes"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/rooms"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/stations"
	"github.com/teragate/teragate/gateway/internal/tlsgen"
	"github.com/teragate/teragate/gateway/internal/transport"
)

// Gateway is one teragate node.
type Gateway struct {
	cfg      Config
	log      hclog.Logger
	metrics  *metrics.Metrics
	bus      bus.Bus
	hist     history.Store // nil: no event history
	dir      *directory.Store
	auth     *auth.Authenticator
	tickets  auth.Tickets
	redis    *redis.Client          // nil without --redis
	cluster  *presence.RedisCluster // nil without --redis
	lease    *rpc.RedisLease        // nil without --redis
	hub      *hub.Hub
	router   *hub.Router
	pres     *presence.Registry
	rpc      *rpcParts
	plugins  *pluginParts
	roleSync *modsync.Store // shares role plugins through Redis; nil without --redis
	rooms    *rooms.Service
	stations *stations.Manager
	nodes    *nodes.Service // the node list of the admin page
	api      *api.API
	srv      *http.Server
	tlsCfg   *tls.Config
	certNew  bool

	cert     atomic.Pointer[tls.Certificate] // the serving certificate, replaced by Reload
	reloadMu sync.Mutex                      // serialises Reload

	ln     net.Listener
	cancel context.CancelFunc
	// stopStationsRun ends the station manager's Run (stopStations).
	stopStationsRun context.CancelFunc
	wg              sync.WaitGroup
	once            sync.Once
	started         []component // what Start started, in order
}

// New builds a gateway: it validates the config, loads the identity directory and prepares TLS.
// It does not listen yet.
//
// When New fails half-way, what it opened so far (the Redis client, the bus, the plugin host's
// runtimes, the RPC lease) is closed before it returns.
func New(cfg Config) (_ *Gateway, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.New(&hclog.LoggerOptions{Name: "teragate", Level: hclog.LevelFromString(cfg.LogLevel), Output: os.Stderr})
	}
	g := &Gateway{cfg: cfg, log: log, metrics: metrics.New()}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if rerr := g.release(ctx); rerr != nil {
				log.Debug("releasing resources after a failed New", "error", rerr)
			}
		}
	}()

	// In order: each step uses what the steps before it built.
	for _, step := range []func() error{
		g.initDirectory,
		g.openRedis,
		g.initAuth,
		g.initBus,
		g.initHistory,
		g.initEventPath,
		g.initRPC,
		g.initPlugins,
		g.initRooms,
		g.initStations,
		g.initRoleSync,
		g.initAdmin,
		g.initServer,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// initDirectory loads the identity file (or the embedded demo identities).
func (g *Gateway) initDirectory() error {
	var snap *directory.Snapshot
	if g.cfg.Identities == "" {
		snap = directory.Demo()
		g.log.Info("using the embedded demo identities (set --identities for your own)")
	} else {
		var err error
		if snap, err = directory.Load(g.cfg.Identities); err != nil {
			return err
		}
	}
	g.metrics.DirectoryReload(true, float64(time.Now().Unix()))
	g.dir = directory.NewStore(snap)
	return nil
}

// initAuth builds the authenticator: passwords, tokens and JWTs, the lockout.
func (g *Gateway) initAuth() error {
	a, err := auth.New(auth.Config{
		JWTKey:            []byte(g.cfg.JWTKey),
		UserJWTKey:        []byte(g.cfg.UserJWTKey),
		ParticipantJWTKey: []byte(g.cfg.ParticipantJWTKey),
		DeviceJWTKey:      []byte(g.cfg.DeviceJWTKey),
		TokenTTL:          time.Duration(g.cfg.TokenTTL),
		MaxFailedAttempts: g.cfg.MaxFailedLogins,
		LockoutDuration:   time.Duration(g.cfg.LockoutDuration),
		Metrics:           g.metrics,
		Logger:            g.log.Named("auth"),
	}, g.dir, g.authOptions()...)
	if err != nil {
		return err
	}
	g.auth = a
	return nil
}

// initEventPath builds the event path: the hub of sockets, the cluster registry, presence, the
// router with OpenTera's native filter table (plugins replace it per kind), and the HTTP API.
func (g *Gateway) initEventPath() error {
	g.hub = hub.New(hub.Config{
		MaxQueueFrames: g.cfg.MaxQueueFrames,
		MaxQueueBytes:  g.cfg.MaxQueueBytes,
		PingInterval:   time.Duration(g.cfg.PingInterval),
		PongTimeout:    time.Duration(g.cfg.PongTimeout),
		Metrics:        g.metrics,
		Logger:         g.log.Named("hub"),
	})
	if err := g.newCluster(); err != nil {
		return err
	}
	g.pres = presence.New(presence.Config{Bus: g.bus, Directory: g.dir, Logger: g.log.Named("presence"), Cluster: g.presenceCluster(),
		ResyncDelay: g.resyncDelay(), OnPublish: func() { g.metrics.Published("presence") }})
	g.router = hub.NewRouter(g.hub, g.bus, hub.RouterConfig{Logger: g.log.Named("router"), PositionChannel: g.positionChannel()})
	native := &filter.Native{Sessions: g.pres}
	for _, k := range []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice} {
		g.router.SetFilter(k, native)
	}
	tr := transport.New(g.hub, transport.Config{Logger: g.log.Named("transport")})
	g.api = api.New(api.Deps{
		Auth: g.auth, Tickets: g.tickets, Directory: g.dir, Presence: g.pres, Bus: g.bus, Hub: g.hub,
		Transport: tr, Metrics: g.metrics, Logger: g.log.Named("api"), Router: g.router, History: g.hist,
		Insecure: g.cfg.Insecure, PublicHost: g.cfg.PublicHost, SingleSocket: g.cfg.SingleSocket, MaxBodyBytes: g.cfg.MaxBodyBytes,
		LoginRate: api.LoginRate{PerSecond: g.cfg.LoginRate, Burst: g.cfg.LoginBurst},
	})
	return nil
}

// initServer prepares TLS (the configured certificate, or a generated self-signed one) and the
// HTTP server.
func (g *Gateway) initServer() error {
	if !g.cfg.Insecure {
		var (
			cert tls.Certificate
			err  error
		)
		if g.cfg.TLSCert != "" {
			cert, err = tls.LoadX509KeyPair(g.cfg.TLSCert, g.cfg.TLSKey)
			if err != nil {
				return fmt.Errorf("gateway: load TLS certificate: %w", err)
			}
		} else {
			host, _, _ := net.SplitHostPort(g.cfg.Listen)
			cert, g.certNew, err = tlsgen.Ensure(g.cfg.DataDir, []string{host})
			if err != nil {
				return err
			}
		}
		g.cert.Store(&cert)
		g.tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return g.cert.Load(), nil }}
	}
	g.srv = &http.Server{
		Handler:           g.api.Handler(),
		ReadHeaderTimeout: time.Duration(g.cfg.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(g.cfg.ReadTimeout),
		IdleTimeout:       time.Duration(g.cfg.IdleTimeout),
		ErrorLog:          g.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		TLSConfig:         g.tlsCfg,
	}
	return nil
}

// Addr returns the listening address (useful with port 0), or nil before Start.
func (g *Gateway) Addr() net.Addr {
	if g.ln == nil {
		return nil
	}
	return g.ln.Addr()
}

// URL returns the gateway's base URL (https:// or http:// with --insecure).
func (g *Gateway) URL() string {
	scheme := "https"
	if g.cfg.Insecure {
		scheme = "http"
	}
	host := g.cfg.Listen
	if a := g.Addr(); a != nil {
		host = a.String()
	}
	return scheme + "://" + host
}

// CertificateCreated reports whether New generated a new self-signed certificate.
func (g *Gateway) CertificateCreated() bool { return g.certNew }

// CertificatePath returns the self-signed certificate's path, or "" when TLS is off or a
// certificate was configured.
func (g *Gateway) CertificatePath() string {
	if g.cfg.Insecure || g.cfg.TLSCert != "" {
		return ""
	}
	p, _ := tlsgen.Paths(g.cfg.DataDir)
	return p
}

// ShutdownTimeout returns the configured bound of a graceful shutdown.
func (g *Gateway) ShutdownTimeout() time.Duration { return time.Duration(g.cfg.ShutdownTimeout) }

// Publish puts payload on the gateway's bus on channel, as a service connected to the same bus
// (or Redis) would.
func (g *Gateway) Publish(ctx context.Context, channel string, payload []byte) error {
	return g.bus.Publish(ctx, channel, payload)
}
