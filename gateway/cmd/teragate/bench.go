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

Flags:
`

// runBench implements `teragate bench`. It returns the process exit code:
// 0 on success, 1 when the run failed, 2 on bad flags.
func runBench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	var (
		target       = fs.String("target", "gateway", "what to measure: gateway or bare (the bare gorilla broadcast baseline)")
		baseURL      = fs.String("url", "", "base URL of a running server (e.g. http://127.0.0.1:4040); empty: start one")
		skipVerify   = fs.Bool("tls-skip-verify", false, "with an https --url, accept any certificate (the gateway's self-signed default)")
		pid          = fs.Int("pid", 0, "pid of the server at --url, for its CPU and RSS figures")
		clients      = fs.Int("clients", 1000, "number of websocket clients")
		types        = fs.String("types", "user,participant,device", "client type mix: comma-separated user, participant, device, each with an optional :weight")
		format       = fs.String("format", "json", "frame format the clients ask for: json (OpenTera text frames) or proto (?format=proto)")
		rate         = fs.Float64("rate", 0, "offered load in events per second (instead of --deliveries)")
		deliveries   = fs.Float64("deliveries", 0, "offered load in deliveries per second (default 50000 when --rate is not set)")
		duration     = fs.Duration("duration", 20*time.Second, "measured publishing time")
		warmup       = fs.Duration("warmup", 3*time.Second, "publishing time before measurement starts")
		event        = fs.String("event", "stop", "event published: stop (StopSessionEvent, reaches every socket) or participant (ParticipantEvent, filtered by project and links)")
		bareMode     = fs.String("bare-mode", "prepared", "bare server writer: prepared (one write per frame) or batched (several frames per write)")
		bareLazy     = fs.Bool("bare-lazy-writer", false, "bare server starts a connection's writer goroutine only while its queue is non-empty (no parked writer per idle connection)")
		idle         = fs.Bool("idle", false, "idle mode: connect, wait --idle-wait, report server RSS per connection")
		idleWait     = fs.Duration("idle-wait", 25*time.Second, "how long idle mode waits (two 10 s ping rounds by default)")
		jsonOut      = fs.Bool("json", false, "print the report as JSON")
		connectRate  = fs.Float64("connect-rate", 2000, "clients started per second (0: no limit but --connect-concurrency; the default with --connect-only)")
		connectOnly  = fs.Bool("connect-only", false, "connect-only mode: open the clients as fast as --connect-concurrency allows, wait for the presence traffic to settle, report opens/s and CPU per open")
		userLogin    = fs.String("user-login", "password", "how user clients log in: password (HTTP Basic, one bcrypt check each) or token (each user logs in once by password before the clock starts, then with its user_token JWT, as the \"token login\" figure means)")
		connectConc  = fs.Int("connect-concurrency", 100, "logins and websocket handshakes in flight")
		publishers   = fs.Int("publishers", 4, "concurrent publishing connections")
		projects     = fs.Int("projects", 0, "projects in the generated identities, users, participants and devices spread over them (0: clients/100, at least 10, so every project has about 100 entities whatever the scale)")
		serviceToken = fs.String("service-token", "", "service token for POST /api/events (with --url; default: the admin service of --identities)")
		identities   = fs.String("identities", "", "identity file the gateway at --url runs with (tokens and users are read from it)")
		pluginsDir   = fs.String("plugins", "", "plugin directory for the spawned gateway (its files replace the built-in plugins of the same id)")
		native       = fs.Bool("native", false, "run the spawned gateway with --builtin-plugins=false: OpenTera's table in native Go (filter.Native), the baseline of the Wasm filters")
		userPassword = fs.String("user-password", "", "clear password of the users in --identities (default: the bench's generated password)")
		settle       = fs.Duration("settle", 120*time.Second, "longest wait after connecting for the server's presence events to stop")
		quietWait    = fs.Duration("quiet-wait", 0, "before measuring, wait up to this long for other processes to use < 0.15 cores (0: don't wait); the report's \"other cpu\" line shows how busy the machine was")
		cpuProfile   = fs.String("cpuprofile", "", "write the bench process's own CPU profile (the load clients) to this file")
		keep         = fs.Bool("keep", false, "keep the spawned server's temporary directory (identities, data, log)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	mix, err := loadtest.ParseMix(*types, *clients)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: --types: %v\n", err)
		return 2
	}
	if *projects <= 0 {
		*projects = max(10, *clients/100)
	}
	if *rate <= 0 && *deliveries <= 0 {
		*deliveries = 50000
	}
	cfg := loadtest.Config{
		Target: loadtest.Target(*target), BaseURL: *baseURL, ServiceToken: *serviceToken,
		Clients: mix, Format: loadtest.Format(*format), Event: loadtest.EventKind(*event),
		Rate: *rate, Deliveries: *deliveries, Duration: *duration, Warmup: *warmup,
		Idle: *idle, IdleWait: *idleWait, ConnectRate: *connectRate, ConnectConcurrency: *connectConc,
		Publishers: *publishers, Settle: *settle, ServerPID: *pid, Progress: os.Stderr,
		InsecureSkipVerify: *skipVerify,
	}
	if *rate > 0 {
		cfg.Deliveries = 0
	}
	cfg.ConnectOnly = *connectOnly
	cfg.UserLogin = loadtest.UserLogin(*userLogin)
	rateSet := false
	fs.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "connect-rate" })
	if *connectRate <= 0 || *connectOnly && !rateSet {
		cfg.ConnectRate = -1 // no limit
	}
	switch cfg.Target {
	case loadtest.TargetGateway:
	case loadtest.TargetBare:
		if m := loadtest.BareMode(*bareMode); m != loadtest.BarePrepared && m != loadtest.BareBatched {
			fmt.Fprintf(os.Stderr, "bench: --bare-mode must be prepared or batched, not %q\n", *bareMode)
			return 2
		}
		cfg.BareMode = loadtest.BareMode(*bareMode)
		if *bareLazy {
			cfg.BareMode += "+lazy-writer"
		}
	default:
		fmt.Fprintf(os.Stderr, "bench: --target must be gateway or bare, not %q\n", *target)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.BaseURL != "" {
		if cfg.Target == loadtest.TargetGateway {
			if *identities == "" {
				fmt.Fprintln(os.Stderr, "bench: --url with --target gateway needs --identities (the gateway's identity file)")
				return 2
			}
			d, err := loadtest.LoadDirectory(*identities, *userPassword)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %v\n", err)
				return 1
			}
			cfg.Dir = d
		}
	} else {
		srv, err := spawnServer(ctx, cfg, mix, *projects, *bareMode, *bareLazy, *keep, *pluginsDir, *native)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer srv.stop()
		cfg.BaseURL, cfg.ServerPID, cfg.Dir = srv.baseURL, srv.cmd.Process.Pid, srv.dir
		filters := "built-in Wasm plugins"
		switch {
		case cfg.Target != loadtest.TargetGateway:
			filters = "none"
		case *native && *pluginsDir == "":
			filters = "native (filter.Native)"
		case *pluginsDir != "":
			filters = "plugins of " + *pluginsDir + " over the built-ins"
			if *native {
				filters = "plugins of " + *pluginsDir + ", native for kinds without one"
			}
		}
		fmt.Fprintf(os.Stderr, "bench: %s server pid %d at %s (filters: %s)\n", cfg.Target, cfg.ServerPID, cfg.BaseURL, filters)
	}

	if *quietWait > 0 {
		quiet, err := loadtest.WaitQuiet(ctx, cfg.ServerPID, 0.15, *quietWait, os.Stderr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		if !quiet {
			fmt.Fprintf(os.Stderr, "bench: the machine is still busy after %s; measuring anyway\n", *quietWait)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
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
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if *jsonOut {
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
	baseURL string
	dir     *loadtest.Directory
	tmp     string
	keep    bool
	logPath string
	exited  chan struct{}
}

// spawnServer starts this binary's gateway (with generated identities) or
// bare server on a free loopback port and waits until it answers /healthz.
func spawnServer(ctx context.Context, cfg loadtest.Config, mix loadtest.Mix, projects int, bareMode string, bareLazy, keep bool, plugins string, native bool) (*spawned, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "teragate-bench-")
	if err != nil {
		return nil, err
	}
	s := &spawned{tmp: tmp, keep: keep, logPath: filepath.Join(tmp, "server.log"), exited: make(chan struct{})}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.baseURL = "http://" + listen
	var args []string
	if cfg.Target == loadtest.TargetBare {
		args = []string{"bench-bare-server", "--listen", listen, "--mode", bareMode}
		if bareLazy {
			args = append(args, "--lazy-writer")
		}
	} else {
		d, err := loadtest.GenerateDirectory(loadtest.GenerateOptions{
			Users: mix.Users, Participants: mix.Participants, Devices: mix.Devices, Projects: projects,
		})
		if err != nil {
			s.cleanup()
			return nil, err
		}
		s.dir = d
		idPath := filepath.Join(tmp, "identities.yaml")
		if err := d.WriteFile(idPath); err != nil {
			s.cleanup()
			return nil, err
		}
		dataDir := filepath.Join(tmp, "data")
		if err := os.Mkdir(dataDir, 0o700); err != nil {
			s.cleanup()
			return nil, err
		}
		args = []string{"serve", "--insecure", "--listen", listen, "--identities", idPath, "--data", dataDir, "--log-level", "warn"}
		if native {
			args = append(args, "--builtin-plugins=false")
		}
		if plugins != "" {
			abs, err := filepath.Abs(plugins)
			if err != nil {
				s.cleanup()
				return nil, err
			}
			args = append(args, "--plugins", abs)
		}
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.cmd = exec.Command(exe, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// The server dies with the bench even if the bench is killed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = logf.Close()
		s.cleanup()
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	go func() {
		_ = s.cmd.Wait()
		_ = logf.Close()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx, 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
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
			_ = s.cmd.Process.Kill()
			<-s.exited
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
