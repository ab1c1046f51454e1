//go:build wasip1

package pdk

import (
	"unsafe"

	"github.com/teragate/teragate/sdk/abi"
	"github.com/teragate/teragate/sdk/pdk/internal/hook"
)

// The Wasm side of the kit: the ABI exports, implemented once here, and the host imports. Plugin
// code never sees a pointer.

// in is the buffer tg_buffer hands out: one, reused, grown when a request needs more.
var in []byte

//go:wasmexport tg_abi_version
func tgABIVersion() int32 { return abi.Version }

//go:wasmexport tg_buffer
func tgBuffer(size int32) int32 {
	if size < 0 || size > abi.MaxResult*4 {
		return 0
	}
	if size < 64 {
		size = 64
	}
	if cap(in) < int(size) {
		in = make([]byte, size+size/4)
	}
	in = in[:cap(in)]
	return ptrOf(in)
}

//go:wasmexport tg_init
func tgInit(n int32) uint64 { return call(hook.Init, n) }

//go:wasmexport tg_filter
func tgFilter(n int32) uint64 { return call(hook.Filter, n) }

//go:wasmexport tg_rpc
func tgRPC(n int32) uint64 { return call(hook.RPC, n) }

//go:wasmexport tg_role_info
func tgRoleInfo(n int32) uint64 { return call(hook.RoleInfo, n) }

//go:wasmexport tg_role_start
func tgRoleStart(n int32) uint64 { return call(hook.RoleStart, n) }

//go:wasmexport tg_role_update
func tgRoleUpdate(n int32) uint64 { return call(hook.RoleUpdate, n) }

//go:wasmexport tg_role_stop
func tgRoleStop(n int32) uint64 { return call(hook.RoleStop, n) }

//go:wasmexport tg_role_tick
func tgRoleTick(n int32) uint64 { return call(hook.RoleTick, n) }

//go:wasmexport tg_role_offer
func tgRoleOffer(n int32) uint64 { return call(hook.RoleOffer, n) }

var badLength = []byte("pdk: request length outside the buffer")

func call(fn hook.Entry, n int32) uint64 {
	if n < 0 || int(n) > len(in) {
		return abi.Pack(uint32(ptrOf(badLength)), uint32(len(badLength)), true)
	}
	res, failed := fn(in[:n])
	return abi.Pack(uint32(ptrOf(res)), uint32(len(res)), failed)
}

func ptrOf(b []byte) int32 {
	if cap(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

//go:wasmimport teragate log
func importLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport teragate directory
func importDirectory(qptr unsafe.Pointer, qlen int32, outptr unsafe.Pointer, outcap int32) int32

//go:wasmimport teragate presence
func importPresence(qptr unsafe.Pointer, qlen int32, outptr unsafe.Pointer, outcap int32) int32

//go:wasmimport teragate publish
func importPublish(ptr unsafe.Pointer, n int32) int32

//go:wasmimport teragate rpc_call
func importRPCCall(qptr unsafe.Pointer, qlen int32, outptr unsafe.Pointer, outcap int32) int32

func hostLog(level int32, msg []byte) {
	importLog(level, unsafe.Pointer(unsafe.SliceData(msg)), int32(len(msg)))
}

func hostPublish(req []byte) int32 {
	return importPublish(unsafe.Pointer(unsafe.SliceData(req)), int32(len(req)))
}

// reply is the reusable buffer host queries write their results into (never the request buffer,
// which still holds the event being handled).
var reply = make([]byte, 1024)

type queryImport func(qptr unsafe.Pointer, qlen int32, outptr unsafe.Pointer, outcap int32) int32

// hostCall runs a query import, growing the reply buffer once when the result does not fit.
func hostCall(fn queryImport, q []byte) ([]byte, error) {
	for range 2 {
		n := fn(unsafe.Pointer(unsafe.SliceData(q)), int32(len(q)),
			unsafe.Pointer(unsafe.SliceData(reply)), int32(len(reply)))
		if n < 0 {
			return nil, hostErr(n)
		}
		if int(n) <= len(reply) {
			return reply[:n], nil
		}
		if n > abi.MaxResult {
			return nil, ErrHostFailed
		}
		reply = make([]byte, n)
	}
	return nil, ErrHostFailed
}

func hostDirectory(q []byte) ([]byte, error) { return hostCall(importDirectory, q) }
func hostPresence(q []byte) ([]byte, error)  { return hostCall(importPresence, q) }
func hostRPCCall(q []byte) ([]byte, error)   { return hostCall(importRPCCall, q) }
