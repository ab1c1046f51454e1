package abi

// Version is the ABI version this package describes; tg_abi_version must return it.
const Version = 1

// ImportModule is the module name of the host functions.
const ImportModule = "teragate"

// Export names.
const (
	// ExportABIVersion is tg_abi_version() -> i32.
	ExportABIVersion = "tg_abi_version"
	// ExportBuffer is tg_buffer(size i32) -> i32.
	ExportBuffer = "tg_buffer"
	// ExportInit is tg_init(len i32) -> i64.
	ExportInit = "tg_init"
	// ExportFilter is tg_filter(len i32) -> i64.
	ExportFilter = "tg_filter"
	// ExportRPC is tg_rpc(len i32) -> i64.
	ExportRPC = "tg_rpc"
	// ExportInitialize is the WASI reactor's _initialize().
	ExportInitialize = "_initialize"
)

// Role plugin exports: a role plugin runs on a station, one instance per role uuid.
// Each takes the request length like [ExportFilter] and returns a packed result; the payloads are
// teragate.plugin.v1 RoleCall → RoleResult (proto/plugin/v1/role.proto), except
// [ExportRoleInfo], which answers RoleInfo. A role plugin exports all five next to
// [ExportABIVersion], [ExportBuffer] and [ExportInit]; see the "Role plugins" section of the
// package documentation.
const (
	// ExportRoleInfo is tg_role_info(len i32) -> i64: (empty request) → RoleInfo.
	ExportRoleInfo = "tg_role_info"
	// ExportRoleStart is tg_role_start(len i32) -> i64: RoleCall → RoleResult.
	ExportRoleStart = "tg_role_start"
	// ExportRoleUpdate is tg_role_update(len i32) -> i64: RoleCall → RoleResult.
	ExportRoleUpdate = "tg_role_update"
	// ExportRoleStop is tg_role_stop(len i32) -> i64: RoleCall → RoleResult.
	ExportRoleStop = "tg_role_stop"
	// ExportRoleTick is tg_role_tick(len i32) -> i64: RoleCall → RoleResult.
	ExportRoleTick = "tg_role_tick"
	// ExportRoleOffer is tg_role_offer(len i32) -> i64: RoleCall (with job and job_config) →
	// RoleResult (accepted). Optional: a role without it declines every job offer.
	ExportRoleOffer = "tg_role_offer"
)

// RoleExports returns the exports every role plugin must have (a new slice each call): the
// base ABI's [ExportABIVersion], [ExportBuffer] and [ExportInit] and the five role exports.
// [ExportRoleOffer] is optional. The manager checks a role file against this list before it
// serves it, the station agent before it runs it.
func RoleExports() []string {
	return []string{ExportABIVersion, ExportBuffer, ExportInit, ExportRoleInfo,
		ExportRoleStart, ExportRoleUpdate, ExportRoleStop, ExportRoleTick}
}

// Import names, in module [ImportModule].
const (
	// ImportLog is log(level i32, ptr i32, len i32).
	ImportLog = "log"
	// ImportDirectory is directory(qptr, qlen, outptr, outcap i32) -> i32.
	ImportDirectory = "directory"
	// ImportPresence is presence(qptr, qlen, outptr, outcap i32) -> i32.
	ImportPresence = "presence"
	// ImportPublish is publish(ptr, len i32) -> i32.
	ImportPublish = "publish"
	// ImportRPCCall is rpc_call(qptr, qlen, outptr, outcap i32) -> i32.
	ImportRPCCall = "rpc_call"
)

// Log levels of the log import.
const (
	LogTrace = 0
	LogDebug = 1
	LogInfo  = 2
	LogWarn  = 3
	LogError = 4
)

// ForbiddenPrefix starts the failure message of a tg_rpc call the plugin refuses because the
// caller may not do it (for example it named an entity outside its access): the gateway answers
// such a failure as forbidden (HTTP 403, RPC status "forbidden") instead of a plain error.
const ForbiddenPrefix = "forbidden: "

// Negative returns of host functions.
const (
	// HostErrBadRequest: the request did not decode or named an unknown query.
	HostErrBadRequest = -1
	// HostErrDenied: the plugin may not do this (e.g. publish outside its allowed topics).
	HostErrDenied = -2
	// HostErrFailed: the host could not do it (e.g. the bus is closed).
	HostErrFailed = -3
)

// ErrorFlag marks a failed call in the low word of an export's i64 result.
const ErrorFlag = 1 << 31

// MaxResult bounds the size of one result, in bytes.
const MaxResult = 16 << 20

// DefaultMemoryPages is the default memory limit of a plugin instance in 64 KiB pages (64 MiB).
// A Go guest needs at least 37 pages to start.
const DefaultMemoryPages = 1024

// Pack builds an export's i64 result from the result's address and length; failed marks an error
// message.
func Pack(ptr, length uint32, failed bool) uint64 {
	low := uint64(length &^ ErrorFlag)
	if failed {
		low |= ErrorFlag
	}
	return uint64(ptr)<<32 | low
}

// Unpack splits an export's i64 result into the result's address, its length and the error flag.
func Unpack(r uint64) (ptr, length uint32, failed bool) {
	return uint32(r >> 32), uint32(r) &^ ErrorFlag, uint32(r)&ErrorFlag != 0
}

// Feature is a bit set of optional capabilities. v1 defines none beyond the base ABI; later
// versions announce optional exports and imports here instead of changing [Version].
type Feature uint64

// FeatureRoles announces the role plugin exports ([ExportRoleInfo] …); a host that runs roles
// (the station agent) requires them, other hosts ignore them.
const FeatureRoles Feature = 1 << 0
