// Package opentera holds OpenTera's wire messages (protobuf package
// opentera.protobuf from introlab/opentera_messages): the TeraMessage /
// TeraEvent / TeraModuleMessage envelopes, presence events (UserEvent,
// ParticipantEvent, DeviceEvent), session events (JoinSessionEvent,
// JoinSessionReplyEvent, LeaveSessionEvent, StopSessionEvent), system events
// (DatabaseEvent, LogEvent, LoginEvent, ArchiveEvent, ServerCommand), RPC
// (RPCMessage, Value) and a few obsolete messages (Result, CreateSession,
// UserRegisterToEvent).
//
// The messages are wire-compatible with OpenTera, field for field and enum for
// enum: same full names, field numbers, labels and enum numbers, so binary
// payloads exchanged over Redis and the JSON frames sent on websockets are
// interchangeable with the Python server and its clients.
//
// The *.pb.go files are generated from the .proto files in this directory by
// `make proto` (which runs `bash proto/generate.sh`); do not edit generated
// code, edit the .proto files and regenerate. Only doc.go and typeurl.go are
// hand-written.
//
// Messages packed in a google.protobuf.Any carry the type URL
// "type.googleapis.com/opentera.protobuf.<Name>" (e.g.
// "type.googleapis.com/opentera.protobuf.UserEvent"), the prefix used by
// OpenTera's Python Any.Pack; some clients compare that string literally. Use
// TypeURL and NewAny to build them.
//
// For server->client websocket frames, marshal with
// protojson.MarshalOptions{EmitDefaultValues: true}, which matches OpenTera's
// MessageToJson(always_print_fields_with_no_presence=True): every scalar and
// empty repeated field is emitted, enums as names, lowerCamelCase keys.
package opentera
