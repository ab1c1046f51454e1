package stations

import (
	stationsdk "github.com/teragate/teragate/sdk/station"
)

// Instance is the configuration of one uuid of a role, as stored, pushed and shown in the admin
// API: the station protocol's one definition, shared with the agent.
type Instance = stationsdk.Instance

// Roles is a station's role configuration: role → uuid → instance.
type Roles = stationsdk.Roles

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
