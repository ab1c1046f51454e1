package pdk_test

import (
	"google.golang.org/protobuf/encoding/prototext"

	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

type pluginv1Rule = pluginv1.Rule

func unmarshalText(s string, m *pluginv1.Rule) error { return prototext.Unmarshal([]byte(s), m) }
