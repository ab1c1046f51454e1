// Package client is the Go client of teragate (and of OpenTera servers, for the parts they share):
// log in as a user, participant or device, open the websocket and receive its events as typed
// protobuf messages, reconnect when the connection drops, and call RPC methods over HTTP.
//
// # Websocket clients
//
// [Login] authenticates (HTTP Basic for users and participants, a token for participants and
// devices) and keeps the credentials so that [Client.Dial] can log in again for a fresh websocket
// ticket whenever it reconnects:
//
//	c, err := client.Login(ctx, "https://127.0.0.1:4040", client.KindUser, client.Basic("alice", "alice-demo"),
//		client.WithCACertFile("data/tls/cert.pem"))
//	if err != nil { ... }
//	conn, err := c.Dial(ctx)
//	if err != nil { ... }
//	defer conn.Close()
//	for ev := range conn.Events() {
//		for _, m := range ev.Messages {
//			switch m := m.(type) {
//			case *opentera.UserEvent:
//				fmt.Println(m.GetType(), m.GetUserUuid())
//			case *opentera.DeviceEvent:
//				fmt.Println(m.GetType(), m.GetDeviceStatus())
//			}
//		}
//	}
//	if err := conn.Err(); errors.Is(err, client.ErrDisconnected) {
//		// the server closed with 4000 (logout, CMD_CLIENT_DISCONNECT): do not reconnect
//	}
//
// Frames are OpenTera's JSON by default; [WithFormat]([FormatProto]) asks for binary protobuf
// frames (?format=proto), which are cheaper to decode. Either way each frame becomes an [Event]
// holding the TeraEvent and its unpacked messages.
//
// # Reconnection
//
// When the connection breaks (network error, server restart, close codes other than 4000) the
// [Conn] logs in again and redials, waiting between attempts with exponential backoff and jitter
// ([WithBackoff]; defaults 250 ms doubling up to 30 s). Close code 4000 (OpenTera's
// CMD_CLIENT_DISCONNECT, sent on logout) and a refused login are terminal: [Conn.Events] is
// closed and [Conn.Err] tells why ([ErrDisconnected], or an [*HTTPError] with status 401).
// Without [WithResume], events published while the client was away are not replayed (OpenTera
// has no replay either). With it, the Conn keeps the position of the last event it delivered and
// reconnects with it: a teragate gateway first sends what the client missed (filtered with its
// access now), then the live events, with no gap and no duplicate. If the gateway cannot (the
// client was away longer than the history it keeps), the first event after the reconnection has
// [Event.ResumeFailed] set, and the caller resynchronises:
//
//	c, _ := client.Login(ctx, base, client.KindUser, client.Basic("alice", "alice-demo"), client.WithResume())
//	conn, _ := c.Dial(ctx)
//	for ev := range conn.Events() {
//		if ev.ResumeFailed != nil {
//			resync(ctx, c) // e.g. c.Call(ctx, client.UserManagerModule, "online_users")
//			continue
//		}
//		handle(ev) // then ev.Position is the position to resume from
//	}
//
// # RPC callers and services
//
// [Client.Call] posts {"method", "args"} to /api/rpc/<module> with the client's token and returns
// the reply's return_value; Error replies become an [*RPCError] with the server's reason. Services
// (and scripts holding a token) skip the login with [New] and [WithToken]:
//
//	c, _ := client.New("https://127.0.0.1:4040", client.WithToken(serviceToken), client.WithInsecureSkipVerify())
//	raw, err := c.Call(ctx, client.UserManagerModule, "status_devices")
//	ok, err := c.Call(ctx, client.UserManagerModule, "update_device_status", deviceUUID, `{"battery": 80}`, 1732145425.5)
//
// Arguments are Go booleans, integers, floats and strings (and json.Number, sent as written); a
// float is always sent as a float (1.0 stays 1.0), so timestamps keep their type.
// [Client.PublishEvent] posts a TeraEvent through POST /api/events (service tokens only) and
// [Client.UpdateDeviceStatus] is a device's POST /api/device/status.
//
// # Concurrency
//
// A [Client] is safe for concurrent use. A [Conn] delivers events on one channel in arrival
// order; read it promptly (a client that reads too slowly is disconnected by the gateway with code
// 4001, and then reconnects).
package client
