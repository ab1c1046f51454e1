// Package pluginhost runs teragate's WebAssembly plugins (ABI v1, sdk/abi) with wazero: it loads
// and hot-reloads them from a directory, keeps warm instance pools, enforces per-call deadlines
// and memory limits, quarantines plugins that keep failing, and adapts filter plugins to
// [filter.Filter] and RPC plugins to plain calls.
//
// It does not decide what a plugin may do beyond the ABI (the gateway wires the host imports to
// its directory, presence registry, bus and RPC router through the [Deps] interfaces), and it does
// not route events or RPCs itself.
//
// # Versions
//
// A [Registry] maps a plugin id ("filter.user", "rpc.sessions") to its serving version through an
// atomic pointer. A version owns one wazero runtime (so it has its own memory limit; every runtime
// shares the on-disk compilation cache), the compiled module, the InitResult, a bounded pool of
// warm instances and a reference count. A call pins the version for its duration; a reload swaps
// the pointer and the old version closes when its last call returns. An invalid file never
// replaces a serving version.
//
// # Calls and failures
//
// A call takes an instance from the pool (waiting with the caller's context when all are busy),
// runs the export under a per-call deadline, and returns the instance. A call that waits for an
// instance being made (a cold version compiling for its first call, a new instance's init) waits
// up to the init timeout even past the caller's deadline, so a filter's first call after start
// delays its event rather than dropping it; only the caller's cancellation ends that wait early. A looping guest is stopped:
// modules are rewritten by wasmguard to call the host's tick, which ends a call whose context is
// done, every ~16,384 units of work (a module the rewriter refuses runs under wazero's
// WithCloseOnContextDone instead; [Info].Deadline says which). An instance that trapped, timed out, reported an
// error or returned an out-of-range or oversized result is closed and replaced in the background,
// never reused. After MaxFailures consecutive failures the version is quarantined: calls fail fast
// (closed) until a new file (or the same file touched again) loads. With OnQuarantine [Rollback]
// the host instead rolls back to the version it replaced, if that one never was quarantined, or
// else to the built-in of the id ([Config.Builtin]); the admin API shows the rollback as the
// plugin's last error.
//
// # Filters
//
// [Registry.Filter] returns a [filter.Filter] for one connection kind. It calls tg_filter once per
// (event, kind) without recipients and evaluates the returned Rule natively for every recipient;
// only when the plugin asks for them does it call again with the recipients and apply the
// per-recipient Verdicts. Cacheable rules are kept per (version, kind, topic, event type, subject)
// and dropped on reload and on directory reload. Any failure is returned (the router fails the
// batch closed). When no plugin serves a kind, the fallback filter (the native table) decides.
//
// # Concurrency
//
// Everything is safe for concurrent use. Instances are never shared: a pool hands each to one
// call at a time. Lock order: plugin.loadMu (serialises loads of one id) before Registry.mu
// (the id → plugin map) before plugin.smu (admin state). A call takes none of them: only the
// version's pool counter mutex and the rule cache's RWMutex, each held for a few instructions.
package pluginhost
