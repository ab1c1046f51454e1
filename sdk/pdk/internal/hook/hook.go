// Package hook is the byte-level seam between package pdk and its native test harness
// (sdk/pdk/pdktest). In a Wasm guest the host functions are Wasm imports and the entry points are
// Wasm exports; natively, pdktest installs a [Host] here and calls the entry points directly, so
// the same request and result bytes cross the same code on both sides.
//
// Plugin code never imports this package.
//
// # Concurrency
//
// The variables are set once (pdk's entry points at package init, the host by the harness before
// a test calls into the plugin); they are not guarded.
package hook

// Host is a byte-level implementation of the host imports of sdk/abi. Query methods return the
// encoded teragate.plugin.v1 result, or a negative abi.HostErr* code and nil.
type Host interface {
	// Log is the log import.
	Log(level int32, msg []byte)
	// Directory is the directory import (DirectoryQuery → QueryResult).
	Directory(query []byte) ([]byte, int32)
	// Presence is the presence import (PresenceQuery → QueryResult).
	Presence(query []byte) ([]byte, int32)
	// Publish is the publish import (PublishRequest); 0 on success.
	Publish(req []byte) int32
	// RPCCall is the rpc_call import (RPCRequest → RPCResult).
	RPCCall(req []byte) ([]byte, int32)
}

// Current is the host installed by a native harness; nil when none is.
var Current Host

// Entry is an export's body: request bytes in, result bytes out; failed marks an error message.
// The result is only valid until the next call.
type Entry func(req []byte) (res []byte, failed bool)

// Init, Filter and RPC are the bodies of tg_init, tg_filter and tg_rpc, set by package pdk.
var Init, Filter, RPC Entry

// RoleInfo, RoleStart, RoleUpdate, RoleStop and RoleTick are the bodies of the role plugin
// exports (tg_role_info …), set by package pdk.
var RoleInfo, RoleStart, RoleUpdate, RoleStop, RoleTick, RoleOffer Entry
