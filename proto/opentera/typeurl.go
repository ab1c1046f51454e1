package opentera

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TypeURLPrefix is the google.protobuf.Any type URL prefix used by OpenTera
// (the protobuf default, as produced by Python's Any.Pack). Clients compare
// full type URLs literally, so it must not change.
const TypeURLPrefix = "type.googleapis.com/"

// TypeURL returns the Any type URL of m, e.g.
// "type.googleapis.com/opentera.protobuf.UserEvent".
func TypeURL(m proto.Message) string {
	return TypeURLPrefix + string(m.ProtoReflect().Descriptor().FullName())
}

// NewAny packs m into a google.protobuf.Any with OpenTera's type URL
// (TypeURLPrefix + full message name).
//
// Unlike anypb.New, the value is marshalled deterministically
// (proto.MarshalOptions{Deterministic: true}), so equal messages always
// produce identical bytes. anypb.New uses the same "type.googleapis.com/"
// prefix, so both produce the same type URL.
func NewAny(m proto.Message) (*anypb.Any, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: TypeURL(m), Value: b}, nil
}
