package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/sdk/abi"
)

// Errors of calls and loads. Call errors wrap one of them, so the router's log says why a batch
// failed closed.
var (
	// ErrTimeout: the per-call deadline stopped the guest.
	ErrTimeout = errors.New("pluginhost: call deadline exceeded")
	// ErrTrap: the guest trapped (panic, unreachable, out of memory, out-of-bounds access).
	ErrTrap = errors.New("pluginhost: guest trapped")
	// ErrGuest: the guest returned an error (the ABI's error flag).
	ErrGuest = errors.New("pluginhost: guest error")
	// ErrForbidden: an RPC call refused because its caller may not do what it asked (see
	// [WithScope]).
	ErrForbidden = errors.New("pluginhost: forbidden")
	// ErrProtocol: the guest broke the ABI (bad pointer, oversized or undecodable result).
	ErrProtocol = errors.New("pluginhost: ABI violation")
	// ErrQuarantined: the version failed too often and is not called until a new file loads.
	ErrQuarantined = errors.New("pluginhost: plugin quarantined")
	// ErrBusy: no instance became free before the call's deadline.
	ErrBusy = errors.New("pluginhost: no free instance")
	// ErrNotLoaded: no version of the plugin is loaded.
	ErrNotLoaded = errors.New("pluginhost: plugin not loaded")
	// ErrInvalid: a plugin file was rejected at load (compile, exports, ABI version, init).
	ErrInvalid = errors.New("pluginhost: invalid plugin")
)

// Defaults of [Settings].
const (
	// DefaultFilterTimeout is the per-call deadline of filter plugins. It is wall-clock time (wazero
	// cannot measure a guest's CPU time), so it must absorb scheduling delays under load: with 10k
	// sockets connecting on 2 cores, healthy 30 µs calls of a Go guest were seen to exceed 50 ms and
	// their batches were failed closed. A looping guest costs at most this per call, and
	// quarantine stops it after MaxFailures calls.
	DefaultFilterTimeout = 500 * time.Millisecond
	// DefaultRPCTimeout is the per-call deadline of RPC plugins (and of calls of plugins that
	// export no tg_filter).
	DefaultRPCTimeout = time.Second
	// DefaultInitTimeout bounds instantiation (_initialize) plus tg_init of one instance.
	DefaultInitTimeout = 5 * time.Second
	// DefaultMaxFailures is the number of consecutive failures that quarantines a version.
	DefaultMaxFailures = 5
)

// Settings are one plugin's limits and configuration. Zero values mean the defaults.
type Settings struct {
	// Config is the blob passed to tg_init (InitRequest.config). Nil means empty.
	Config []byte
	// Timeout is the per-call deadline. Zero means [DefaultFilterTimeout] for plugins exporting
	// tg_filter and [DefaultRPCTimeout] for the others.
	Timeout time.Duration
	// MemoryPages caps each instance's linear memory, in 64 KiB pages. Zero means
	// abi.DefaultMemoryPages (64 MiB).
	MemoryPages uint32
	// PoolSize bounds the instances of a version (one is made at load, more as concurrent calls
	// need them, then kept). Zero means GOMAXPROCS+1.
	PoolSize int
	// MaxFailures consecutive failures quarantine the version. Zero means [DefaultMaxFailures].
	MaxFailures int
	// PublishTopics are the bus topic patterns (a trailing '*' matches any suffix) the plugin may
	// publish on. Nil means [DefaultPublishTopics].
	PublishTopics []string
	// OnQuarantine is what happens when a version is quarantined: [FailClosed] (the default:
	// calls fail, so a filter's batches deliver nothing, until a new file loads) or [Rollback]
	// (the version it replaced, or else the built-in of the id, serves again).
	OnQuarantine string
}

// Values of [Settings.OnQuarantine].
const (
	// FailClosed keeps a quarantined version in place; its calls fail fast.
	FailClosed = "fail_closed"
	// Rollback replaces a quarantined version by the one it replaced or by the built-in.
	Rollback = "rollback"
)

// DefaultPublishTopics are the topics a plugin may publish on unless configured otherwise: direct
// events to clients, the user manager's event and message topics and service topics. Command
// topics (module.TeraServer.TwistedModule.*, which disconnect clients) are not among them.
var DefaultPublishTopics = []string{
	topic.PatternDirect,
	topic.UserManagerEvents,
	topic.UserManagerMessages,
	topic.PatternServices,
}

func (s Settings) withDefaults(hasFilter bool) Settings {
	if s.Timeout <= 0 {
		s.Timeout = DefaultRPCTimeout
		if hasFilter {
			s.Timeout = DefaultFilterTimeout
		}
	}
	if s.MemoryPages == 0 {
		s.MemoryPages = abi.DefaultMemoryPages
	}
	if s.PoolSize <= 0 {
		s.PoolSize = runtime.GOMAXPROCS(0) + 1
	}
	if s.MaxFailures <= 0 {
		s.MaxFailures = DefaultMaxFailures
	}
	if s.PublishTopics == nil {
		s.PublishTopics = DefaultPublishTopics
	}
	if s.OnQuarantine == "" {
		s.OnQuarantine = FailClosed
	}
	return s
}

// Validate reports an invalid setting.
func (s Settings) Validate() error {
	if s.MemoryPages != 0 && (s.MemoryPages < 2 || s.MemoryPages > 65536) {
		return fmt.Errorf("memory_pages %d: want 2…65536", s.MemoryPages)
	}
	if s.Timeout < 0 || s.PoolSize < 0 || s.MaxFailures < 0 {
		return errors.New("timeout, pool_size and max_failures must not be negative")
	}
	if s.OnQuarantine != "" && s.OnQuarantine != FailClosed && s.OnQuarantine != Rollback {
		return fmt.Errorf("on_quarantine %q: want %s or %s", s.OnQuarantine, FailClosed, Rollback)
	}
	return nil
}

// Directory gives the host's directory imports the current identity snapshot
// (*directory.Store satisfies it).
type Directory interface {
	Current() *directory.Snapshot
}

// Presence answers the host's presence imports and the Rule's in_session clauses
// (*presence.Registry satisfies it).
type Presence interface {
	Online(kind directory.Kind, uuid string) bool
	Busy(kind directory.Kind, uuid string) (string, bool)
	InSession(kind directory.Kind, uuid, session string) bool
}

// Publisher puts a payload on the bus (bus.Bus satisfies it).
type Publisher interface {
	Publish(ctx context.Context, channel string, payload []byte) error
}

// RPCCaller serves the rpc_call import: args and the result are JSON (args a JSON array).
type RPCCaller interface {
	CallJSON(ctx context.Context, module, method string, argsJSON []byte) ([]byte, error)
}

// Observer receives the host's metrics (*metrics.Metrics satisfies it).
type Observer interface {
	PluginCall(id, result string, seconds float64)
	PluginLoad(id, result string)
	PluginVersion(id, hash, state string)
}

// Deps are what the host imports reach. Nil members make the matching imports answer
// [abi.HostErrFailed].
type Deps struct {
	Directory Directory
	Presence  Presence
	Publisher Publisher
	RPC       RPCCaller
}

// Config configures a [Registry].
type Config struct {
	// CacheDir is the on-disk compilation cache (<data dir>/wasm-cache). Empty means an
	// in-memory cache only.
	CacheDir string
	// Settings maps plugin ids to their settings; ids not present get the defaults.
	Settings map[string]Settings
	// Deps are the host imports' back ends.
	Deps Deps
	// Observer receives metrics; nil means none.
	Observer Observer
	// Logger is the host's logger; plugins log through Named("plugin."+id). Nil means none.
	Logger hclog.Logger
	// InitTimeout bounds instantiation plus tg_init. Zero means [DefaultInitTimeout].
	InitTimeout time.Duration
	// Debounce is the quiet time after the last file event before a reload. Zero means
	// [fswatch.DefaultDebounce].
	Debounce time.Duration
	// Builtin maps plugin ids to the modules compiled into the binary. A built-in serves its id
	// unless the plugin directory holds a valid <id>.wasm, which replaces it; removing that file
	// brings the built-in back. Reported with File [BuiltinFile].
	Builtin map[string][]byte
	// Router, if set, serves the RPC plugins: each plugin's module (InitResult.rpc_module) is
	// registered on it with the plugin's methods while a version serves, replaced on reload and
	// removed with the file; a plugin declaring a reserved module ([rpc.Router.Reserve], such as
	// OpenTera's user manager) is rejected at load with the reason. Calls from authenticated
	// callers run within their scope ([WithScope]). The rpc_call import calls through it unless
	// Deps.RPC is set.
	Router *rpc.Router
	// OnChange, if set, is called (from the loading goroutine, after the swap) whenever a
	// plugin's serving version changes; info is nil when the plugin was unloaded.
	OnChange func(id string, info *Info)
	// Share, if set, is told of the plugin directory's contents and changes ([Registry.Watch]),
	// to share them with other nodes (see [Sharer]).
	Share Sharer
	// TrimAfterRelease, if set, returns freed memory to the OS (debug.FreeOSMemory) once
	// [TrimDelay] passed without another version being released: after a reload, or a burst of
	// them, the process shrinks back to its size before them instead of keeping the freed code
	// and compilation garbage resident. The gateway sets it; tests measuring timings need not.
	TrimAfterRelease bool
}

type nopObserver struct{}

func (nopObserver) PluginCall(string, string, float64)   {}
func (nopObserver) PluginLoad(string, string)            {}
func (nopObserver) PluginVersion(string, string, string) {}
