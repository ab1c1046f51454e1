//go:build wasip1

// Command role.heartbeat is a sample station role plugin: each instance (one per role
// uuid) reports a status every tick — its label, how many ticks it has seen, the plugin version —
// and, when its options name a program, asks the station to run it every `every` ticks and
// reports how the last run ended (the reference's Completed / Failed{exitCode, signal}); it takes
// a job offered while its program is idle. See
// README.md. Build it with `make plugins` (build/plugins/role.heartbeat.wasm) and drop it into the
// manager's roles directory as heartbeat.wasm.
package main

import (
	"strconv"

	"github.com/teragate/teragate/sdk/pdk"
)

// version is shown in every status; override it at build time with
// -ldflags "-X main.version=2" to see a hot reload reach the stations.
var version = "1"

// The instance's state (one Wasm instance per uuid).
var (
	label    string
	program  string
	every    = 10
	beats    int
	running  bool
	lastExit string
	jobs     int
)

func init() {
	pdk.HandleRole(pdk.Role{Name: "heartbeat", Version: version, Instances: 4,
		Start: func(c *pdk.RoleCall) error {
			configure(c)
			beats = 0
			c.SetStatus(status())
			return nil
		},
		Update: func(c *pdk.RoleCall) error {
			configure(c)
			c.SetStatus(status())
			return nil
		},
		Stop: func(c *pdk.RoleCall) error {
			c.SetStatus(`{"state": "stopped"}`)
			return nil
		},
		Tick: tick,
		// A job offer is taken when a program is configured and none is running: the program
		// runs with the job's config (JSON) as its argument, as the reference's encode role.
		Offer: func(c *pdk.RoleCall) (bool, error) {
			if program == "" || running {
				return false, nil
			}
			c.Run(c.Job, program, string(c.JobConfig))
			running = true
			return true, nil
		},
	})
}

func configure(c *pdk.RoleCall) {
	label, program, every = "", "", 10
	if v, ok := c.Option("label"); ok {
		label, _ = v.(string)
	}
	if v, ok := c.Option("program"); ok {
		program, _ = v.(string)
	}
	if v, ok := c.Option("every"); ok {
		if f, ok := v.(float64); ok && f >= 1 {
			every = int(f)
		}
	}
}

func tick(c *pdk.RoleCall) error {
	beats++
	for _, e := range c.Exits {
		running = false
		switch {
		case e.Error != "":
			lastExit = `{"job": ` + quote(e.Job) + `, "error": ` + quote(e.Error) + `}`
		case e.Completed:
			lastExit = `{"job": ` + quote(e.Job) + `, "completed": true}`
		default:
			lastExit = `{"job": ` + quote(e.Job) + `, "failed": {"exitCode": ` + strconv.Itoa(int(e.ExitCode)) +
				`, "signal": ` + strconv.Itoa(int(e.Signal)) + `}}`
		}
	}
	if program != "" && !running && beats%every == 0 {
		jobs++
		c.Run("job-"+strconv.Itoa(jobs), program, label)
		running = true
	}
	c.SetStatus(status())
	return nil
}

func status() string {
	s := `{"role": "heartbeat", "version": ` + quote(version) + `, "label": ` + quote(label) +
		`, "beats": ` + strconv.Itoa(beats)
	if lastExit != "" {
		s += `, "last_exit": ` + lastExit
	}
	return s + "}"
}

func quote(s string) string {
	b, _ := pdk.AppendJSON(nil, s)
	return string(b)
}

// main is empty: a reactor module has no main; the host calls the exports.
func main() {}
