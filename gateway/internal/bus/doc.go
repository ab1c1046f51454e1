// Package bus is teragate's event bus: publish bytes on a channel and receive them through
// glob-pattern subscriptions with Redis PSUBSCRIBE semantics.
//
// Channel names follow OpenTera (module.<Module>.events, websocket.<type>.<uuid>.events, …) and
// payloads are opaque bytes (binary protobuf in practice), so an OpenTera service publishing into the
// same Redis is understood by teragate and the other way round.
//
// # Implementations
//
// [Memory] is the embedded default: a single process, no network. [Redis] is the bus of a
// multi-node deployment (PUBLISH and PSUBSCRIBE on a shared Redis, one pub/sub connection per
// subscription, resubscribed after a lost connection). Both pass the same behavioural tests.
//
// # Semantics
//
//   - Patterns use Redis glob syntax ([Match]): `*` any run of characters (dots included), `?` one
//     character, `[abc]`, `[a-z]`, `[^a]` classes and `\` to escape. A pattern without metacharacters
//     matches only itself, as PSUBSCRIBE does.
//   - Messages are delivered to each subscription in publish order, on one goroutine per subscription:
//     a [Handler] never runs concurrently with itself and may publish (no re-entrancy deadlock).
//   - Payload slices handed to handlers are shared and must not be modified.
//
// # Concurrency
//
// All methods of [Bus] implementations are safe for concurrent use.
//
// The package does not decode payloads, filter events or know about sockets: that is the hub's job.
package bus
