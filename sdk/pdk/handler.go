package pdk

import (
	"errors"
	"slices"
)

// FilterFunc decides who receives an event by returning a rule (see [Result]). It is called once
// per event and recipient kind, never per recipient.
type FilterFunc func(ev *Event) Result

// RecipientsFunc decides for each recipient after the [FilterFunc] answered [NeedRecipients]: it
// returns one [Verdict] per recipient, in order.
type RecipientsFunc func(ev *Event, rs []Recipient) []Verdict

// RPCFunc serves one RPC method. args are the positional arguments as decoded JSON (string,
// float64, bool, nil, []any, map[string]any); the return value is encoded with [AppendJSON].
// A returned error becomes an error reply.
type RPCFunc func(args []any) (any, error)

// ConfigFunc receives the plugin's id and its configuration blob from the gateway config, once
// per instance before any other call. A returned error fails the plugin's load.
type ConfigFunc func(pluginID string, config []byte) error

// registry holds what the plugin registered, normally from its package init.
type registry struct {
	name, version string
	kinds         []Kind
	filter        FilterFunc
	recipients    RecipientsFunc
	rpcModule     string
	rpc           map[string]RPCFunc
	config        ConfigFunc
	role          *Role

	pluginID  string
	configRaw []byte
}

var reg registry

// Info sets the plugin's human-readable name and version, shown in the admin API.
func Info(name, version string) { reg.name, reg.version = name, version }

// HandleFilter registers the plugin's filter for the given recipient kinds (all of user,
// participant and device when none is given). Call it from the plugin's init function:
//
//	func init() {
//		pdk.HandleFilter(func(ev *pdk.Event) pdk.Result {
//			if ev.Type == pdk.TypeStopSessionEvent {
//				return pdk.All().Cacheable()
//			}
//			return pdk.None()
//		}, pdk.KindUser)
//	}
func HandleFilter(fn FilterFunc, kinds ...Kind) {
	reg.filter = fn
	reg.kinds = slices.Clone(kinds)
}

// HandleRecipients registers the per-recipient decision, used when the [FilterFunc] answers
// [NeedRecipients] (or for every event when no FilterFunc is registered).
func HandleRecipients(fn RecipientsFunc) { reg.recipients = fn }

// HandleRPC registers the plugin's RPC module and its methods: the gateway serves them on
// module.<module>.rpc and POST /api/rpc/<module>.
func HandleRPC(module string, methods map[string]RPCFunc) {
	reg.rpcModule = module
	reg.rpc = methods
}

// HandleConfig registers the function that receives the plugin's configuration.
func HandleConfig(fn ConfigFunc) { reg.config = fn }

// PluginID returns the id the host loaded the plugin as (e.g. "filter.user"); empty before init.
func PluginID() string { return reg.pluginID }

// Config returns the plugin's configuration blob (nil when none); do not modify it.
func Config() []byte { return reg.configRaw }

// Errors of the dispatch, returned to the host as error results.
var (
	// ErrNoHandler: the host called an entry point the plugin registered no handler for.
	ErrNoHandler = errors.New("pdk: no handler registered")
	// ErrBadRequest: the host's request did not decode.
	ErrBadRequest = errors.New("pdk: malformed request")
	// ErrVerdicts: a RecipientsFunc returned the wrong number of verdicts.
	ErrVerdicts = errors.New("pdk: one verdict per recipient required")
	// ErrUnknownMethod: an RPC call named a method the plugin does not serve.
	ErrUnknownMethod = errors.New("pdk: unknown method")
)

// Registration is an opaque copy of the registered handlers (see [Registered] and [Restore]).
type Registration struct{ r registry }

// Registered returns a copy of the handlers registered so far. Test harnesses use it with
// [Restore]; plugins have no reason to.
func Registered() Registration { return Registration{reg} }

// Restore replaces the registered handlers with a copy taken by [Registered].
func Restore(r Registration) { reg = r.r }
