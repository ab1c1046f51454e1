// Package gateway builds and wires a teragate server: [New] builds a gateway from a [Config],
// [Gateway.Start] serves it, [Gateway.Shutdown] stops it gracefully.
//
// A gateway terminates OpenTera-compatible websockets (/wss/user|participant|device), serves the
// login API, routes events from its bus (in-memory by default) through per-kind filters to the
// sockets, and keeps the presence registry. The components live in gateway/internal and own their
// flows (the RPC router and the plugin host serve RPC plugins between themselves, every socket is
// announced through presence); this package only builds them, connects them and runs their
// lifecycle. It is the only importable part of the server besides gateway/gatewaytest, which
// starts one for tests.
//
// # Lifecycle
//
//	gw, err := gateway.New(gateway.Config{Insecure: true, Listen: "127.0.0.1:0"})
//	if err != nil { ... }
//	if err := gw.Start(ctx); err != nil { ... }
//	fmt.Println(gw.URL())
//	...
//	err = gw.Shutdown(ctx) // closes sockets with 1001, drains, stops
//
// A New or Start that fails releases what it acquired before returning.
//
// # Concurrency
//
// All methods are safe for concurrent use; Start and Shutdown are each meant to be called once.
package gateway
