package gateway

import (
	"context"
	"crypto/tls"
	"errors"
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
	"github.com/teragate/teragate/gateway/internal/hub"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/pluginhost"
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
	rooms    *rooms.Service
	stations *stations.Manager
	api      *api.API
	srv      *http.Server
	tlsCfg   *tls.Config
	certNew  bool

	cert     atomic.Pointer[tls.Certificate] // the serving certificate, replaced by Reload
	reloadMu sync.Mutex                      // serialises Reload

	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
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
			g.release()
		}
	}()

	var snap *directory.Snapshot
	if cfg.Identities == "" {
		snap = directory.Demo()
		log.Info("using the embedded demo identities (set --identities for your own)")
	} else {
		var err error
		if snap, err = directory.Load(cfg.Identities); err != nil {
			return nil, err
		}
	}
	g.metrics.DirectoryReload(true, float64(time.Now().Unix()))
	g.dir = directory.NewStore(snap)

	if cfg.Redis != "" {
		if err := g.openRedis(); err != nil {
			return nil, err
		}
	}
	a, err := auth.New(auth.Config{
		JWTKey:            []byte(cfg.JWTKey),
		UserJWTKey:        []byte(cfg.UserJWTKey),
		ParticipantJWTKey: []byte(cfg.ParticipantJWTKey),
		DeviceJWTKey:      []byte(cfg.DeviceJWTKey),
		TokenTTL:          time.Duration(cfg.TokenTTL),
		MaxFailedAttempts: cfg.MaxFailedLogins,
		LockoutDuration:   time.Duration(cfg.LockoutDuration),
		Metrics:           g.metrics,
		Logger:            log.Named("auth"),
	}, g.dir, g.authOptions()...)
	if err != nil {
		return nil, err
	}
	g.auth = a
	g.tickets = g.newTickets()
	if g.bus, err = g.newBus(); err != nil {
		return nil, err
	}
	g.hub = hub.New(hub.Config{
		MaxQueueFrames: cfg.MaxQueueFrames,
		MaxQueueBytes:  cfg.MaxQueueBytes,
		PingInterval:   time.Duration(cfg.PingInterval),
		PongTimeout:    time.Duration(cfg.PongTimeout),
		Metrics:        g.metrics,
		Logger:         log.Named("hub"),
	})
	if err := g.newCluster(); err != nil {
		return nil, err
	}
	g.pres = presence.New(presence.Config{Bus: g.bus, Directory: g.dir, Logger: log.Named("presence"), Cluster: g.presenceCluster(),
		OnPublish: func() { g.metrics.Published("presence") }})
	g.router = hub.NewRouter(g.hub, g.bus, hub.RouterConfig{Logger: log.Named("router")})
	native := &filter.Native{Sessions: g.pres}
	for _, k := range []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice} {
		g.router.SetFilter(k, native)
	}
	tr := transport.New(g.hub, transport.Config{Logger: log.Named("transport")})
	g.api = api.New(api.Deps{
		Auth: g.auth, Tickets: g.tickets, Directory: g.dir, Presence: g.pres, Bus: g.bus, Hub: g.hub,
		Transport: tr, Metrics: g.metrics, Logger: log.Named("api"),
		Insecure: cfg.Insecure, PublicHost: cfg.PublicHost, SingleSocket: cfg.SingleSocket, MaxBodyBytes: cfg.MaxBodyBytes,
		LoginRate: api.LoginRate{PerSecond: cfg.LoginRate, Burst: cfg.LoginBurst},
	})

	if err := g.initRPC(); err != nil {
		return nil, err
	}
	if err := g.initPlugins(); err != nil {
		return nil, err
	}
	if err := g.initRooms(); err != nil {
		return nil, err
	}
	if err := g.initStations(); err != nil {
		return nil, err
	}
	if err := g.initAdmin(); err != nil {
		return nil, err
	}

	if !cfg.Insecure {
		var cert tls.Certificate
		if cfg.TLSCert != "" {
			cert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("gateway: load TLS certificate: %w", err)
			}
		} else {
			host, _, _ := net.SplitHostPort(cfg.Listen)
			cert, g.certNew, err = tlsgen.Ensure(cfg.DataDir, []string{host})
			if err != nil {
				return nil, err
			}
		}
		g.cert.Store(&cert)
		g.tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return g.cert.Load(), nil }}
	}
	g.srv = &http.Server{
		Handler:           g.api.Handler(),
		ReadHeaderTimeout: time.Duration(cfg.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.ReadTimeout),
		IdleTimeout:       time.Duration(cfg.IdleTimeout),
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		TLSConfig:         g.tlsCfg,
	}
	return g, nil
}

// Start listens and starts serving in the background. When it returns, the gateway accepts
// logins and websockets and routes events.
//
// When Start fails, everything started and opened so far is stopped and closed (in reverse
// order) before it returns; the gateway cannot be started again and Shutdown does nothing.
func (g *Gateway) Start(ctx context.Context) (err error) {
	ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var undo []func(context.Context) error // the stops of what started, in start order
	defer func() {
		if err != nil {
			g.abortStart(undo)
		}
	}()
	for _, c := range []struct {
		start func(context.Context) error
		stop  func(context.Context) error
	}{
		{g.startCluster, g.stopCluster},
		// The RPC server before presence: the presence subscription carries the user manager's
		// requests.
		{g.startRPC, g.stopRPC},
		{g.pres.Start, g.pres.Stop},
		{g.router.Start, g.router.Stop},
	} {
		if err := c.start(ctx); err != nil {
			return err
		}
		undo = append(undo, c.stop)
	}
	g.startRooms(ctx)
	g.startStations(ctx)
	g.startPlugins(ctx)
	// Compiling and instrumenting the plugins leaves tens of MiB of garbage behind (and the
	// code of the versions that went cold after validation): return it to the operating system
	// now rather than at the runtime's leisure (a one-time cost at start).
	pluginhost.ReturnMemory()
	ln, lerr := net.Listen("tcp", g.cfg.Listen)
	if lerr != nil {
		return fmt.Errorf("gateway: listen: %w", lerr)
	}
	g.ln = ln
	if g.tlsCfg != nil {
		ln = tls.NewListener(ln, g.tlsCfg)
	}
	g.wg.Add(2)
	go func() { defer g.wg.Done(); g.hub.Run(ctx) }()
	go func() {
		defer g.wg.Done()
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server stopped", "error", err)
		}
	}()
	if g.cfg.Identities != "" {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			// The watcher logs each failure with its reason; the hooks keep the reload metrics.
			err := g.dir.Watch(ctx, g.cfg.Identities, g.log.Named("directory"), directory.WatchHooks{
				Reloaded: func(s *directory.Snapshot) {
					g.metrics.DirectoryReload(true, float64(time.Now().Unix()))
					g.hub.UpdateDirectory(s)
					g.pres.DirectoryChanged(s)
				},
				Failed: func(error) { g.metrics.DirectoryReload(false, 0) },
			})
			if err != nil && ctx.Err() == nil {
				g.log.Error("identity file watch stopped", "error", err)
			}
		}()
	}
	g.api.SetReady(true)
	g.log.Info("gateway listening", "url", g.URL(), "tls", g.tlsCfg != nil)
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

// Shutdown stops accepting, closes every websocket with 1001 (going away), waits for them to
// drain until ctx is done, and stops the gateway's goroutines.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.once.Do(func() {
		g.api.SetReady(false)
		err = g.srv.Shutdown(ctx)
		n := g.hub.CloseAll(hub.CloseGoingAway, "server shutdown", metrics.DisconnectShutdown)
		g.log.Info("shutting down", "sockets", n)
		err = errors.Join(err, g.drain(ctx), g.stopCluster(ctx))
		if g.cancel != nil {
			g.cancel()
		}
		err = errors.Join(err, g.stopRPC(ctx), g.router.Stop(ctx), g.pres.Stop(ctx), g.bus.Close(ctx), g.closeRedis())
		if werr := g.waitGoroutines(ctx); werr != nil {
			// Leave them (a file watcher still waiting on a read, say): the shutdown is bounded.
			g.log.Warn("shutdown deadline reached with background goroutines still running", "error", werr)
			err = errors.Join(err, werr)
		}
		err = errors.Join(err, g.stopPlugins(ctx))
	})
	return err
}

// waitGoroutines waits for the gateway's goroutines until ctx is done.
func (g *Gateway) waitGoroutines(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: background goroutines: %w", ctx.Err())
	}
}

// drain waits until every socket has left the hub or ctx is done.
func (g *Gateway) drain(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for g.hub.Count(0) > 0 {
		select {
		case <-ctx.Done():
			g.log.Warn("shutdown deadline reached with sockets still open", "sockets", g.hub.Count(0))
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// ShutdownTimeout returns the configured bound of a graceful shutdown.
func (g *Gateway) ShutdownTimeout() time.Duration { return time.Duration(g.cfg.ShutdownTimeout) }

// Publish puts payload on the gateway's bus on channel, as a service connected to the same bus
// (or Redis) would.
func (g *Gateway) Publish(ctx context.Context, channel string, payload []byte) error {
	return g.bus.Publish(ctx, channel, payload)
}
