package pdk

import (
	"slices"

	"github.com/teragate/teragate/sdk/pdk/internal/hook"
)

// Role is a role plugin's factory and lifecycle (the conference manager's RoleFactory
// and Role). A station runs one Wasm instance per role uuid, so package-level variables are
// per-instance state. Each handler may set the instance's status and ask for programs through
// its [RoleCall]; a returned error (or a panic) fails the call: the station discards the
// instance and starts a new one with backoff.
type Role struct {
	// Name is the role's configuration key ("encode", "monitoring"); required.
	Name string
	// Version is shown in the admin API.
	Version string
	// Instances is the most uuids of this role a station may run; 0 means unlimited.
	Instances int
	// Start runs when the uuid starts (also after a plugin swap, with the same options).
	Start func(c *RoleCall) error
	// Update runs when the uuid's options changed. Nil means Stop then Start.
	Update func(c *RoleCall) error
	// Stop runs when the uuid is removed, or before its plugin is replaced.
	Stop func(c *RoleCall) error
	// Tick runs periodically (every second by default) while the uuid runs; c.Exits lists the
	// programs that ended since the last call.
	Tick func(c *RoleCall) error
	// Offer decides whether the instance takes a job (c.Job, c.JobConfig); it usually runs a
	// program for it with [RoleCall.Run] under the job's id. Nil declines every offer.
	Offer func(c *RoleCall) (bool, error)
}

// RoleCall is one lifecycle call of a role instance. It is only valid during the call.
type RoleCall struct {
	// Role and UUID name the instance.
	Role, UUID string
	// Options is the instance's options, a JSON object (see [RoleCall.Option]).
	Options []byte
	// NowMS is the station's clock in milliseconds since the Unix epoch.
	NowMS int64
	// Exits are the programs of this instance that ended since the last call (Tick only).
	Exits []ProgramExit
	// Job and JobConfig (a JSON object) are the job offered (Offer only).
	Job       string
	JobConfig []byte

	status    string
	hasStatus bool
	accepted  bool
	run       []runRequest
}

// ProgramExit is how a program the role asked for ended: the reference's Completed (exit code
// 0) or Failed{exitCode, signal}.
type ProgramExit struct {
	// Job is the id given to [RoleCall.Run].
	Job string
	// Program is the program's allow-listed name.
	Program string
	// Completed is true when it exited with code 0.
	Completed bool
	// ExitCode is its exit code (-1 when killed by a signal).
	ExitCode int32
	// Signal is the signal that killed it, 0 if none.
	Signal int32
	// Error is why it did not run ("program not allowed"); empty when it ran.
	Error string
}

type runRequest struct {
	job, program string
	args         []string
}

// SetStatus sets the instance's status, JSON text (an object is best: it becomes part of the
// station device's status in presence).
func (c *RoleCall) SetStatus(json string) { c.status, c.hasStatus = json, true }

// Run asks the station to start program (its allow-listed name, not a path) with args. The
// program runs outside the guest; how it ended arrives in a later Tick's Exits under job.
// A program the station does not allow ends at once with an Error.
func (c *RoleCall) Run(job, program string, args ...string) {
	c.run = append(c.run, runRequest{job: job, program: program, args: slices.Clone(args)})
}

// Option returns the option name decoded from JSON (string, float64, bool, nil, []any,
// map[string]any); false when absent or when the options are not a JSON object.
func (c *RoleCall) Option(name string) (any, bool) {
	if len(c.Options) == 0 {
		return nil, false
	}
	v, err := ParseJSON(c.Options)
	if err != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	x, ok := m[name]
	return x, ok
}

// HandleRole registers the plugin's role. Call it from the plugin's init function:
//
//	func init() {
//		pdk.HandleRole(pdk.Role{Name: "heartbeat", Instances: 1,
//			Start: func(c *pdk.RoleCall) error { c.SetStatus(`{"state": "started"}`); return nil },
//		})
//	}
func HandleRole(r Role) { reg.role = &r }

func init() {
	hook.RoleInfo = dispatchRoleInfo
	hook.RoleStart = roleEntry(func(r *Role) func(*RoleCall) error { return r.Start })
	hook.RoleUpdate = roleEntry(func(r *Role) func(*RoleCall) error {
		if r.Update != nil {
			return r.Update
		}
		return func(c *RoleCall) error { // Stop then Start, as documented
			if r.Stop != nil {
				if err := r.Stop(c); err != nil {
					return err
				}
			}
			if r.Start != nil {
				return r.Start(c)
			}
			return nil
		}
	})
	hook.RoleStop = roleEntry(func(r *Role) func(*RoleCall) error { return r.Stop })
	hook.RoleTick = roleEntry(func(r *Role) func(*RoleCall) error { return r.Tick })
	hook.RoleOffer = roleEntry(func(r *Role) func(*RoleCall) error {
		if r.Offer == nil {
			return nil // declined
		}
		return func(c *RoleCall) error {
			ok, err := r.Offer(c)
			c.accepted = ok && err == nil
			return err
		}
	})
}

// dispatchRoleInfo serves tg_role_info: → RoleInfo.
func dispatchRoleInfo([]byte) (res []byte, failed bool) {
	defer guard(&res, &failed)
	if reg.role == nil {
		return fail(ErrNoHandler)
	}
	b := appendString(out[:0], 1, reg.role.Name)
	if reg.role.Instances > 0 {
		b = appendVarint(b, 2, uint64(reg.role.Instances))
	}
	b = appendString(b, 3, reg.role.Version)
	out = b
	return out, false
}

var roleCall RoleCall

// roleEntry builds the body of one lifecycle export: RoleCall → handler → RoleResult. A nil
// handler is a successful no-op.
func roleEntry(pick func(r *Role) func(*RoleCall) error) hook.Entry {
	return func(req []byte) (res []byte, failed bool) {
		defer guard(&res, &failed)
		if reg.role == nil {
			return fail(ErrNoHandler)
		}
		c := &roleCall
		*c = RoleCall{Exits: c.Exits[:0], run: c.run[:0]}
		ok := walk(req, func(f *field) {
			switch f.num {
			case 1:
				c.Role = string(f.b)
			case 2:
				c.UUID = string(f.b)
			case 3:
				c.Options = f.b
			case 4:
				c.NowMS = int64(f.v)
			case 5:
				var e ProgramExit
				walk(f.b, func(g *field) {
					switch g.num {
					case 1:
						e.Job = string(g.b)
					case 2:
						e.Program = string(g.b)
					case 3:
						e.Completed = g.v != 0
					case 4:
						e.ExitCode = int32(g.v)
					case 5:
						e.Signal = int32(g.v)
					case 6:
						e.Error = string(g.b)
					}
				})
				c.Exits = append(c.Exits, e)
			case 6:
				c.Job = string(f.b)
			case 7:
				c.JobConfig = f.b
			}
		})
		if !ok {
			return fail(ErrBadRequest)
		}
		if fn := pick(reg.role); fn != nil {
			if err := fn(c); err != nil {
				return fail(err)
			}
		}
		b := out[:0]
		b = appendString(b, 1, c.status)
		b = appendBool(b, 2, c.hasStatus)
		b = appendBool(b, 4, c.accepted)
		for _, r := range c.run {
			b = appendMessage(b, 3, func(b []byte) []byte {
				b = appendString(b, 1, r.job)
				b = appendString(b, 2, r.program)
				return appendStrings(b, 3, r.args)
			})
		}
		out = b
		return out, false
	}
}
