package stations

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	stationv1 "github.com/teragate/teragate/proto/station/v1"
)

// Instance is the configuration of one uuid of a role, as stored and shown in the admin API.
type Instance struct {
	// Timestamp is when the entry was last set, in milliseconds since the Unix epoch.
	Timestamp int64 `json:"timestamp"`
	// Script is the role plugin's content hash, "sha256:<hex>"; empty when the manager has none.
	Script string `json:"script,omitempty"`
	// Options is a JSON object; nil means {}.
	Options json.RawMessage `json:"options,omitempty"`
}

// Roles is a station's role configuration: role → uuid → instance.
type Roles map[string]map[string]Instance

// Clone returns a deep copy of r.
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

// Merge merges the manager's stored config with the one a station reported (the conference
// manager's StationConfigManager merge, with its KeyError fixed): the union of roles and, per
// role, of uuids; a uuid on both sides keeps the entry with the larger timestamp, the manager's
// on a tie; a uuid on one side only keeps that side's entry. Neither argument is modified.
func Merge(manager, station Roles) Roles {
	out := manager.Clone()
	if out == nil {
		out = Roles{}
	}
	for role, us := range station {
		m := out[role]
		if m == nil {
			m = map[string]Instance{}
			out[role] = m
		}
		for uuid, st := range us {
			if cur, ok := m[uuid]; !ok || st.Timestamp > cur.Timestamp {
				m[uuid] = st
			}
		}
	}
	return out
}

// stamp sets every entry's timestamp to now (the reference's update_timestamps: a timestamp
// means "last pushed by the manager").
func stamp(r Roles, now int64) {
	for _, us := range r {
		for uuid, in := range us {
			in.Timestamp = now
			us[uuid] = in
		}
	}
}

// compact returns b as compact JSON (options are kept in one canonical form, so that equal
// options are equal bytes); b unchanged when it is not JSON, nil when empty.
func compact(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return json.RawMessage(b)
	}
	return buf.Bytes()
}

// rolesFromProto converts the wire map.
func rolesFromProto(p map[string]*stationv1.RoleInstances) Roles {
	out := Roles{}
	for role, ri := range p {
		m := map[string]Instance{}
		for uuid, in := range ri.GetInstances() {
			if in == nil {
				continue
			}
			i := Instance{Timestamp: in.Timestamp, Script: in.Script, Options: compact([]byte(in.Options))}
			m[uuid] = i
		}
		out[role] = m
	}
	return out
}

// toProto converts r to the wire map.
func (r Roles) toProto() map[string]*stationv1.RoleInstances {
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
