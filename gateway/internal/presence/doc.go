// Package presence is teragate's user manager (OpenTera's UserManagerModule): it keeps who is
// online, who is busy in which session, and who takes part in which session, and republishes the
// presence events clients see.
//
// It consumes TeraModuleMessages on module.TeraServer.UserManagerModule.messages (the websocket
// layer's CONNECTED/DISCONNECTED, and the session services' Join/Leave/Stop/JoinReply events) and
// publishes TeraEvents on module.TeraServer.UserManagerModule.events, as reference/opentera.md
// §2.2 describes, with these deliberate differences:
//
//   - Online is reference-counted per connection: an entity with two sockets goes offline when
//     both have closed. Every CONNECTED is republished (each new socket sees its own), a
//     DISCONNECTED only when the last socket closes.
//   - Session membership (everyone invited by a JoinSessionEvent, until the StopSessionEvent) is
//     kept so filters can answer "is this entity in that session" (OpenTera asks its database).
//
// # Concurrency
//
// [Registry] is safe for concurrent use; bus messages are processed in order on the bus's
// delivery goroutine.
package presence
