// Command rpc.sessions is an RPC plugin for session invitations that respects busy invitees
// (OpenTera issue #267): it forwards a JoinSessionEvent to the free invitees and answers
// JoinSessionReplyEvent{REPLY_BUSY} for the busy ones, instead of inviting everyone. See
// README.md. Build it with `make plugins`.
package main

import "github.com/teragate/teragate/sdk/pdk"

func init() {
	pdk.Info("rpc.sessions", "1.0.0")
	pdk.HandleConfig(configure)
	pdk.HandleRPC(Module, map[string]pdk.RPCFunc{
		"invite": invite,
		"busy":   busy,
	})
}

// main is empty: a reactor module has no main; the host calls the exports.
func main() {}
