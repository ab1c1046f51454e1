// Package transport terminates websockets: it upgrades authenticated HTTP requests with
// gorilla/websocket, registers the connection in the [hub.Hub] and runs its read loop.
//
// Of the client websockets, gorilla/websocket only does the upgrade here (the station websocket of
// package stations is its other user). Frames to clients are written by the hub straight to the
// connection (pre-framed, several per write); the client's frames are read by this package's own
// frame reader, with the checks gorilla makes. Inbound data is not part of the protocol (as in
// OpenTera): every data message is answered with the text "Not allowed to send message". Pongs
// and any other frame refresh the connection's liveness, pings are answered through the hub's
// queue. Messages larger than the read limit close the connection with 1009, a text message that
// is not UTF-8 with 1007, a protocol violation with 1002.
//
// After the upgrade the HTTP handler returns, so net/http's per-request buffers and goroutine are
// released, and gorilla's connection is dropped. An idle connection costs one goroutine blocked
// in a shallow read (its stack stays at 2 KiB), a 144-byte read buffer (inbound frames are only
// pongs and control frames; larger ones are read through it in chunks) and the hub's
// bookkeeping.
//
// All methods are safe for concurrent use.
package transport
