// Package presence is teragate's user manager (OpenTera's UserManagerModule): it keeps who is
// online, who is busy in which session, and who takes part in which session, and republishes the
// presence events clients see.
//
// It consumes TeraModuleMessages on module.TeraServer.UserManagerModule.messages (the websocket
// layer's CONNECTED/DISCONNECTED, and the session services' Join/Leave/Stop/JoinReply events) and
// publishes TeraEvents on module.TeraServer.UserManagerModule.events, as OpenTera's user manager
// does, with these deliberate differences:
//
//   - Online is reference-counted per connection: an entity with two sockets goes offline when
//     both have closed. CONNECTED is republished when the entity's first socket opens (in the
//     cluster), DISCONNECTED when its last one closes; a further socket is greeted alone with
//     the entity's CONNECTED ([Registry.Announce]).
//   - Session membership (everyone invited by a JoinSessionEvent, until the StopSessionEvent) is
//     kept so filters can answer "is this entity in that session" (OpenTera asks its database).
//
// # Concurrency
//
// [Registry] is safe for concurrent use; bus messages are processed in order on the bus's
// delivery goroutine.
package presence
