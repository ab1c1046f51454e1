// Package abi is the teragate plugin ABI, version 1: the contract between the gateway (the host,
// running wazero) and a plugin (a WebAssembly module, the guest). This documentation is the
// specification; the constants are the names and numbers it uses. The package has no
// dependencies and builds for the host and for GOOS=wasip1, so both sides import the same names.
//
// # Overview
//
// A plugin is a WASI reactor module (Go: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared;
// C: clang --target=wasm32-wasi -mexec-model=reactor). The host instantiates it a few times (a
// warm pool), calls [ExportInit] once per instance, then calls [ExportFilter] or [ExportRPC] for
// each piece of work. Every payload is a protobuf message of package teragate.plugin.v1
// (proto/plugin/v1/abi.proto); guests may decode them with protowire using the field numbers in
// that file.
//
// # Exports (guest → host)
//
//	tg_abi_version() -> i32             must return [Version]
//	tg_buffer(size i32) -> i32          pointer to a guest-owned buffer of at least size bytes
//	tg_init(len i32) -> i64             InitRequest in the buffer → InitResult
//	tg_filter(len i32) -> i64           FilterRequest → FilterResult   (filter plugins)
//	tg_rpc(len i32) -> i64              RPCCall → RPCResult            (RPC plugins)
//	_initialize()                       WASI reactor start, called by the host after instantiation
//
// A plugin exports tg_abi_version, tg_buffer, tg_init and at least one of tg_filter or tg_rpc;
// the host refuses a module that lacks them or returns another version (the old version of the
// plugin, if any, keeps serving).
//
// # Calling convention and memory ownership
//
// All memory belongs to the guest. For a call with a request of n bytes, the host:
//
//  1. calls tg_buffer(n) and gets a pointer p (the guest reuses one buffer and grows it when
//     needed; it must not allocate per call);
//  2. writes the request at [p, p+n) in the guest's memory;
//  3. calls the export with n;
//  4. decodes the returned i64 with [Unpack] into (ptr, len, failed), checks that [ptr, ptr+len)
//     lies inside the guest's memory and that len ≤ [MaxResult], and copies the result out at
//     once (before any other call into the instance).
//
// The result may live anywhere in guest memory (usually the same buffer). A result that points
// outside memory or is too large is a protocol error: the call fails and the instance is
// discarded.
//
// # Error convention
//
// The top bit of the low word ([ErrorFlag]) marks a failure: the result bytes are then a UTF-8
// error message instead of a protobuf message. A trap (panic, unreachable, out-of-bounds access,
// out of memory) is also a failure. Failures of filter calls fail closed (nothing delivered for
// that batch); failures of RPC calls become "status": "Error" replies. An instance that failed is
// never reused.
//
// Worked example of the packing: a result of 300 bytes at address 0x0001_0000 is
// 0x0001_0000_0000_012C; the same address with a 20-byte error message is
// 0x0001_0000_8000_0014.
//
// # Imports (host → guest), module "teragate"
//
//	log(level i32, ptr i32, len i32)                       a log line (levels: [LogTrace]…[LogError])
//	directory(qptr, qlen, outptr, outcap i32) -> i32       DirectoryQuery → QueryResult
//	presence(qptr, qlen, outptr, outcap i32) -> i32        PresenceQuery → QueryResult
//	publish(ptr, len i32) -> i32                           PublishRequest; 0 on success
//	rpc_call(qptr, qlen, outptr, outcap i32) -> i32        RPCRequest → RPCResult
//
// Queries write their result at [outptr, outptr+outcap) and return its length; when the result
// does not fit they write nothing and return the needed length, so the guest can retry with a
// larger buffer. A negative return is an error ([HostErrBadRequest], [HostErrDenied],
// [HostErrFailed]). Host functions never call back into the guest. Imports are optional
// capabilities: the host always provides all of them in v1.
//
// # Filters
//
// tg_filter is called once per (event, recipient kind), first without recipients. The plugin
// answers with a Rule that the host evaluates natively for every candidate (subject visibility
// by the directory's access rules, uuid lists, session membership, superadmin), or with
// need_recipients to be called again with the candidates and answer per-recipient Verdicts
// (a bitmap). Rules keep per-recipient work out of the guest: this is what makes a Wasm filter
// cost about as much as a native one. A Rule marked cacheable is reused for later events with the
// same type and subject without calling the plugin.
//
// # Role plugins
//
// A role plugin runs on a station, not in the gateway: the station agent fetches it
// from the manager by content hash and runs one instance per role uuid (instances keep state
// between calls, unlike filter and RPC instances). Besides tg_abi_version, tg_buffer and tg_init
// it exports ([FeatureRoles]):
//
//	tg_role_info(len i32) -> i64        (empty) → RoleInfo{name, instances, version}
//	tg_role_start(len i32) -> i64       RoleCall → RoleResult    a uuid starts
//	tg_role_update(len i32) -> i64      RoleCall → RoleResult    its options changed
//	tg_role_stop(len i32) -> i64        RoleCall → RoleResult    it is removed or replaced
//	tg_role_tick(len i32) -> i64        RoleCall → RoleResult    periodically while it runs
//	tg_role_offer(len i32) -> i64       RoleCall → RoleResult    a job is offered (optional)
//
// RoleCall carries the role, the uuid, the options (JSON) and the station's clock; a tick also
// carries the programs of this instance that ended (ProgramExit: completed, exit code,
// signal); an offer carries the job's id and config (JSON), and RoleResult.accepted takes it (the
// reference's StartEncodeRequest → {accepted}). RoleResult may set the instance's status (JSON text, reported to the manager and
// shown as the station device's status in presence) and ask the station to run programs. A role
// reaches the outside only through such capabilities, which the station's own config grants
// (an allow-list of programs by name); everything else it imports is denied (directory,
// presence, publish and rpc_call answer [HostErrDenied] on a station). When a role's plugin
// changes (a new hash pushed), the station calls tg_role_stop on the old instance and
// tg_role_start on a new instance of the new module with the same uuid and options. A failed
// call (trap, timeout, error result) discards the instance; the station starts a new one with
// backoff and reports it.
//
// # Limits the host enforces
//
// Per plugin: a memory limit (default [DefaultMemoryPages] pages of 64 KiB), a per-call deadline
// (a guest stuck in a loop is stopped), a pool of warm instances; an instance that traps or times
// out is discarded, and a plugin that fails repeatedly is quarantined.
//
// # Versioning
//
// [Version] changes only for incompatible changes. New optional exports or imports are announced
// with [Feature] flags, never by changing the meaning of an existing name.
package abi
