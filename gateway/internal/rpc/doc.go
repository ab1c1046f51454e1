// Package rpc is teragate's RPC router and its two network transports: OpenTera's RPCMessage on
// the bus and teragate's HTTP endpoint POST /api/rpc/<module>.
//
// # Router
//
// A [Router] maps module names (for example "TeraServer.UserManagerModule") to methods, each
// served by a [Handler]. Handlers take positional arguments ([Args], the RPCMessage's
// opentera.Value list) and return any JSON-able value or an error. Modules and methods are
// registered and unregistered at run time ([Router.Register], [Router.Replace],
// [Router.Unregister]); every change builds a new method table and swaps it atomically, so a call
// never takes a lock and never sees half a change. Calls in flight keep the handler they looked up.
//
// Errors are the sentinels [ErrUnknownModule], [ErrUnknownMethod], [ErrBadArgs] and
// [ErrForbidden], wrapped with %w and context. Any other handler error (or a panic, which is
// recovered) is reported as a plain failure.
//
// # Replies
//
// Both transports answer the same JSON object, byte-compatible with OpenTera's Python
// json.dumps reply (separators ", " and ": ", keys in this order):
//
//	{"method": "online_users", "id": 0, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": [...]}
//
// Unlike OpenTera, which stays silent (the caller times out) on an unknown method and answers
// "status": "Error" with a null return_value when a callback raises, teragate always answers:
// failures carry "status": "Error", "return_value": null and one extra key after the OpenTera
// keys, "reason", a human-readable explanation:
//
//	{"method": "nope", "id": 3, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "Error", "return_value": null, "reason": "rpc: unknown method: \"nope\""}
//
// OpenTera's RedisRPCClient only reads return_value, so the extra key is invisible to it.
// [AppendJSON] is the encoder behind the replies: it writes values as Python's json.dumps does
// (ensure_ascii escapes, Python float repr, insertion order for [Object]).
//
// # Transports
//
// [BusServer] subscribes module.<name>.rpc for every registered module (following registrations
// as they change), decodes each RPCMessage, calls the router and publishes the reply on the
// message's reply_to channel. A payload that is not an RPCMessage is logged and counted, never
// fatal. Requests of one module are served in arrival order.
//
// [HTTPHandler] serves POST /api/rpc/{module} with a body {"method": "...", "args": [...]} (JSON
// booleans, integers, floats and strings map to bool_value, int_value, double_value and
// string_value). The caller is authenticated by the injected function and attached to the context
// ([WithCaller]); handlers that return uuids use [CallerFrom] to hide the ones a non-admin caller
// may not see. Bus calls carry no caller: the bus is trusted, as in OpenTera.
//
// # What it does not do
//
// It does not know any method itself (the presence registry and plugins register theirs), does
// not authenticate (the HTTP transport is given a function) and does not serve service.<name>.rpc
// channels yet.
//
// # Concurrency
//
// [Router] is safe for concurrent use; registrations are serialised, calls are lock-free.
// Handlers are called concurrently (HTTP) and must be safe for it. [BusServer] serves one message
// at a time per module.
package rpc
