package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/teragate/teragate/gateway/internal/loadtest"
)

const benchUsage = `Usage: teragate bench [flags]

Measures a gateway (or the bare gorilla broadcast baseline) with many real
websocket clients: N clients log in through the HTTP login endpoints and open
their websockets, a publisher posts TeraEvents to POST /api/events at a fixed
rate, and the bench reports deliveries, loss, latency (publish → receive),
server CPU per delivery and server memory.

Without --url the bench starts the server itself (this binary's "serve" with a
generated identity file, or "bench-bare-server") on a free loopback port and
stops it at the end; with --url it drives a running server and reads its CPU
and memory from /proc/<--pid> when given.

Progress lines go to stderr every second; the report goes to stdout.

Examples:
  teragate bench --clients 1000 --deliveries 50000
  teragate bench --target bare --bare-mode batched --clients 10000
  teragate bench --idle --clients 10000
  teragate bench --connect-only --user-login token --clients 10000
  teragate bench --url http://127.0.0.1:4040 --pid 1234 --identities ids.yaml
  teragate bench --storm --clients 10000 --plot storm.png
  teragate bench --storm --storm-resume --clients 1000
  teragate bench --storm-restart --clients 10000 --storm-user-sockets 1000
  teragate bench --plugin-reloads 100

A connect storm (--storm, --storm-restart) connects the clients (devices by
token and the sockets of one user account), publishes events to every socket
throughout (--deliveries, default 10000/s in a storm), then breaks every
connection at once: the clients reset their TCP connections, or the gateway
is killed and started again. Each client reconnects by itself with
sdk/client's jittered exponential backoff, a fresh login and websocket each
try. The report gives the time until all are back (and for the first and last
thousand), the refused logins by status, whether the gateway's online lists
(TeraServer.UserManagerModule online_*) match the open sockets, and the
events delivered to the sockets that were connected when they were published.
With --storm-resume the clients resume after reconnecting (resume=1, then
since=<last position>), and the report adds, for them, the events expected
against those delivered, the duplicates and the ResumeFailed frames.
--plot draws any run second by second.

A reload run (--plugin-reloads N) writes the module of --reload-id (the
built-in of that id, or --reload-module) into the gateway's plugin directory
N+1 times, each time with a new custom section (so a new version), at most
one per --reload-interval and each once the previous one serves, and reports
the server's RSS after the first version, its peak, and after the last, with
the plugin host's own count of open versions, compiled modules and instances.
With --url it needs --plugins (that gateway's plugin directory), --pid and
--identities or --service-token.

Flags:
`

// runBench implements `teragate bench`. It returns the process exit code:
// 0 on success, 1 when the run failed, 2 on bad flags.
func runBench(args []string) int {
	f, cfg, code := parseBench(args)
	if f == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopServer, code := f.prepare(ctx, &cfg)
	if code != 0 {
		return code
	}
	defer stopServer()
	return f.measure(ctx, cfg)
}

// benchFlags are the parsed flags of `teragate bench`.
type benchFlags struct {
	target       *string
	baseURL      *string
	skipVerify   *bool
	pid          *int
	clients      *int
	types        *string
	format       *string
	rate         *float64
	deliveries   *float64
	duration     *time.Duration
	warmup       *time.Duration
	event        *string
	bareMode     *string
	bareLazy     *bool
	idle         *bool
	idleWait     *time.Duration
	jsonOut      *bool
	connectRate  *float64
	connectOnly  *bool
	userLogin    *string
	connectConc  *int
	publishers   *int
	projects     *int
	serviceToken *string
	identities   *string
	pluginsDir   *string
	native       *bool
	userPassword *string
	settle       *time.Duration
	quietWait    *time.Duration
	cpuProfile   *string
	keep         *bool
	plotPath     *string
	sf           *stormOptions
	rf           *reloadOptions
	serverPprof  *string
	serverRedis  *string
}

// newBenchFlags defines the bench's flags on fs.
func newBenchFlags(fs *flag.FlagSet) *benchFlags {
	return &benchFlags{
		target:       fs.String("target", "gateway", "what to measure: gateway or bare (the bare gorilla broadcast baseline)"),
		baseURL:      fs.String("url", "", "base URL of a running server (e.g. http://127.0.0.1:4040); empty: start one"),
		skipVerify:   fs.Bool("tls-skip-verify", false, "with an https --url, accept any certificate (the gateway's self-signed default)"),
		pid:          fs.Int("pid", 0, "pid of the server at --url, for its CPU and RSS figures"),
		clients:      fs.Int("clients", 1000, "number of websocket clients"),
		types:        fs.String("types", "user,participant,device", "client type mix: comma-separated user, participant, device, each with an optional :weight"),
		format:       fs.String("format", "json", "frame format the clients ask for: json (OpenTera text frames) or proto (?format=proto)"),
		rate:         fs.Float64("rate", 0, "offered load in events per second (instead of --deliveries)"),
		deliveries:   fs.Float64("deliveries", 0, "offered load in deliveries per second (default 50000 when --rate is not set)"),
		duration:     fs.Duration("duration", 20*time.Second, "measured publishing time"),
		warmup:       fs.Duration("warmup", 3*time.Second, "publishing time before measurement starts"),
		event:        fs.String("event", "stop", "event published: stop (StopSessionEvent, reaches every socket) or participant (ParticipantEvent, filtered by project and links)"),
		bareMode:     fs.String("bare-mode", "prepared", "bare server writer: prepared (one write per frame) or batched (several frames per write)"),
		bareLazy:     fs.Bool("bare-lazy-writer", false, "bare server starts a connection's writer goroutine only while its queue is non-empty (no parked writer per idle connection)"),
		idle:         fs.Bool("idle", false, "idle mode: connect, wait --idle-wait, report server RSS per connection"),
		idleWait:     fs.Duration("idle-wait", 25*time.Second, "how long idle mode waits (two 10 s ping rounds by default)"),
		jsonOut:      fs.Bool("json", false, "print the report as JSON"),
		connectRate:  fs.Float64("connect-rate", 2000, "clients started per second (0: no limit but --connect-concurrency; the default with --connect-only)"),
		connectOnly:  fs.Bool("connect-only", false, "connect-only mode: open the clients as fast as --connect-concurrency allows, wait for the presence traffic to settle, report opens/s and CPU per open"),
		userLogin:    fs.String("user-login", "password", "how user clients log in: password (HTTP Basic, one bcrypt check each) or token (each user logs in once by password before the clock starts, then with its user_token JWT, as the \"token login\" figure means)"),
		connectConc:  fs.Int("connect-concurrency", 100, "logins and websocket handshakes in flight"),
		publishers:   fs.Int("publishers", 4, "concurrent publishing connections"),
		projects:     fs.Int("projects", 0, "projects in the generated identities, users, participants and devices spread over them (0: clients/100, at least 10, so every project has about 100 entities whatever the scale)"),
		serviceToken: fs.String("service-token", "", "service token for POST /api/events (with --url; default: the admin service of --identities)"),
		identities:   fs.String("identities", "", "identity file the gateway at --url runs with (tokens and users are read from it)"),
		pluginsDir:   fs.String("plugins", "", "plugin directory for the spawned gateway (its files replace the built-in plugins of the same id)"),
		native:       fs.Bool("native", false, "run the spawned gateway with --builtin-plugins=false: OpenTera's table in native Go (filter.Native), the baseline of the Wasm filters"),
		userPassword: fs.String("user-password", "", "clear password of the users in --identities (default: the bench's generated password)"),
		settle:       fs.Duration("settle", 120*time.Second, "longest wait after connecting for the server's presence events to stop"),
		quietWait:    fs.Duration("quiet-wait", 0, "before measuring, wait up to this long for other processes to use < 0.15 cores (0: don't wait); the report's \"other cpu\" line shows how busy the machine was"),
		cpuProfile:   fs.String("cpuprofile", "", "write the bench process's own CPU profile (the load clients) to this file"),
		keep:         fs.Bool("keep", false, "keep the spawned server's temporary directory (identities, data, log)"),
		plotPath:     fs.String("plot", "", "write a PNG of the run second by second to this file: delivered msgs/s, p50/p99 latency, server RSS and websocket opens/s (a storm is marked)"),
		sf:           stormFlags(fs),
		rf:           reloadFlags(fs),
		serverPprof:  fs.String("server-pprof", "", "the spawned gateway serves Go's runtime profiles on this address (serve --pprof), e.g. 127.0.0.1:6060, to profile it during the run"),
		serverRedis:  fs.String("server-redis", "", "the spawned gateway runs in Redis mode on this Redis URL (serve --redis), e.g. redis://127.0.0.1:6379/0: its bus, presence and event history are in Redis"),
	}
}

// parseBench parses and checks the flags and builds the load test's configuration. A nil
// benchFlags comes with the exit code.
func parseBench(args []string) (*benchFlags, loadtest.Config, int) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	f := newBenchFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, loadtest.Config{}, 0
		}
		return nil, loadtest.Config{}, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", fs.Args())
		return nil, loadtest.Config{}, 2
	}
	mix, err := loadtest.ParseMix(*f.types, *f.clients)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: --types: %v\n", err)
		return nil, loadtest.Config{}, 2
	}
	if f.sf.on() {
		if mix, err = f.sf.mix(*f.clients); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return nil, loadtest.Config{}, 2
		}
		if *f.rate <= 0 && *f.deliveries <= 0 {
			*f.deliveries = 10000
		}
	}
	if *f.projects <= 0 {
		*f.projects = max(10, *f.clients/100)
	}
	if *f.rate <= 0 && *f.deliveries <= 0 {
		*f.deliveries = 50000
	}
	cfg := loadtest.Config{
		Target: loadtest.Target(*f.target), BaseURL: *f.baseURL, ServiceToken: *f.serviceToken,
		Clients: mix, Format: loadtest.Format(*f.format), Event: loadtest.EventKind(*f.event),
		Rate: *f.rate, Deliveries: *f.deliveries, Duration: *f.duration, Warmup: *f.warmup,
		Idle: *f.idle, IdleWait: *f.idleWait, ConnectRate: *f.connectRate, ConnectConcurrency: *f.connectConc,
		Publishers: *f.publishers, Settle: *f.settle, ServerPID: *f.pid, Progress: os.Stderr,
		InsecureSkipVerify: *f.skipVerify,
	}
	if *f.rate > 0 {
		cfg.Deliveries = 0
	}
	cfg.ConnectOnly = *f.connectOnly
	cfg.UserLogin = loadtest.UserLogin(*f.userLogin)
	cfg.Storm = f.sf.config()
	if *f.sf.restart && *f.baseURL != "" {
		fmt.Fprintln(os.Stderr, "bench: --storm-restart restarts the server the bench starts itself: drop --url")
		return nil, loadtest.Config{}, 2
	}
	rateSet := false
	fs.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "connect-rate" })
	if *f.connectRate <= 0 || *f.connectOnly && !rateSet {
		cfg.ConnectRate = -1 // no limit
	}
	switch cfg.Target {
	case loadtest.TargetGateway:
	case loadtest.TargetBare:
		if m := loadtest.BareMode(*f.bareMode); m != loadtest.BarePrepared && m != loadtest.BareBatched {
			fmt.Fprintf(os.Stderr, "bench: --bare-mode must be prepared or batched, not %q\n", *f.bareMode)
			return nil, loadtest.Config{}, 2
		}
		cfg.BareMode = loadtest.BareMode(*f.bareMode)
		if *f.bareLazy {
			cfg.BareMode += "+lazy-writer"
		}
	default:
		fmt.Fprintf(os.Stderr, "bench: --target must be gateway or bare, not %q\n", *f.target)
		return nil, loadtest.Config{}, 2
	}
	return f, cfg, 0
}

// prepare points cfg at the server to measure: the one at --url with its identities, or one the
// bench starts (stopped by the returned func). A non-zero code is the exit code.
func (f *benchFlags) prepare(ctx context.Context, cfg *loadtest.Config) (stop func(), code int) {
	stop = func() {}
	if cfg.BaseURL != "" {
		if cfg.Target == loadtest.TargetGateway {
			if *f.identities == "" && !(f.rf.on() && *f.serviceToken != "") { // a reload run needs only the token
				fmt.Fprintln(os.Stderr, "bench: --url with --target gateway needs --identities (the gateway's identity file)")
				return stop, 2
			}
			if *f.identities != "" {
				d, err := loadtest.LoadDirectory(*f.identities, *f.userPassword)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: %v\n", err)
					return stop, 1
				}
				cfg.Dir = d
			}
		}
	} else {
		var (
			dir *loadtest.Directory
			err error
		)
		var cleanup func()
		if f.rf.on() && *f.pluginsDir == "" {
			// A reload run writes into the spawned gateway's plugin directory.
			tmp, err := os.MkdirTemp("", "teragate-bench-plugins-")
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				return stop, 1
			}
			cleanup = func() { _ = os.RemoveAll(tmp) }
			*f.pluginsDir = tmp
		}
		if f.sf.on() {
			if dir, err = loadtest.StormDirectory(cfg.Clients.Devices); err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				return stop, 1
			}
		}
		srv, err := spawnServer(ctx, cfg.Target, spawnOptions{
			mix: cfg.Clients, projects: *f.projects, bareMode: *f.bareMode, bareLazy: *f.bareLazy, keep: *f.keep,
			plugins: *f.pluginsDir, native: *f.native, dir: dir, pprof: *f.serverPprof, redis: *f.serverRedis,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return stop, 1
		}
		stop = srv.stop
		if cleanup != nil {
			stop = func() { srv.stop(); cleanup() }
		}
		cfg.BaseURL, cfg.ServerPID, cfg.Dir = srv.baseURL, srv.cmd.Process.Pid, srv.dir
		if cfg.Storm != nil {
			cfg.Storm.Restart = srv.restart
		}
		filters := "built-in Wasm plugins"
		switch {
		case cfg.Target != loadtest.TargetGateway:
			filters = "none"
		case *f.native && *f.pluginsDir == "":
			filters = "native (filter.Native)"
		case *f.pluginsDir != "":
			filters = "plugins of " + *f.pluginsDir + " over the built-ins"
			if *f.native {
				filters = "plugins of " + *f.pluginsDir + ", native for kinds without one"
			}
		}
		fmt.Fprintf(os.Stderr, "bench: %s server pid %d at %s (filters: %s)\n", cfg.Target, cfg.ServerPID, cfg.BaseURL, filters)
	}
	return stop, 0
}

// measure runs the load test against the prepared server and writes the report (and the plot).
func (f *benchFlags) measure(ctx context.Context, cfg loadtest.Config) int {
	if *f.quietWait > 0 {
		quiet, err := loadtest.WaitQuiet(ctx, cfg.ServerPID, 0.15, *f.quietWait, os.Stderr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		if !quiet {
			fmt.Fprintf(os.Stderr, "bench: the machine is still busy after %s; measuring anyway\n", *f.quietWait)
		}
	}
	if *f.cpuProfile != "" {
		f, err := os.Create(*f.cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	if f.rf.on() {
		return f.rf.run(ctx, cfg, *f.pluginsDir, *f.jsonOut)
	}
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if *f.plotPath != "" {
		if err := loadtest.WritePlotFile(*f.plotPath, rep); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", *f.plotPath)
	}
	if *f.jsonOut {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// spawned is a server process started by the bench.
type spawned struct {
	cmd     *exec.Cmd
	args    []string
	baseURL string
	dir     *loadtest.Directory
	tmp     string
	keep    bool
	logPath string
	exited  chan struct{}
}

// spawnOptions are what spawnServer starts.
type spawnOptions struct {
	mix      loadtest.Mix
	projects int
	bareMode string
	bareLazy bool
	keep     bool
	plugins  string
	native   bool
	// pprof, if set, is the address the spawned gateway serves its runtime profiles on.
	pprof string
	// redis, if set, is the Redis URL the spawned gateway runs with.
	redis string
	// dir is the gateway's identities; nil: generated from mix and projects.
	dir *loadtest.Directory
}

// spawnServer starts this binary's gateway (with generated identities) or
// bare server on a free loopback port and waits until it answers /healthz.
func spawnServer(ctx context.Context, target loadtest.Target, o spawnOptions) (*spawned, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "teragate-bench-")
	if err != nil {
		return nil, err
	}
	s := &spawned{tmp: tmp, keep: o.keep, logPath: filepath.Join(tmp, "server.log")}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.baseURL = "http://" + listen
	if target == loadtest.TargetBare {
		s.args = []string{"bench-bare-server", "--listen", listen, "--mode", o.bareMode}
		if o.bareLazy {
			s.args = append(s.args, "--lazy-writer")
		}
	} else if s.args, err = s.gatewayArgs(listen, o); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// gatewayArgs writes the identities and data directory of a gateway and
// returns its command line.
func (s *spawned) gatewayArgs(listen string, o spawnOptions) ([]string, error) {
	d := o.dir
	if d == nil {
		var err error
		d, err = loadtest.GenerateDirectory(loadtest.GenerateOptions{
			Users: o.mix.Users, Participants: o.mix.Participants, Devices: o.mix.Devices, Projects: o.projects,
		})
		if err != nil {
			return nil, err
		}
	}
	s.dir = d
	idPath := filepath.Join(s.tmp, "identities.yaml")
	if err := d.WriteFile(idPath); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(s.tmp, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"serve", "--insecure", "--listen", listen, "--identities", idPath, "--data", dataDir, "--log-level", "warn"}
	if o.native {
		args = append(args, "--builtin-plugins=false")
	}
	if o.pprof != "" {
		args = append(args, "--pprof", o.pprof)
	}
	if o.redis != "" {
		args = append(args, "--redis", o.redis)
	}
	if o.plugins != "" {
		abs, err := filepath.Abs(o.plugins)
		if err != nil {
			return nil, err
		}
		args = append(args, "--plugins", abs)
	}
	return args, nil
}

// start runs the server with s.args (its output appended to the log) and
// waits until it is healthy.
func (s *spawned) start(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(exe, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// The server dies with the bench even if the bench is killed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", s.args[0], err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}(s.cmd)
	if err := s.waitHealthy(ctx, 30*time.Second); err != nil {
		s.kill()
		return err
	}
	return nil
}

// restart kills the server (SIGKILL: no shutdown, no close frames) and
// starts it again on the same address with the same identities and data
// directory; it returns the new pid once the server is healthy.
func (s *spawned) restart(ctx context.Context) (int, error) {
	s.kill()
	if err := s.start(ctx); err != nil {
		return 0, err
	}
	return s.cmd.Process.Pid, nil
}

// kill stops the server with SIGKILL and waits for it.
func (s *spawned) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// waitHealthy polls GET /healthz until it answers 200.
func (s *spawned) waitHealthy(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(s.baseURL + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before it was healthy (%v); its output:\n%s", s.cmd.ProcessState, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not healthy at %s/healthz after %s; its output:\n%s", s.baseURL, timeout, s.logTail())
		}
	}
}

// stop terminates the server (SIGTERM, then SIGKILL after 10 s) and removes
// its temporary directory unless asked to keep it.
func (s *spawned) stop() {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.kill()
		}
	}
	s.cleanup()
}

func (s *spawned) cleanup() {
	if s.keep {
		fmt.Fprintf(os.Stderr, "bench: kept %s\n", s.tmp)
		return
	}
	_ = os.RemoveAll(s.tmp)
}

// logTail returns the last lines of the server's output.
func (s *spawned) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

const bareUsage = `Usage: teragate bench-bare-server [flags]

Runs the bare gorilla broadcast baseline that "teragate bench --target bare"
measures the gateway against: websocket upgrade at /ws (no authentication,
?format=proto for binary frames) and POST /api/events broadcasting the body as
one frame to every connection; GET /healthz, GET /stats.

Flags:
`

// runBareServer implements the hidden `teragate bench-bare-server`
// subcommand. It serves until SIGINT or SIGTERM and returns the exit code.
func runBareServer(args []string) int {
	fs := flag.NewFlagSet("bench-bare-server", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(fs.Output(), bareUsage)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:4041", "address to listen on")
	mode := fs.String("mode", "prepared", "writer: prepared (one PreparedMessage write per frame) or batched (several frames per write)")
	ping := fs.Duration("ping-interval", 10*time.Second, "ping interval for every connection")
	lazy := fs.Bool("lazy-writer", false, "start a connection's writer goroutine only while its queue is non-empty")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bs, err := loadtest.NewBareServer(loadtest.BareConfig{Mode: loadtest.BareMode(*mode), PingInterval: *ping, LazyWriter: *lazy})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-bare-server: %v\n", err)
		return 2
	}
	defer bs.Close()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-bare-server: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: bs, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	fmt.Fprintf(os.Stderr, "bench-bare-server: %s mode (lazy writer %v), listening on http://%s\n", *mode, *lazy, l.Addr())
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "bench-bare-server: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return 0
}

// stormOptions are the flags of a connect storm.
type stormOptions struct {
	drop, restart          *bool
	userSockets            *int
	before, after, timeout *time.Duration
	backoffMin, backoffMax *time.Duration
	resume                 *bool
}

// stormFlags declares the storm flags on fs.
func stormFlags(fs *flag.FlagSet) *stormOptions {
	return &stormOptions{
		drop:        fs.Bool("storm", false, "connect storm: --clients clients connect (devices by token, plus --storm-user-sockets sockets of one user account), events are published to every socket throughout, then every client drops its TCP connection at once (a reset, no close frame) and reconnects with sdk/client's jittered backoff (a fresh login and websocket each try); reports the time until all are back, refused logins, whether presence matches and the events delivered"),
		restart:     fs.Bool("storm-restart", false, "connect storm where the spawned gateway is killed (SIGKILL) and started again on the same port and data directory instead of the clients dropping their connections (implies --storm; not with --url)"),
		userSockets: fs.Int("storm-user-sockets", -1, "in a storm, how many of the --clients are sockets of one user account (logged in by password); the others are devices (default clients/10)"),
		before:      fs.Duration("storm-before", 3*time.Second, "in a storm, publishing time between the clients being connected and the storm"),
		after:       fs.Duration("storm-after", 3*time.Second, "in a storm, publishing time after presence matched again"),
		timeout:     fs.Duration("storm-timeout", 60*time.Second, "in a storm, longest wait for every client to be back"),
		backoffMin:  fs.Duration("storm-backoff-min", 250*time.Millisecond, "in a storm, first reconnection delay (sdk/client's default; each failure doubles it, each wait is drawn between half and all of it)"),
		backoffMax:  fs.Duration("storm-backoff-max", 30*time.Second, "in a storm, longest reconnection delay (sdk/client's default)"),
		resume:      fs.Bool("storm-resume", false, "in a storm, the clients resume: they open with resume=1, keep the last position and reconnect with since=<it>; the report adds, for them, the events expected (every event published from each client's first socket on) against those delivered, the duplicates and the ResumeFailed frames"),
	}
}

// on tells whether a storm was asked for.
func (o *stormOptions) on() bool { return *o.drop || *o.restart }

// mix returns the storm's clients: the user's sockets and devices.
func (o *stormOptions) mix(clients int) (loadtest.Mix, error) {
	users := *o.userSockets
	if users < 0 {
		users = clients / 10
	}
	if users > clients || clients <= 0 {
		return loadtest.Mix{}, fmt.Errorf("--storm-user-sockets %d of --clients %d", users, clients)
	}
	return loadtest.Mix{Users: users, Devices: clients - users}, nil
}

// config returns the storm's configuration (nil without a storm).
func (o *stormOptions) config() *loadtest.StormConfig {
	if !o.on() {
		return nil
	}
	mode := loadtest.StormDrop
	if *o.restart {
		mode = loadtest.StormRestart
	}
	return &loadtest.StormConfig{
		Mode: mode, Before: *o.before, After: *o.after, Timeout: *o.timeout,
		BackoffMin: *o.backoffMin, BackoffMax: *o.backoffMax, Resume: *o.resume,
	}
}
