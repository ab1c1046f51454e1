package pdk

import (
	"errors"
	"strconv"

	protowire "github.com/teragate/teragate/sdk/pdk/internal/wire"

	"github.com/teragate/teragate/sdk/abi"
)

// Errors of the host functions. Failures reported by the host wrap one of the first three.
var (
	// ErrHostBadRequest: the host could not decode the request or does not know the query.
	ErrHostBadRequest = errors.New("pdk: host rejected the request")
	// ErrHostDenied: the plugin may not do this (e.g. publish outside its allowed topics).
	ErrHostDenied = errors.New("pdk: host denied the request")
	// ErrHostFailed: the host could not do it (e.g. the bus is closed).
	ErrHostFailed = errors.New("pdk: host failed")
	// ErrNoHost: the code runs natively without a test harness (see sdk/pdk/pdktest).
	ErrNoHost = errors.New("pdk: no host (run under the gateway or sdk/pdk/pdktest)")
)

func hostErr(code int32) error {
	switch code {
	case abi.HostErrDenied:
		return ErrHostDenied
	case abi.HostErrFailed:
		return ErrHostFailed
	default:
		return ErrHostBadRequest
	}
}

// LogLevel is a level of [Log]: [LogTrace] … [LogError].
type LogLevel int32

// Log levels, as in sdk/abi.
const (
	LogTrace LogLevel = abi.LogTrace
	LogDebug LogLevel = abi.LogDebug
	LogInfo  LogLevel = abi.LogInfo
	LogWarn  LogLevel = abi.LogWarn
	LogError LogLevel = abi.LogError
)

var logBuf []byte

// Log writes a line to the gateway's log (logger "plugin.<id>"). kv are key/value pairs; values
// may be strings, integers, bools, errors or nil (others are written as "?"), without fmt:
//
//	pdk.Log(pdk.LogInfo, "invitation forwarded", "session", s, "invitees", n)
func Log(level LogLevel, msg string, kv ...any) {
	b := append(logBuf[:0], msg...)
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, ' ')
		if k, ok := kv[i].(string); ok {
			b = append(b, k...)
		} else {
			b = appendLogValue(b, kv[i])
		}
		b = append(b, '=')
		b = appendLogValue(b, kv[i+1])
	}
	logBuf = b
	hostLog(int32(level), b)
}

func appendLogValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return strconv.AppendQuote(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case bool:
		return strconv.AppendBool(b, x)
	case error:
		return strconv.AppendQuote(b, x.Error())
	case nil:
		return append(b, "nil"...)
	case Kind:
		return append(b, x...)
	}
	return append(b, '?')
}

// Subject names a directory entity for the host queries.
type Subject struct {
	// Kind is the entity's kind.
	Kind Kind
	// UUID is the entity's uuid.
	UUID string
}

func appendSubject(b []byte, num protowire.Number, s Subject) []byte {
	if s.Kind == "" && s.UUID == "" {
		return b
	}
	return appendMessage(b, num, func(b []byte) []byte {
		b = appendString(b, 1, string(s.Kind))
		return appendString(b, 2, s.UUID)
	})
}

// QueryResult is the answer of a directory or presence query.
type QueryResult struct {
	// Found reports that the entity exists (directory) or has the state asked (presence).
	Found bool
	// Flag is the query's yes/no answer.
	Flag bool
	// Values are the query's list answer (projects, sites, uuids, a session).
	Values []string
}

var queryBuf []byte

func query(fn func(q []byte) ([]byte, error), name string, subject, viewer Subject, session string) (QueryResult, error) {
	q := appendString(queryBuf[:0], 1, name)
	q = appendSubject(q, 2, subject)
	if session != "" {
		q = appendString(q, 3, session)
	} else {
		q = appendSubject(q, 3, viewer)
	}
	queryBuf = q
	res, err := fn(q)
	if err != nil {
		return QueryResult{}, err
	}
	var r QueryResult
	if !walk(res, func(f *field) {
		switch f.num {
		case 1:
			r.Found = f.v != 0
		case 2:
			r.Flag = f.v != 0
		case 3:
			r.Values = append(r.Values, string(f.b))
		}
	}) {
		return QueryResult{}, ErrHostBadRequest
	}
	return r, nil
}

// DirectoryQuery asks the host's directory; query is one of the names listed in
// proto/plugin/v1 DirectoryQuery ("participant_project", "device_sites", "device_participants",
// "participant_devices", "user_projects", "superadmin", "can_see"). The typed helpers below cover
// each.
func DirectoryQuery(name string, subject, viewer Subject) (QueryResult, error) {
	return query(hostDirectory, name, subject, viewer, "")
}

// DirectoryParticipantProject returns the project id of a participant ("" when unknown).
func DirectoryParticipantProject(uuid string) (string, error) {
	r, err := DirectoryQuery("participant_project", Subject{KindParticipant, uuid}, Subject{})
	if err != nil || len(r.Values) == 0 {
		return "", err
	}
	return r.Values[0], nil
}

// DirectoryDeviceSites returns the site ids of a device.
func DirectoryDeviceSites(uuid string) ([]string, error) {
	r, err := DirectoryQuery("device_sites", Subject{KindDevice, uuid}, Subject{})
	return r.Values, err
}

// DirectoryDeviceParticipants returns the uuids of the participants linked to a device.
func DirectoryDeviceParticipants(uuid string) ([]string, error) {
	r, err := DirectoryQuery("device_participants", Subject{KindDevice, uuid}, Subject{})
	return r.Values, err
}

// DirectoryParticipantDevices returns the uuids of the devices linked to a participant.
func DirectoryParticipantDevices(uuid string) ([]string, error) {
	r, err := DirectoryQuery("participant_devices", Subject{KindParticipant, uuid}, Subject{})
	return r.Values, err
}

// DirectoryUserProjects returns the project ids a user may access.
func DirectoryUserProjects(uuid string) ([]string, error) {
	r, err := DirectoryQuery("user_projects", Subject{KindUser, uuid}, Subject{})
	return r.Values, err
}

// DirectorySuperadmin reports whether a user is a superadmin.
func DirectorySuperadmin(uuid string) (bool, error) {
	r, err := DirectoryQuery("superadmin", Subject{KindUser, uuid}, Subject{})
	return r.Flag, err
}

// DirectoryCanSee reports whether viewer may see events about subject (the rule of [Visible]).
func DirectoryCanSee(viewer, subject Subject) (bool, error) {
	r, err := DirectoryQuery("can_see", subject, viewer)
	return r.Flag, err
}

// PresenceOnline reports whether the entity has at least one open connection.
func PresenceOnline(kind Kind, uuid string) (bool, error) {
	r, err := query(hostPresence, "online", Subject{kind, uuid}, Subject{}, "")
	return r.Flag || r.Found, err
}

// PresenceBusy returns the session the entity is busy in, and whether it is busy.
func PresenceBusy(kind Kind, uuid string) (session string, busy bool, err error) {
	r, err := query(hostPresence, "busy", Subject{kind, uuid}, Subject{}, "")
	if err != nil {
		return "", false, err
	}
	if len(r.Values) > 0 && r.Values[0] != "" {
		return r.Values[0], true, nil
	}
	return "", r.Flag, nil
}

// PresenceInSession reports whether the entity takes part in the session.
func PresenceInSession(kind Kind, uuid, session string) (bool, error) {
	r, err := query(hostPresence, "in_session", Subject{kind, uuid}, Subject{}, session)
	return r.Flag || r.Found, err
}

var publishBuf, eventBuf []byte

// Publish publishes the events, wrapped in one TeraEvent, on the bus topic (for example
// "websocket.user.<uuid>.events" to reach one user's sockets through their filter).
func Publish(topic string, events ...Outgoing) error {
	b := appendString(publishBuf[:0], 1, topic)
	for _, ev := range events {
		b = appendMessage(b, 2, func(b []byte) []byte {
			b = appendString(b, 1, ev.EventType())
			eventBuf = ev.AppendProto(eventBuf[:0])
			return appendBytes(b, 2, eventBuf)
		})
	}
	publishBuf = b
	if code := hostPublish(b); code != 0 {
		return hostErr(code)
	}
	return nil
}

// CallRPC calls an RPC method of another module (the presence registry's
// "TeraServer.UserManagerModule", another plugin's module) and returns its decoded JSON result.
// args are encoded with [AppendJSON].
func CallRPC(module, method string, args ...any) (any, error) {
	if args == nil {
		args = []any{}
	}
	argsJSON, err := AppendJSON(nil, args)
	if err != nil {
		return nil, err
	}
	q := appendString(nil, 1, module)
	q = appendString(q, 2, method)
	q = appendBytes(q, 3, argsJSON)
	res, err := hostRPCCall(q)
	if err != nil {
		return nil, err
	}
	ret := lastBytes(res, 1)
	if len(ret) == 0 {
		return nil, nil
	}
	return ParseJSON(ret)
}
