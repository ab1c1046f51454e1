// Package gateway is teragate's server façade: [New] builds a gateway from a [Config] and
// [Gateway.Run] serves it until its context ends, then shuts it down gracefully.
//
// A gateway terminates OpenTera-compatible websockets (/wss/user|participant|device), serves the
// login API, routes events from its bus (in-memory by default) through per-kind filters to the
// sockets, and keeps the presence registry. Everything else lives in gateway/internal; this
// package is the only importable part of the server.
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
// # Concurrency
//
// All methods are safe for concurrent use; Start and Shutdown are each meant to be called once.
package gateway
