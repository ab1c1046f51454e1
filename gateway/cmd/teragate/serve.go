package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/builtin"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/fswatch"
)

func runServe(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML config file (flags override it)")
	listen := fs.String("listen", "", "listen address (default 127.0.0.1:4040)")
	insecure := fs.Bool("insecure", false, "serve plain HTTP and ws:// instead of TLS")
	identities := fs.String("identities", "", "YAML identity file, hot-reloaded (default: embedded demo identities)")
	plugins := fs.String("plugins", "", "plugin directory, hot-reloaded; an <id>.wasm in it replaces the built-in of that id (default <data>/plugins)")
	builtins := fs.Bool("builtin-plugins", true, "serve the first-party plugins compiled into the binary (OpenTera's filters, rpc.sessions)")
	roles := fs.String("roles", "", "station role plugin directory (<role>.wasm), hot-reloaded onto the stations running the role (default <data>/roles)")
	data := fs.String("data", "", "data directory for generated state such as the TLS certificate (default ./data)")
	redis := fs.String("redis", "", "Redis URL for multi-node deployments (default: in-memory bus)")
	logLevel := fs.String("log-level", "", "trace, debug, info, warn or error (default info)")
	pprofAddr := fs.String("pprof", "", "serve Go's runtime profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060, for debugging (default: off)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// load builds the configuration: the file, then the flags given on the command line over it.
	// It runs at start and again on SIGHUP or a change of the file.
	load := func() (gateway.Config, error) {
		var cfg gateway.Config
		if *configPath != "" {
			var err error
			if cfg, err = gateway.LoadConfig(*configPath); err != nil {
				return cfg, err
			}
		}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "listen":
				cfg.Listen = *listen
			case "insecure":
				cfg.Insecure = *insecure
			case "identities":
				cfg.Identities = *identities
			case "plugins":
				cfg.Plugins = *plugins
			case "builtin-plugins":
				cfg.BuiltinPlugins = builtins
			case "roles":
				cfg.Roles = *roles
			case "data":
				cfg.DataDir = *data
			case "redis":
				cfg.Redis = *redis
			case "log-level":
				cfg.LogLevel = *logLevel
			}
		})
		cfg.Builtins = builtin.Modules()
		if cfg.Plugins == "" {
			data := cfg.DataDir
			if data == "" {
				data = gateway.DefaultDataDir
			}
			cfg.Plugins = filepath.Join(data, "plugins")
			if err := os.MkdirAll(cfg.Plugins, 0o755); err != nil {
				return cfg, fmt.Errorf("plugin directory: %w", err)
			}
		}
		return cfg, nil
	}
	var gw *gateway.Gateway
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate:", err)
		return 1
	}
	gw, err = gateway.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *pprofAddr != "" {
		if err := servePprof(ctx, *pprofAddr); err != nil {
			fmt.Fprintln(os.Stderr, "teragate:", err)
			return 1
		}
	}
	if err := gw.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "teragate:", err)
		return 1
	}
	if ready := gw.PluginsReady(); ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
		}
	}
	printBanner(gw, cfg)
	serveReloads(ctx, gw, *configPath, load)
	stop()
	fmt.Fprintln(os.Stderr, "teragate: shutting down (closing sockets with 1001)")
	sctx, cancel := context.WithTimeout(context.Background(), gw.ShutdownTimeout())
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "teragate: shutdown:", err)
		return 1
	}
	return 0
}

func printBanner(gw *gateway.Gateway, cfg gateway.Config) {
	demo := cfg.Identities == ""
	base := gw.URL()
	ws := "wss" + base[len("https"):]
	if base[:5] == "http:" {
		ws = "ws" + base[len("http"):]
	}
	fmt.Printf("teragate %s is running\n\n", version)
	fmt.Printf("  API        %s/api/…   (login: /api/user/login, /api/participant/login, /api/device/login)\n", base)
	fmt.Printf("  Websockets %s/wss/user|participant|device?id=<ticket from a login with_websocket=true>\n", ws)
	fmt.Printf("  Events     POST %s/api/events   (Authorization: OpenTera <service token>)\n", base)
	fmt.Printf("  Health     %s/healthz   Metrics %s/metrics\n", base, base)
	fmt.Printf("  Admin      %s%s   (superadmin users: live presence, rooms, stations, plugins)\n", base, gateway.AdminPath)
	if p := gw.CertificatePath(); p != "" {
		note := "reused"
		if gw.CertificateCreated() {
			note = "generated"
		}
		fmt.Printf("  TLS        self-signed certificate %s: %s (curl --cacert %s …, or -k)\n", note, p, p)
	}
	printPlugins(gw, cfg)
	fmt.Printf("  Stations   %s/wss/station (teragate station, as a device with station: true); /api/stations\n", ws)
	fmt.Printf("             drop <role>.wasm into %s: stations running the role hot-reload it\n", gw.RolesDir())
	if demo {
		fmt.Println("\nDemo logins (embedded demo identities):")
		for _, l := range directory.DemoLogins {
			cred := l.Username + " / " + l.Password
			if l.Password == "" {
				cred = "token " + l.Token
			} else if l.Token != "" {
				cred += "  (token " + l.Token + ")"
			}
			fmt.Printf("  %-12s %-58s %s\n", l.Kind, cred, l.Note)
		}
		fmt.Printf("\nTry:\n  curl -k -u alice:alice-demo '%s/api/user/login?with_websocket=true'\n", base)
	}
	fmt.Println()
}

// printPlugins says which plugins serve and where an operator drops new ones.
func printPlugins(gw *gateway.Gateway, cfg gateway.Config) {
	var active, bad []string
	for _, p := range gw.Plugins() {
		name := p.ID
		if p.File == "(built-in)" {
			name += " (built-in)"
		}
		switch {
		case p.State == "active":
			active = append(active, name)
		case p.Error != "":
			bad = append(bad, p.ID+" "+p.State+": "+p.Error)
		}
	}
	if len(active) == 0 {
		active = append(active, "none: OpenTera's filter table is compiled in (filter.Native)")
		if len(cfg.Builtins) == 0 {
			active[0] += "; this binary has no built-in plugins (build it with make)"
		}
	}
	fmt.Printf("  Plugins    %s\n", strings.Join(active, ", "))
	fmt.Printf("             drop <id>.wasm into %s to add or replace one (hot-reloaded)\n", cfg.Plugins)
	for _, b := range bad {
		fmt.Printf("  Rejected   %s\n", b)
	}
}

// serveReloads applies the configuration again on SIGHUP and when the config file changes, until
// ctx is done. A file that does not parse or validate changes nothing; the error is printed.
func serveReloads(ctx context.Context, gw *gateway.Gateway, path string, load func() (gateway.Config, error)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	changes := watchFile(ctx, path)
	for {
		var why string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-changes:
			why = "config file changed"
		}
		cfg, err := load()
		var rep gateway.ReloadReport
		if err == nil {
			rep, err = gw.Reload(cfg)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "teragate: reload (%s): %v; the running configuration is unchanged\n", why, err)
			continue
		}
		fmt.Fprintf(os.Stderr, "teragate: reload (%s): %s\n", why, rep)
	}
}

// watchFile signals changes of the file at path (written in place, chmod-ed or replaced by a
// rename), debounced, until ctx is done; watch errors are printed. An empty path or a watch that
// cannot be set up gives a channel that never fires.
func watchFile(ctx context.Context, path string) <-chan struct{} {
	out := make(chan struct{}, 1)
	if path == "" {
		return out
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "teragate: config file not watched (SIGHUP still reloads):", err)
		return out
	}
	name := filepath.Base(abs)
	started := make(chan error, 1)
	go func() {
		started <- fswatch.Run(ctx, fswatch.Config{
			Dir: filepath.Dir(abs),
			Match: func(n string) (string, bool) {
				return n, n == name
			},
			Initial: func(context.Context, []string) { started <- nil },
			Changed: func(context.Context, string) {
				if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
					return // removed, or between the steps of a replacement: nothing to load
				}
				select {
				case out <- struct{}{}:
				default:
				}
			},
			Failed: func(err error) { fmt.Fprintln(os.Stderr, "teragate: config file watch:", err) },
		})
	}()
	if err := <-started; err != nil {
		fmt.Fprintln(os.Stderr, "teragate: config file not watched (SIGHUP still reloads):", err)
	}
	return out
}
