package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"gopkg.in/yaml.v3"

	"github.com/teragate/teragate/sdk/station"
)

func runStation(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return stationMain(ctx, args, os.Stderr)
}

// stationFile is the station config file (every key also a flag; flags win).
type stationFile struct {
	URL          string            `yaml:"url"`
	Token        string            `yaml:"token"`
	CACert       string            `yaml:"cacert"`
	Insecure     bool              `yaml:"insecure_skip_verify"`
	State        string            `yaml:"state"`
	Hostname     string            `yaml:"hostname"`
	BlockedRoles []string          `yaml:"blocked_roles"`
	Programs     map[string]string `yaml:"programs"`
	Tick         string            `yaml:"tick"`
	CallTimeout  string            `yaml:"call_timeout"`
	LogLevel     string            `yaml:"log_level"`
}

// listFlag collects a repeatable (or comma-separated) flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// stationMain is `teragate station`: the station agent (sdk/station) until ctx is done.
func stationMain(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("station", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: teragate station [flags]

Runs a station agent: logs in to the gateway as a station device (a device with station: true
in the identity file), opens /wss/station, registers, and runs the role plugins the manager
configures (role → uuid → options, edited with PUT/PATCH /api/stations/<uuid>/roles), swapping
them when the manager's roles directory changes. Reconnects with backoff. Example:
  teragate station -k --url https://127.0.0.1:4040 --token $STATION_TOKEN --state ./station-data \
    --block mixer --program encode=/usr/local/bin/encode.sh

Flags (each also a key of the --config YAML file: url, token, cacert, insecure_skip_verify, state,
hostname, blocked_roles, programs, tick, call_timeout, log_level):
`)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "station config file (YAML)")
	url := fs.String("url", "https://127.0.0.1:4040", "gateway base URL")
	token := fs.String("token", os.Getenv("TERAGATE_TOKEN"), "the station device's token (default $TERAGATE_TOKEN)")
	cacert := fs.String("cacert", "", "PEM certificate to trust (e.g. data/tls/cert.pem of a self-signed gateway)")
	insecureTLS := fs.Bool("k", false, "do not verify the server certificate")
	state := fs.String("state", "station-data", "state directory: applied role config, role plugin cache, compilation cache")
	hostname := fs.String("hostname", "", "hostname to report (default: the machine's)")
	var blocked, programs listFlag
	fs.Var(&blocked, "block", "a role this station refuses (repeatable or comma-separated)")
	fs.Var(&programs, "program", "name=path of a program roles may run (repeatable)")
	tick := fs.Duration("tick", time.Second, "time between role ticks")
	callTimeout := fs.Duration("call-timeout", 2*time.Second, "deadline of each role plugin call")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	file, err := readStationFile(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "teragate station: config:", err)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(name, flagVal, fileVal string) string {
		if set[name] || fileVal == "" {
			return flagVal
		}
		return fileVal
	}
	cfg := agentConfig{Config: station.Config{
		URL:                pick("url", *url, file.URL),
		Token:              pick("token", *token, file.Token),
		InsecureSkipVerify: *insecureTLS || file.Insecure,
		StateDir:           pick("state", *state, file.State),
		Hostname:           pick("hostname", *hostname, file.Hostname),
		BlockedRoles:       append(file.BlockedRoles, blocked...),
		Programs:           map[string]string{},
		TickInterval:       *tick,
		CallTimeout:        *callTimeout,
	}, cacert: pick("cacert", *cacert, file.CACert)}
	if err := cfg.mergeStationFile(file, programs, set); err != nil {
		fmt.Fprintln(stderr, "teragate station:", err)
		return 2
	}
	if cfg.Token == "" {
		fmt.Fprintln(stderr, "teragate station: a token is required (--token or $TERAGATE_TOKEN)")
		return 2
	}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "station", Level: hclog.LevelFromString(pick("log-level", *logLevel, file.LogLevel)), Output: stderr})
	a, err := station.New(cfg.Config)
	if err != nil {
		fmt.Fprintln(stderr, "teragate station:", err)
		return 1
	}
	cfg.Logger.Info("station agent starting", "url", cfg.URL, "state", cfg.StateDir, "blocked_roles", cfg.BlockedRoles)
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "teragate station:", err)
		return 1
	}
	return 0
}

// readStationFile reads the --config YAML file (none: the zero stationFile). Unknown keys are
// errors.
func readStationFile(path string) (stationFile, error) {
	var file stationFile
	if path == "" {
		return file, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return file, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return file, err
	}
	return file, nil
}

// agentConfig is the agent's configuration being assembled from the flags and the config file.
type agentConfig struct {
	station.Config
	cacert string // the PEM file to trust, from --cacert or the file
}

// mergeStationFile completes the configuration with the programs (the file's, then the
// --program flags), the durations the file sets and no flag overrides (set: the flags given),
// and the certificate to trust.
func (cfg *agentConfig) mergeStationFile(file stationFile, programs listFlag, set map[string]bool) error {
	for k, v := range file.Programs {
		cfg.Programs[k] = v
	}
	for _, p := range programs {
		name, path, ok := strings.Cut(p, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("--program %q: want name=path", p)
		}
		cfg.Programs[name] = path
	}
	for name, f := range map[string]struct {
		s string
		d *time.Duration
	}{"tick": {file.Tick, &cfg.TickInterval}, "call-timeout": {file.CallTimeout, &cfg.CallTimeout}} {
		if f.s != "" && !set[name] {
			d, err := time.ParseDuration(f.s)
			if err != nil {
				return fmt.Errorf("config %s: %w", name, err)
			}
			*f.d = d
		}
	}
	if cfg.cacert != "" {
		pem, err := os.ReadFile(cfg.cacert)
		if err != nil {
			return err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("no certificate in %s", cfg.cacert)
		}
	}
	return nil
}
