package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/teragate/teragate/gateway/internal/builtin"
	"github.com/teragate/teragate/gateway/internal/loadtest"
)

// reloadOptions are the flags of a plugin reload run (`teragate bench --plugin-reloads`).
type reloadOptions struct {
	count    *int
	interval *time.Duration
	id       *string
	module   *string
	settle   *time.Duration
}

func reloadFlags(fs *flag.FlagSet) *reloadOptions {
	return &reloadOptions{
		count:    fs.Int("plugin-reloads", 0, "reload run: write this many new versions of a plugin into the gateway's plugin directory and report the server's RSS before, during and after (0: no reload run)"),
		interval: fs.Duration("reload-interval", 1200*time.Millisecond, "in a reload run, least time between two versions (each also waits until the previous one serves)"),
		id:       fs.String("reload-id", "filter.device", "in a reload run, the plugin id written"),
		module:   fs.String("reload-module", "", "in a reload run, the module written (default: the built-in of --reload-id)"),
		settle:   fs.Duration("reload-settle", 10*time.Second, "in a reload run, wait before the RSS samples before and after the reloads"),
	}
}

func (o *reloadOptions) on() bool { return *o.count > 0 }

// run runs the reload run against the gateway of cfg, whose plugin directory is dir.
func (o *reloadOptions) run(ctx context.Context, cfg loadtest.Config, dir string, jsonOut bool) int {
	if dir == "" || cfg.ServerPID <= 0 {
		fmt.Fprintln(os.Stderr, "bench: a reload run against --url needs --plugins (its plugin directory) and --pid")
		return 2
	}
	module := builtin.Modules()[*o.id]
	if *o.module != "" {
		b, err := os.ReadFile(*o.module)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		module = b
	}
	if len(module) == 0 {
		fmt.Fprintf(os.Stderr, "bench: no built-in module %q in this binary: give --reload-module\n", *o.id)
		return 2
	}
	token := cfg.ServiceToken
	if token == "" && cfg.Dir != nil {
		token = cfg.Dir.AdminServiceToken()
	}
	rep, err := loadtest.RunReloads(ctx, loadtest.ReloadConfig{
		BaseURL: cfg.BaseURL, AdminToken: token, InsecureSkipVerify: cfg.InsecureSkipVerify,
		PluginDir: dir, ID: *o.id, Module: module, Count: *o.count, Interval: *o.interval,
		Settle: *o.settle, ServerPID: cfg.ServerPID, Progress: os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}
