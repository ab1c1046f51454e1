// Package topic names the bus topics (channels) of OpenTera's protocol that the gateway
// publishes and subscribes to, in one place: the user manager's events and messages, the server
// commands, the database events, the services' events, the direct topics of one client's
// websockets and the RPC channels of modules. The hub, presence, rooms, scope, stations, api and
// pluginhost packages take their names from here, so a topic is spelled once.
//
// A direct topic, websocket.<kind>.<uuid>.events, carries events for the websockets of one entity
// of a connection kind (user, participant or device); websocket.<kind>.<uuid> without the suffix
// names the sockets as a message source.
package topic

import (
	"strings"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// Topics of OpenTera's modules.
const (
	// UserManagerModule is the user manager's module channel (a module message's source).
	UserManagerModule = "module.TeraServer.UserManagerModule"
	// UserManagerEvents carries presence and session events for every connection kind.
	UserManagerEvents = UserManagerModule + ".events"
	// UserManagerMessages is where the user manager receives TeraModuleMessages.
	UserManagerMessages = UserManagerModule + ".messages"
	// FlaskMessages is the channel of OpenTera's Flask (HTTP) module, the source of the
	// disconnect commands a logout publishes.
	FlaskMessages = "module.TeraServer.FlaskModule.messages"
	// CommandsPrefix + uuid carries TeraModuleMessages with ServerCommands for that uuid
	// (OpenTera's TwistedModule): a CMD_CLIENT_DISCONNECT closes the entity's sockets with 4000.
	CommandsPrefix = "module.TeraServer.TwistedModule.events."
	// PatternCommands matches every command topic.
	PatternCommands = CommandsPrefix + "*"
	// PatternDatabaseEvents matches the topics on which OpenTera's database module publishes a
	// TeraEvent holding a DatabaseEvent for every change of a record: …events.user,
	// …events.participant, …events.device (and other objects).
	PatternDatabaseEvents = "module.TeraServer.DatabaseModule.events.*"
	// PatternServiceEvents matches the events services emit (e.g. ArchiveEvent from the
	// FileTransferService).
	PatternServiceEvents = "service.*.events"
	// PatternServices matches every topic of services.
	PatternServices = "service.*"
	// PatternDirect matches websocket.<kind>.<uuid>.events, events for one client (and the
	// other websocket.* topics).
	PatternDirect = "websocket.*"
)

const (
	directPrefix = "websocket."
	eventsSuffix = ".events"
)

// Commands returns the command topic of the entity uuid.
func Commands(uuid string) string { return CommandsPrefix + uuid }

// CommandTarget returns the uuid a command topic addresses: topic without [CommandsPrefix] (the
// topic unchanged if it does not start with it).
func CommandTarget(topic string) string { return strings.TrimPrefix(topic, CommandsPrefix) }

// Socket returns websocket.<kind>.<uuid>, the name of one entity's websockets as the source of a
// module message.
func Socket(k directory.Kind, uuid string) string {
	return directPrefix + k.String() + "." + uuid
}

// Direct returns websocket.<kind>.<uuid>.events, the topic of direct events to one entity's
// websockets.
func Direct(k directory.Kind, uuid string) string {
	return directPrefix + k.String() + "." + uuid + eventsSuffix
}

// ParseDirect splits websocket.<kind>.<uuid>.events into its kind and uuid. It reports false for
// any other topic, for the service kind and for an empty uuid (the uuid may hold dots).
func ParseDirect(topic string) (directory.Kind, string, bool) {
	rest, ok := strings.CutPrefix(topic, directPrefix)
	if !ok {
		return 0, "", false
	}
	rest, ok = strings.CutSuffix(rest, eventsSuffix)
	if !ok {
		return 0, "", false
	}
	ks, uuid, ok := strings.Cut(rest, ".")
	if !ok || uuid == "" {
		return 0, "", false
	}
	k, ok := directory.ParseKind(ks)
	if !ok || k == directory.KindService {
		return 0, "", false
	}
	return k, uuid, true
}

// Service returns service.<name>.events, the topic a service owns.
func Service(name string) string { return "service." + name + eventsSuffix }

// RPC returns module.<module>.rpc, the channel of a module's RPC calls.
func RPC(module string) string { return "module." + module + ".rpc" }
