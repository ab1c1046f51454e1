// Package transport terminates websockets: it upgrades authenticated HTTP requests with
// gorilla/websocket, registers the connection in the [hub.Hub] and runs its read loop.
//
// Of the client websockets, gorilla/websocket upgrades and reads here (the station websocket of
// package stations is the other user). Frames to clients are written by the hub straight to the
// connection (pre-framed, several per write); this package only reads. Inbound data is not part of
// the protocol (as in OpenTera): every data frame is answered with the text
// "Not allowed to send message". Pongs and any other frame refresh the connection's liveness.
// Frames larger than the read limit close the connection with 1009, a text message that is not
// UTF-8 with 1007.
//
// After the upgrade the HTTP handler returns, so net/http's per-request buffers and goroutine are
// released; an idle connection costs one blocked reader goroutine, a 256-byte read buffer (inbound frames
// are only pongs and control frames; larger ones are read through it in chunks) and the
// hub's bookkeeping.
//
// All methods are safe for concurrent use.
package transport
