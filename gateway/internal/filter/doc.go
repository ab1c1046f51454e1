// Package filter decides which connected clients receive an event.
//
// The router calls a [Filter] once per (event, connection kind) with the whole batch of candidate
// recipients of that kind and gets one [Decision] per recipient: drop, deliver, or deliver a
// rewritten event. Batching is what lets a Wasm plugin filter thousands of recipients in one call;
// this package holds the interface and [Native], a Go implementation of OpenTera's
// UserEventManager / ParticipantEventManager / DeviceEventManager table (docs/opentera.md) that is the built-in default and the benchmark baseline for plugin filters.
//
// A filter that is also a [Narrower] describes its candidates before seeing recipients, so the
// router gathers only those instead of every connection of the kind.
//
// Filters fail closed: when Decide returns an error the router delivers nothing for that batch.
//
// # Concurrency
//
// Decide may be called concurrently from several router goroutines; implementations must be safe
// for that. The recipients and decisions slices belong to the caller and are only valid during the
// call.
//
// The package does not know about sockets, queues or encodings.
package filter
