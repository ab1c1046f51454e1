// Package hub is the event path between the bus and the sockets: the connection index, the
// router and each connection's outbound queue and writer.
//
// # Event path
//
// The [Router] subscribes once per topic family per node (never per socket):
// module.TeraServer.UserManagerModule.events and service.*.events reach every connection kind,
// websocket.<kind>.<uuid>.events reach the sockets of one entity, and
// module.TeraServer.TwistedModule.events.<uuid> carries server commands (CMD_CLIENT_DISCONNECT).
// For each TeraEvent it decodes once, splits a multi-event TeraEvent into single events (each is
// filtered on its own), asks the kind's [filter.Filter] once per (event, kind) with the whole batch
// of candidates (for a [filter.Narrower], only the sockets its candidates describe, gathered from
// an index by admin and view project kept on register, disconnect and directory reload), encodes each distinct frame once per wire format and enqueues a shared pointer on
// every recipient's bounded queue. The router never blocks on a socket.
//
// # Writer
//
// A [Conn] writes pre-framed websocket frames straight to its net.Conn: a writer goroutine exists
// only while the queue is non-empty, and it writes everything queued with one Write call (several
// frames per system call). A queue that overflows closes the connection with [CloseSlowConsumer];
// other clients are never slowed down.
//
// # Idle cost
//
// An idle connection holds no writer goroutine and no timer: one shared ticker per [Hub] pings a
// tenth of the connections each second (so each every 10 s) and closes those that sent nothing,
// not even a pong, for the pong timeout.
//
// # Concurrency
//
// All exported methods are safe for concurrent use. Lock order: index.mu before shard.mu before
// Conn.mu; the router holds no lock while calling filters.
//
// The package does not upgrade HTTP requests or read from sockets (the transport does), and it
// does not decide access (filters do).
package hub
