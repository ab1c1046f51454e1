// Package pdk is the teragate plugin development kit: what a plugin author imports to write a
// filter or RPC plugin in plain Go, without pointers, memory management or protobuf runtime. The
// ABI it implements is documented in sdk/abi; the kit implements its exports once (tg_abi_version,
// tg_buffer, tg_init, tg_filter, tg_rpc) in wasip1-only files, so a plugin is just handlers:
//
//	package main
//
//	import "github.com/teragate/teragate/sdk/pdk"
//
//	func init() {
//		pdk.Info("filter.quiet-devices", "1.0.0")
//		pdk.HandleFilter(func(ev *pdk.Event) pdk.Result {
//			if d, ok := ev.DeviceEvent(); ok && d.Type == pdk.DeviceStatusChanged {
//				return pdk.Deliver(pdk.Visible(pdk.KindDevice, d.DeviceUUID).AdminsOnly())
//			}
//			return pdk.All()
//		}, pdk.KindUser)
//	}
//
//	func main() {} // a reactor: the host calls the exports
//
// built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.quiet-devices.wasm .
//
// # Filters
//
// A [FilterFunc] sees each event once per recipient kind ([Event.Kind]) and answers a [Result]: a
// delivery rule the host evaluates natively for every candidate recipient. Rules are built from
// clauses — [Visible] (the directory's access rule), [UUIDs], [InSession], [Everyone], [Admins],
// narrowed with [Clause.Except] and [Clause.AdminsOnly] — combined by [Deliver] (a recipient
// receives the event if any clause matches), or [All] and [None]. [Result.Rewrite] delivers
// another event instead; [Result.Cacheable] lets the host reuse a rule that depends only on the
// event type and topic. When no rule fits, answer [NeedRecipients] and decide per recipient in a
// [RecipientsFunc] registered with [HandleRecipients]; it costs a second call and per-recipient
// work in the guest.
//
// Events are read with cheap protowire accessors ([Event.String], [Event.Int], [Event.Strings],
// [Event.Has] …, by field number) or decoded into the small OpenTera structs
// ([Event.ParticipantEvent], [Event.JoinSessionEvent] …). The full protobuf runtime is
// deliberately absent: it costs about 14 µs per message and megabytes in a Go guest.
//
// # RPC
//
// [HandleRPC] declares a module and its methods; each [RPCFunc] takes the positional arguments
// decoded from JSON and returns a value encoded with [AppendJSON] (a reflection-free encoder).
//
// A method acts for its caller ([CurrentCaller]: the authenticated user, participant, device or
// service, or the zero Caller for a trusted service on the bus). A caller may name only the
// entities it may see: check every uuid argument with [CallerReaches] first and return an error
// wrapping [ErrForbidden] (the gateway answers 403 / "forbidden") for one it may not. The gateway
// enforces the same rule on the host functions during the call — a presence question or a
// publish about an entity beyond the caller's reach is denied and the whole call then answers
// forbidden — so a method that forgets to check cannot be used to reach further. An error a
// method returns is an answer, not a plugin failure: it never counts toward quarantine.
// plugins/rpc/sessions is the example.
//
// # Roles
//
// [HandleRole] registers a station role plugin: a [Role] with its name, instance limit
// and Start / Update / Stop / Tick handlers. A station runs one instance per role uuid, so
// package variables are that uuid's state. Each [RoleCall] carries the uuid's options (JSON,
// [RoleCall.Option]); [RoleCall.SetStatus] reports a status (the station device's status in
// presence) and [RoleCall.Run] asks the station to run an allow-listed program, whose exit code
// or signal arrives in a later Tick ([RoleCall.Exits]); [Role.Offer] takes or declines a job the
// manager offers ([RoleCall.Job], [RoleCall.JobConfig]). plugins/role/heartbeat is a sample.
//
// # Host functions
//
// [Log], the directory queries (Directory…), the presence queries ([PresenceOnline],
// [PresenceBusy], [PresenceInSession]), [Publish] and [CallRPC] call the gateway. Natively they go
// to the fakes of the test harness, sdk/pdk/pdktest, which runs the same handlers through the same
// request and result bytes without Wasm; outside a harness they return [ErrNoHost].
//
// # Errors and panics
//
// An error returned by a handler, or a panic inside one, becomes an error result (sdk/abi
// ErrorFlag) with its text, never a trap: filters then fail closed (nothing delivered for the
// batch), RPC calls answer "status": "Error".
//
// # Concurrency
//
// A Wasm instance runs one call at a time, so handlers need no locking; the host runs several
// instances in parallel, so handlers must not rely on state shared across calls (each instance has
// its own). Register handlers from init functions only. Values passed to a handler ([Event], its
// bytes, the recipients) are only valid during the call.
package pdk
