package opentera_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/proto/opentera"
)

// frameJSON is the server->client websocket encoding used by OpenTera
// (MessageToJson with always_print_fields_with_no_presence=True).
var frameJSON = protojson.MarshalOptions{EmitDefaultValues: true}

var deterministic = proto.MarshalOptions{Deterministic: true}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := opentera.NewAny(m)
	require.NoError(t, err)
	return a
}

// TestGoldenBinary checks byte-exact binary encodings. The RPCMessage case is
// the verified example of the reference (protoc 3.21 + python-protobuf 4.21);
// the others are plain proto3 encodings computed by hand.
func TestGoldenBinary(t *testing.T) {
	tests := []struct {
		name    string
		msg     proto.Message
		hex     string
		newZero func() proto.Message
	}{
		{
			name: "RPCMessage online_users (reference example)",
			msg: &opentera.RPCMessage{
				Method:    "online_users",
				ReplyTo:   "RedisRPCClient.x",
				Id:        0,
				Timestamp: 1.5,
				Args:      []*opentera.Value{{ArgValue: &opentera.Value_StringValue{StringValue: "abc"}}},
			},
			hex:     "0a0c6f6e6c696e655f757365727312105265646973525043436c69656e742e7821000000000000f83f2a053a03616263",
			newZero: func() proto.Message { return &opentera.RPCMessage{} },
		},
		{
			name:    "Value int_value 1",
			msg:     &opentera.Value{ArgValue: &opentera.Value_IntValue{IntValue: 1}},
			hex:     "1801",
			newZero: func() proto.Message { return &opentera.Value{} },
		},
		{
			name:    "Value bool_value false is still encoded (oneof has presence)",
			msg:     &opentera.Value{ArgValue: &opentera.Value_BoolValue{BoolValue: false}},
			hex:     "2800",
			newZero: func() proto.Message { return &opentera.Value{} },
		},
		{
			name:    "UserEvent connected",
			msg:     &opentera.UserEvent{UserUuid: "u-1", Type: opentera.UserEvent_USER_CONNECTED},
			hex:     "0a03752d311001",
			newZero: func() proto.Message { return &opentera.UserEvent{} },
		},
		{
			name:    "ServerCommand client disconnect",
			msg:     &opentera.ServerCommand{Type: opentera.ServerCommand_CMD_CLIENT_DISCONNECT},
			hex:     "0802",
			newZero: func() proto.Message { return &opentera.ServerCommand{} },
		},
		{
			name:    "empty TeraEvent",
			msg:     &opentera.TeraEvent{},
			hex:     "",
			newZero: func() proto.Message { return &opentera.TeraEvent{} },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := deterministic.Marshal(tc.msg)
			require.NoError(t, err)
			require.Equal(t, tc.hex, hex.EncodeToString(got))

			raw, err := hex.DecodeString(tc.hex)
			require.NoError(t, err)
			back := tc.newZero()
			require.NoError(t, proto.Unmarshal(raw, back))
			require.True(t, proto.Equal(tc.msg, back), "decoded %v, want %v", back, tc.msg)
		})
	}
}

// TestGoldenJSON checks the websocket JSON frames key for key (semantically:
// both sides are decoded with encoding/json, so whitespace does not matter but
// every key, value and the absence of extra keys does).
func TestGoldenJSON(t *testing.T) {
	tests := []struct {
		name string
		msg  func(t *testing.T) proto.Message
		want string
	}{
		{
			name: "UserEvent frame (reference 3.6)",
			msg: func(t *testing.T) proto.Message {
				ev := &opentera.TeraEvent{
					Header: &opentera.TeraEvent_Header{
						Version: 1,
						Time:    1732145425.5,
						Topic:   "module.TeraServer.UserManagerModule.events",
					},
					Events: []*anypb.Any{mustAny(t, &opentera.UserEvent{
						UserUuid:     "u-1",
						Type:         opentera.UserEvent_USER_CONNECTED,
						UserFullname: "Super Admin",
					})},
				}
				return &opentera.TeraMessage{Message: mustAny(t, ev)}
			},
			want: `{"message": {"@type": "type.googleapis.com/opentera.protobuf.TeraEvent",
			  "header": {"version": 1, "time": 1732145425.5, "topic": "module.TeraServer.UserManagerModule.events"},
			  "events": [{"@type": "type.googleapis.com/opentera.protobuf.UserEvent",
			              "userUuid": "u-1", "type": "USER_CONNECTED", "userFullname": "Super Admin"}]}}`,
		},
		{
			name: "JoinSessionEvent defaults",
			msg: func(t *testing.T) proto.Message {
				return &opentera.JoinSessionEvent{SessionUuid: "s-1", SessionUsers: []string{"u-1"}}
			},
			want: `{"sessionUrl": "", "sessionCreatorName": "", "sessionUuid": "s-1",
			  "sessionParticipants": [], "sessionUsers": ["u-1"], "sessionDevices": [],
			  "joinMsg": "", "sessionParameters": "", "serviceUuid": ""}`,
		},
		{
			name: "JoinSessionEvent defaults inside a frame",
			msg: func(t *testing.T) proto.Message {
				ev := &opentera.TeraEvent{
					Header: &opentera.TeraEvent_Header{Version: 1, Time: 2, Topic: "websocket.user.u-1.events"},
					Events: []*anypb.Any{mustAny(t, &opentera.JoinSessionEvent{
						SessionUuid: "s-1", SessionUsers: []string{"u-1"},
					})},
				}
				return &opentera.TeraMessage{Message: mustAny(t, ev)}
			},
			want: `{"message": {"@type": "type.googleapis.com/opentera.protobuf.TeraEvent",
			  "header": {"version": 1, "time": 2, "topic": "websocket.user.u-1.events"},
			  "events": [{"@type": "type.googleapis.com/opentera.protobuf.JoinSessionEvent",
			    "sessionUrl": "", "sessionCreatorName": "", "sessionUuid": "s-1",
			    "sessionParticipants": [], "sessionUsers": ["u-1"], "sessionDevices": [],
			    "joinMsg": "", "sessionParameters": "", "serviceUuid": ""}]}}`,
		},
		{
			name: "DeviceEvent defaults",
			msg: func(t *testing.T) proto.Message {
				return &opentera.DeviceEvent{}
			},
			want: `{"deviceUuid": "", "type": "DEVICE_UNKNOWN", "deviceName": "", "deviceStatus": ""}`,
		},
		{
			name: "DeviceEvent status changed",
			msg: func(t *testing.T) proto.Message {
				return &opentera.DeviceEvent{DeviceUuid: "d-1", Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED}
			},
			want: `{"deviceUuid": "d-1", "type": "DEVICE_STATUS_CHANGED", "deviceName": "", "deviceStatus": ""}`,
		},
		{
			name: "ParticipantEvent defaults",
			msg: func(t *testing.T) proto.Message {
				return &opentera.ParticipantEvent{ParticipantUuid: "p-1", Type: opentera.ParticipantEvent_PARTICIPANT_DISCONNECTED}
			},
			want: `{"participantUuid": "p-1", "type": "PARTICIPANT_DISCONNECTED", "participantName": "",
			  "participantProjectName": "", "participantSiteName": ""}`,
		},
		{
			name: "LeaveSessionEvent defaults",
			msg: func(t *testing.T) proto.Message {
				return &opentera.LeaveSessionEvent{SessionUuid: "s-1"}
			},
			want: `{"sessionUuid": "s-1", "serviceUuid": "", "leavingParticipants": [], "leavingUsers": [], "leavingDevices": []}`,
		},
		{
			name: "JoinSessionReplyEvent defaults",
			msg: func(t *testing.T) proto.Message {
				return &opentera.JoinSessionReplyEvent{SessionUuid: "s-1", JoinReply: opentera.JoinSessionReplyEvent_REPLY_BUSY}
			},
			want: `{"sessionUuid": "s-1", "userUuid": "", "participantUuid": "", "deviceUuid": "",
			  "joinReply": "REPLY_BUSY", "replyMsg": ""}`,
		},
		{
			name: "StopSessionEvent defaults",
			msg: func(t *testing.T) proto.Message {
				return &opentera.StopSessionEvent{}
			},
			want: `{"sessionUuid": "", "serviceUuid": ""}`,
		},
		{
			name: "ArchiveEvent defaults",
			msg: func(t *testing.T) proto.Message {
				return &opentera.ArchiveEvent{}
			},
			want: `{"archiveUuid": "", "ownerUuid": "", "status": "STATUS_PENDING", "archiveUrl": ""}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.msg(t)
			got, err := frameJSON.Marshal(msg)
			require.NoError(t, err)

			var gotMap, wantMap map[string]any
			require.NoError(t, json.Unmarshal(got, &gotMap), "output: %s", got)
			require.NoError(t, json.Unmarshal([]byte(tc.want), &wantMap))
			require.Equal(t, wantMap, gotMap, "output: %s", got)

			// The reference frame must parse back to the same message
			// (strictly: unknown keys would be an error, as in OpenTeraPlus).
			back := msg.ProtoReflect().New().Interface()
			require.NoError(t, protojson.Unmarshal([]byte(tc.want), back))
			require.True(t, proto.Equal(msg, back), "decoded %v, want %v", back, msg)
		})
	}
}

// fieldSpec renders a field as "<number> [repeated ]<type>", where <type> is
// the scalar kind or the full name of the message / enum type.
func fieldSpec(fd protoreflect.FieldDescriptor) string {
	var typ string
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		typ = string(fd.Message().FullName())
	case protoreflect.EnumKind:
		typ = string(fd.Enum().FullName())
	default:
		typ = fd.Kind().String()
	}
	if fd.IsList() {
		typ = "repeated " + typ
	}
	return fmt.Sprintf("%d %s", fd.Number(), typ)
}

// wantMessages is the reference's section 1, field for field:
// message full name -> field name -> "<number> [repeated ]<type>".
var wantMessages = map[protoreflect.FullName]map[string]string{
	// 1.1 Wrappers
	"opentera.protobuf.TeraMessage": {
		"message": "1 google.protobuf.Any",
	},
	"opentera.protobuf.TeraEvent": {
		"header": "1 opentera.protobuf.TeraEvent.Header",
		"events": "2 repeated google.protobuf.Any",
	},
	"opentera.protobuf.TeraEvent.Header": {
		"version": "1 uint32",
		"time":    "2 double",
		"topic":   "3 string",
	},
	"opentera.protobuf.TeraModuleMessage": {
		"head": "1 opentera.protobuf.TeraModuleMessage.Header",
		"data": "2 repeated google.protobuf.Any",
	},
	"opentera.protobuf.TeraModuleMessage.Header": {
		"version": "1 uint32",
		"time":    "2 double",
		"seq":     "3 uint32",
		"source":  "4 string",
		"dest":    "5 string",
	},
	// 1.2 Presence events
	"opentera.protobuf.UserEvent": {
		"user_uuid":     "1 string",
		"type":          "2 opentera.protobuf.UserEvent.EventType",
		"user_fullname": "3 string",
	},
	"opentera.protobuf.ParticipantEvent": {
		"participant_uuid":         "1 string",
		"type":                     "2 opentera.protobuf.ParticipantEvent.EventType",
		"participant_name":         "3 string",
		"participant_project_name": "4 string",
		"participant_site_name":    "5 string",
	},
	"opentera.protobuf.DeviceEvent": {
		"device_uuid":   "1 string",
		"type":          "2 opentera.protobuf.DeviceEvent.EventType",
		"device_name":   "3 string",
		"device_status": "4 string",
	},
	// 1.3 Session events
	"opentera.protobuf.JoinSessionEvent": {
		"session_url":          "1 string",
		"session_creator_name": "2 string",
		"session_uuid":         "3 string",
		"session_participants": "4 repeated string",
		"session_users":        "5 repeated string",
		"session_devices":      "6 repeated string",
		"join_msg":             "7 string",
		"session_parameters":   "8 string",
		"service_uuid":         "9 string",
	},
	"opentera.protobuf.JoinSessionReplyEvent": {
		"session_uuid":     "1 string",
		"user_uuid":        "2 string",
		"participant_uuid": "3 string",
		"device_uuid":      "4 string",
		"join_reply":       "5 opentera.protobuf.JoinSessionReplyEvent.ReplyType",
		"reply_msg":        "6 string",
	},
	"opentera.protobuf.LeaveSessionEvent": {
		"session_uuid":         "1 string",
		"service_uuid":         "2 string",
		"leaving_participants": "3 repeated string",
		"leaving_users":        "4 repeated string",
		"leaving_devices":      "5 repeated string",
	},
	"opentera.protobuf.StopSessionEvent": {
		"session_uuid": "1 string",
		"service_uuid": "2 string",
	},
	// 1.4 System events
	"opentera.protobuf.DatabaseEvent": {
		"type":         "1 opentera.protobuf.DatabaseEvent.EventType",
		"object_type":  "2 string",
		"object_value": "3 string",
	},
	"opentera.protobuf.LogEvent": {
		"level":     "1 opentera.protobuf.LogEvent.LogLevel",
		"timestamp": "2 double",
		"sender":    "3 string",
		"message":   "4 string",
	},
	"opentera.protobuf.LoginEvent": {
		"log_header":       "1 opentera.protobuf.LogEvent",
		"login_type":       "2 opentera.protobuf.LoginEvent.LoginType",
		"login_status":     "3 opentera.protobuf.LoginEvent.LoginStatus",
		"client_name":      "4 string",
		"client_version":   "5 string",
		"client_ip":        "6 string",
		"os_name":          "7 string",
		"os_version":       "8 string",
		"user_uuid":        "9 string",
		"participant_uuid": "10 string",
		"device_uuid":      "11 string",
		"service_uuid":     "12 string",
		"server_endpoint":  "13 string",
	},
	"opentera.protobuf.ArchiveEvent": {
		"archive_uuid": "1 string",
		"owner_uuid":   "2 string",
		"status":       "3 opentera.protobuf.ArchiveEvent.StatusType",
		"archive_url":  "4 string",
	},
	"opentera.protobuf.ServerCommand": {
		"type": "1 opentera.protobuf.ServerCommand.CommandType",
		"data": "2 google.protobuf.Any",
	},
	// 1.5 RPC
	"opentera.protobuf.Value": {
		"double_value": "1 double",
		"float_value":  "2 float",
		"int_value":    "3 int64",
		"uint_value":   "4 uint64",
		"bool_value":   "5 bool",
		"bytes_value":  "6 bytes",
		"string_value": "7 string",
	},
	"opentera.protobuf.RPCMessage": {
		"method":    "1 string",
		"reply_to":  "2 string",
		"id":        "3 uint64",
		"timestamp": "4 double",
		"args":      "5 repeated opentera.protobuf.Value",
	},
	// 1.6 Other
	"opentera.protobuf.Result": {
		"type":    "1 opentera.protobuf.Result.ResultType",
		"code":    "2 int64",
		"message": "3 string",
	},
	"opentera.protobuf.CreateSession": {
		"source":   "1 string",
		"command":  "2 string",
		"reply_to": "3 string",
	},
	"opentera.protobuf.UserRegisterToEvent": {
		"event_type": "1 opentera.protobuf.UserRegisterToEvent.EventType",
		"action":     "2 opentera.protobuf.UserRegisterToEvent.Action",
	},
}

// wantEnums is the reference's section 1, enum for enum:
// enum full name -> value name -> number.
var wantEnums = map[protoreflect.FullName]map[string]int32{
	"opentera.protobuf.UserEvent.EventType": {
		"USER_UNKNOWN": 0, "USER_CONNECTED": 1, "USER_DISCONNECTED": 2, "USER_DELETED": 3,
		"USER_ADDED": 4, "USER_UPDATED": 5, "USER_JOINED_SESSION": 6, "USER_LEFT_SESSION": 7,
	},
	"opentera.protobuf.ParticipantEvent.EventType": {
		"PARTICIPANT_UNKNOWN": 0, "PARTICIPANT_CONNECTED": 1, "PARTICIPANT_DISCONNECTED": 2,
		"PARTICIPANT_DELETED": 3, "PARTICIPANT_ADDED": 4, "PARTICIPANT_JOINED_SESSION": 5,
		"PARTICIPANT_LEFT_SESSION": 6,
	},
	"opentera.protobuf.DeviceEvent.EventType": {
		"DEVICE_UNKNOWN": 0, "DEVICE_CONNECTED": 1, "DEVICE_DISCONNECTED": 2, "DEVICE_DELETED": 3,
		"DEVICE_ADDED": 4, "DEVICE_JOINED_SESSION": 5, "DEVICE_LEFT_SESSION": 6, "DEVICE_STATUS_CHANGED": 7,
	},
	"opentera.protobuf.JoinSessionReplyEvent.ReplyType": {
		"REPLY_UNKNOWN": 0, "REPLY_ACCEPTED": 1, "REPLY_DENIED": 2, "REPLY_BUSY": 3, "REPLY_TIMEOUT": 4,
	},
	"opentera.protobuf.DatabaseEvent.EventType": {
		"DB_UNKNOWN": 0, "DB_CREATE": 1, "DB_UPDATE": 2, "DB_DELETE": 3,
	},
	"opentera.protobuf.LogEvent.LogLevel": {
		"LOGLEVEL_UNKNOWN": 0, "LOGLEVEL_FATAL": 1, "LOGLEVEL_ERROR": 2, "LOGLEVEL_CRITICAL": 3,
		"LOGLEVEL_WARNING": 4, "LOGLEVEL_INFO": 5, "LOGLEVEL_DEBUG": 6, "LOGLEVEL_TRACE": 7,
	},
	"opentera.protobuf.LoginEvent.LoginStatus": {
		"LOGIN_STATUS_UNKNOWN":                          0,
		"LOGIN_STATUS_SUCCESS":                          1,
		"LOGIN_STATUS_FAILED_WITH_WRONG_PASSWORD":       2,
		"LOGIN_STATUS_FAILED_WITH_WRONG_USERNAME":       3,
		"LOGIN_STATUS_FAILED_WITH_MAX_ATTEMPTS_REACHED": 4,
		"LOGIN_STATUS_FAILED_WITH_ALREADY_LOGGED_IN":    5,
		"LOGIN_STATUS_FAILED_WITH_INVALID_TOKEN":        6,
		"LOGIN_STATUS_FAILED_WITH_DISABLED_ACCOUNT":     7,
		"LOGIN_STATUS_FAILED_WITH_EXPIRED_TOKEN":        8,
	},
	"opentera.protobuf.LoginEvent.LoginType": {
		"LOGIN_TYPE_UNKNOWN": 0, "LOGIN_TYPE_TOKEN": 1, "LOGIN_TYPE_PASSWORD": 2, "LOGIN_TYPE_CERTIFICATE": 3,
	},
	"opentera.protobuf.ArchiveEvent.StatusType": {
		"STATUS_PENDING": 0, "STATUS_INPROGRESS": 1, "STATUS_COMPLETED": 2, "STATUS_CANCELLED": 3, "STATUS_DELETED": 4,
	},
	"opentera.protobuf.ServerCommand.CommandType": {
		"CMD_UNKNOWN": 0, "CMD_REGISTER_DEVICE": 1, "CMD_CLIENT_DISCONNECT": 2,
	},
	"opentera.protobuf.Result.ResultType": {
		"RESULT_UNKNOWN": 0, "RESULT_OK": 1, "RESULT_ERROR": 2, "RESULT_WARNING": 3,
	},
	"opentera.protobuf.UserRegisterToEvent.EventType": {
		"EVENT_UNKNOWN":                  0,
		"EVENT_USER_CONNECTED":           1,
		"EVENT_USER_DISCONNECTED":        2,
		"EVENT_USER_DELETED":             3,
		"EVENT_USER_ADDED":               4,
		"EVENT_USER_UPDATED":             5,
		"EVENT_PARTICIPANT_CONNECTED":    6,
		"EVENT_PARTICIPANT_DISCONNECTED": 7,
		"EVENT_PARTICIPANT_DELETED":      8,
		"EVENT_PARTICIPANT_ADDED":        9,
		"EVENT_PARTICIPANT_UPDATED":      10,
		"EVENT_DEVICE_CONNECTED":         11,
		"EVENT_DEVICE_DISCONNECTED":      12,
		"EVENT_DEVICE_DELETED":           13,
		"EVENT_DEVICE_ADDED":             14,
		"EVENT_DEVICE_UPDATED":           15,
	},
	"opentera.protobuf.UserRegisterToEvent.Action": {
		// "UNKONWN" is OpenTera's own spelling (upstream proto/UserRegisterToEvent.proto).
		"ACTION_UNKNOWN": 0, "ACTION_REGISTER": 1, "ACTION_UNREGISTER": 2,
	},
}

// wantFiles lists the OpenTera .proto files (one per upstream file), as
// registered: path relative to proto/.
var wantFiles = []string{
	"opentera/ArchiveEvent.proto", "opentera/CreateSession.proto", "opentera/DatabaseEvent.proto",
	"opentera/DeviceEvent.proto", "opentera/JoinSessionEvent.proto", "opentera/JoinSessionReplyEvent.proto",
	"opentera/LeaveSessionEvent.proto", "opentera/LogEvent.proto", "opentera/LoginEvent.proto",
	"opentera/ParticipantEvent.proto", "opentera/RPCMessage.proto", "opentera/Result.proto",
	"opentera/ServerCommand.proto", "opentera/StopSessionEvent.proto", "opentera/TeraEvent.proto",
	"opentera/TeraMessage.proto", "opentera/TeraModuleMessage.proto", "opentera/UserEvent.proto",
	"opentera/UserRegisterToEvent.proto",
}

// collect walks every message and enum (including nested ones) declared in the
// opentera.protobuf package.
func collect(t *testing.T) (files []string, msgs map[protoreflect.FullName]protoreflect.MessageDescriptor, enums map[protoreflect.FullName]protoreflect.EnumDescriptor) {
	t.Helper()
	msgs = map[protoreflect.FullName]protoreflect.MessageDescriptor{}
	enums = map[protoreflect.FullName]protoreflect.EnumDescriptor{}
	var walk func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors)
	walk = func(ms protoreflect.MessageDescriptors, es protoreflect.EnumDescriptors) {
		for i := 0; i < es.Len(); i++ {
			enums[es.Get(i).FullName()] = es.Get(i)
		}
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			msgs[m.FullName()] = m
			walk(m.Messages(), m.Enums())
		}
	}
	// Force registration of every generated file of the package.
	_ = opentera.File_opentera_TeraMessage_proto
	protoregistry.GlobalFiles.RangeFilesByPackage("opentera.protobuf", func(fd protoreflect.FileDescriptor) bool {
		files = append(files, fd.Path())
		require.Equal(t, protoreflect.Proto3, fd.Syntax(), fd.Path())
		walk(fd.Messages(), fd.Enums())
		return true
	})
	sort.Strings(files)
	return files, msgs, enums
}

func TestDescriptorsMatchReference(t *testing.T) {
	files, msgs, enums := collect(t)
	require.Equal(t, wantFiles, files, "one .proto per OpenTera message file")

	gotMsgNames := make([]string, 0, len(msgs))
	for n := range msgs {
		gotMsgNames = append(gotMsgNames, string(n))
	}
	wantMsgNames := make([]string, 0, len(wantMessages))
	for n := range wantMessages {
		wantMsgNames = append(wantMsgNames, string(n))
	}
	require.ElementsMatch(t, wantMsgNames, gotMsgNames, "exactly the reference's messages")

	gotEnumNames := make([]string, 0, len(enums))
	for n := range enums {
		gotEnumNames = append(gotEnumNames, string(n))
	}
	wantEnumNames := make([]string, 0, len(wantEnums))
	for n := range wantEnums {
		wantEnumNames = append(wantEnumNames, string(n))
	}
	require.ElementsMatch(t, wantEnumNames, gotEnumNames, "exactly the reference's enums")

	for name, want := range wantMessages {
		t.Run("message "+string(name), func(t *testing.T) {
			md := msgs[name]
			require.NotNil(t, md)
			got := map[string]string{}
			for i := 0; i < md.Fields().Len(); i++ {
				fd := md.Fields().Get(i)
				got[string(fd.Name())] = fieldSpec(fd)
				// No proto3 `optional` and no maps anywhere in OpenTera.
				require.False(t, fd.HasOptionalKeyword(), "%s uses proto3 optional", fd.FullName())
				require.False(t, fd.IsMap(), "%s is a map", fd.FullName())
				// JSON names are the default lowerCamelCase ones.
				require.Equal(t, lowerCamel(string(fd.Name())), fd.JSONName(), fd.FullName())
			}
			require.Equal(t, want, got)
		})
	}

	for name, want := range wantEnums {
		t.Run("enum "+string(name), func(t *testing.T) {
			ed := enums[name]
			require.NotNil(t, ed)
			got := map[string]int32{}
			for i := 0; i < ed.Values().Len(); i++ {
				v := ed.Values().Get(i)
				got[string(v.Name())] = int32(v.Number())
			}
			require.Equal(t, want, got)
		})
	}

	t.Run("Value oneof arg_value holds every field", func(t *testing.T) {
		md := msgs["opentera.protobuf.Value"]
		require.Equal(t, 1, md.Oneofs().Len())
		od := md.Oneofs().Get(0)
		require.Equal(t, protoreflect.Name("arg_value"), od.Name())
		require.False(t, od.IsSynthetic())
		require.Equal(t, md.Fields().Len(), od.Fields().Len())
	})

	t.Run("only Value has a oneof", func(t *testing.T) {
		for name, md := range msgs {
			if name != "opentera.protobuf.Value" {
				require.Zero(t, md.Oneofs().Len(), name)
			}
		}
	})
}

func lowerCamel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

func TestTypeURLs(t *testing.T) {
	tests := []struct {
		name     string
		msg      proto.Message
		fullName protoreflect.FullName
		typeURL  string
	}{
		{"UserEvent", &opentera.UserEvent{}, "opentera.protobuf.UserEvent", "type.googleapis.com/opentera.protobuf.UserEvent"},
		{"TeraEvent", &opentera.TeraEvent{}, "opentera.protobuf.TeraEvent", "type.googleapis.com/opentera.protobuf.TeraEvent"},
		{"TeraEvent.Header nested", &opentera.TeraEvent_Header{}, "opentera.protobuf.TeraEvent.Header", "type.googleapis.com/opentera.protobuf.TeraEvent.Header"},
		{"TeraModuleMessage.Header nested", &opentera.TeraModuleMessage_Header{}, "opentera.protobuf.TeraModuleMessage.Header", "type.googleapis.com/opentera.protobuf.TeraModuleMessage.Header"},
		{"JoinSessionEvent", &opentera.JoinSessionEvent{}, "opentera.protobuf.JoinSessionEvent", "type.googleapis.com/opentera.protobuf.JoinSessionEvent"},
		{"ServerCommand", &opentera.ServerCommand{}, "opentera.protobuf.ServerCommand", "type.googleapis.com/opentera.protobuf.ServerCommand"},
		{"Value is top-level", &opentera.Value{}, "opentera.protobuf.Value", "type.googleapis.com/opentera.protobuf.Value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.fullName, tc.msg.ProtoReflect().Descriptor().FullName())
			require.Equal(t, tc.typeURL, opentera.TypeURL(tc.msg))
			require.True(t, strings.HasPrefix(tc.typeURL, opentera.TypeURLPrefix))

			a, err := opentera.NewAny(tc.msg)
			require.NoError(t, err)
			require.Equal(t, tc.typeURL, a.GetTypeUrl())

			// anypb.New uses the same prefix.
			std, err := anypb.New(tc.msg)
			require.NoError(t, err)
			require.Equal(t, std.GetTypeUrl(), a.GetTypeUrl())
		})
	}
}

func TestNewAnyRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message
	}{
		{"UserEvent", &opentera.UserEvent{UserUuid: "u-1", Type: opentera.UserEvent_USER_LEFT_SESSION, UserFullname: "Ada"}},
		{"DeviceEvent", &opentera.DeviceEvent{DeviceUuid: "d-1", Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: `"{\"battery\": 80}"`}},
		{"ServerCommand", &opentera.ServerCommand{Type: opentera.ServerCommand_CMD_CLIENT_DISCONNECT}},
		{"empty", &opentera.StopSessionEvent{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := opentera.NewAny(tc.msg)
			require.NoError(t, err)

			want, err := deterministic.Marshal(tc.msg)
			require.NoError(t, err)
			require.Equal(t, want, a.GetValue())

			back, err := a.UnmarshalNew()
			require.NoError(t, err)
			require.True(t, proto.Equal(tc.msg, back))
		})
	}
}
