package station

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

// This file is the role configuration of the station protocol (proto/station/v1), shared by
// the agent and the gateway's manager: one definition of an instance, of a configuration and of
// their conversion to and from the wire.

// Instance is the configuration of one uuid of a role, as the manager stores and pushes it and
// the agent applies and saves it.
type Instance struct {
	// Timestamp is when the manager last set the entry, in milliseconds since the Unix epoch.
	Timestamp int64 `json:"timestamp"`
	// Script is the role plugin's content hash, "sha256:<hex>"; empty when the manager has none.
	Script string `json:"script,omitempty"`
	// Options is a JSON object; nil means {}.
	Options json.RawMessage `json:"options,omitempty"`
}

// Roles is a station's role configuration: role → uuid → instance.
type Roles map[string]map[string]Instance

// Clone returns a deep copy of r (nil for nil; a role without uuids gets an empty map).
func (r Roles) Clone() Roles {
	if r == nil {
		return nil
	}
	out := make(Roles, len(r))
	for role, us := range r {
		out[role] = maps.Clone(us)
		if out[role] == nil {
			out[role] = map[string]Instance{}
		}
	}
	return out
}

// Names returns the role names, sorted.
func (r Roles) Names() []string { return slices.Sorted(maps.Keys(r)) }

// ToProto converts r to the wire map of UpdateConfiguration and Register.
func (r Roles) ToProto() map[string]*stationv1.RoleInstances {
	out := make(map[string]*stationv1.RoleInstances, len(r))
	for role, us := range r {
		ri := &stationv1.RoleInstances{Instances: make(map[string]*stationv1.RoleInstance, len(us))}
		for uuid, in := range us {
			ri.Instances[uuid] = &stationv1.RoleInstance{Timestamp: in.Timestamp, Script: in.Script, Options: string(in.Options)}
		}
		out[role] = ri
	}
	return out
}

// RolesFromProto converts the wire map. Options are kept as compact JSON (equal options are
// equal bytes), or as sent when they are not JSON (the receiver refuses them); empty options
// are nil.
func RolesFromProto(p map[string]*stationv1.RoleInstances) Roles {
	out := make(Roles, len(p))
	for role, ri := range p {
		m := make(map[string]Instance, len(ri.GetInstances()))
		for uuid, in := range ri.GetInstances() {
			if in == nil {
				continue
			}
			m[uuid] = Instance{Timestamp: in.Timestamp, Script: in.Script, Options: CompactJSON([]byte(in.Options))}
		}
		out[role] = m
	}
	return out
}

// CompactJSON returns b as compact JSON; b unchanged when it is not JSON, nil when empty.
func CompactJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return json.RawMessage(b)
	}
	return buf.Bytes()
}
