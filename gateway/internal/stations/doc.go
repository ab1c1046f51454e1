// Package stations is the conference manager (docs/stations.md):
// the manager side of the station ↔ manager protocol (proto/station/v1) on /wss/station, the
// per-station role configuration (merged, persisted, pushed), the role plugins it serves by
// content hash from a watched roles directory, and the admin API over all of it.
//
// # Protocol
//
// A station logs in as a device of the directory (GET /api/device/login?with_websocket=true,
// the device must be marked station: true), opens /wss/station?id=<ticket> with the ticket of
// the websocket_url it got, and registers. The manager merges the config it stored for the
// station with the reported one per uuid ([Merge]: larger timestamp wins, a tie keeps the
// manager's, uuids known to one side only are kept — the reference's KeyError is not), fills
// each entry's script with the current content hash of the role's plugin, stamps the entries with
// the current time, pushes UpdateConfiguration and waits for the station's ConfigResult; then it
// persists the config (on success) and only then answers the Register. Errors ROLE_BLOCKED,
// MISSING_ROLE_FACTORY and INVALID_CONFIGURATION come back in the RegisterReply (none escapes as
// a failed register, unlike the reference).
//
// # Limits
//
// A station is a device, trusted with its own role config but not with the manager's resources.
// A Register is checked as an admin edit is (role names, uuids, options that are JSON objects)
// and refused with INVALID_CONFIGURATION naming the problem; a station's config is bounded in
// roles, uuids per role and encoded size ([Limits]), whether it grows by registers or edits; one
// Register per connection is served at a time; a role status and the device status it makes
// are bounded; and a connection that sends [Limits].MaxInvalidFrames invalid frames is closed
// with 1008 "too many invalid frames" (teragate_stations_invalid_frames_total counts them by
// reason).
//
// # Roles directory
//
// <roles dir>/<role>.wasm is the plugin of role <role>. The directory is watched (fsnotify,
// debounced, content-hashed: rewriting the same bytes does nothing); a new hash is pushed to
// every online station whose config has that role, which swaps its instances without
// reconnecting. Every version seen since start is served at GET /api/stations/roles/<sha256 hex>.
//
// # Persistence
//
// On a single node: one JSON file per station (by device uuid) under the state directory, written to a temporary
// file, fsynced, renamed over the old one and the directory fsynced: a station's config survives
// a restart and kill -9 (the file is either the old or the new one).
//
// # Cluster
//
// With [Config.Cluster] (teragate's --redis) the stations belong to the cluster. A station's hash
// in Redis (teragate:stations:station:<uuid>) holds its record (the persisted config), the node
// and connection holding its socket, the count of its registers and the holder's admin view
// (running instances, status, last result, jobs), written by the holder after each change and
// only while its connection holds the station (a Lua compare on the connection id); the set
// teragate:stations:ids lists them. The files of StateDir are not used (their records are
// copied into Redis at start when Redis lacks them).
//
// Any node lists every station: online when the node holding it is alive by the presence
// heartbeat, so a dead node's stations are offline after its TTL. A change (an admin edit) or
// a job offer for a station held by another live node is sent to that node on the bus
// (teragate.stations.node.<id>, JSON) and served there exactly as a local one; its answer comes
// back on teragate.stations.answer.<id>. An edit of a station nobody holds is applied to its
// record in one WATCH/MULTI transaction, which fails over to the holder when a connection claims
// the station meanwhile. A station connecting to a node claims it (a Lua script); the node of its
// previous connection is told to close that one.
//
// # Concurrency
//
// [Manager] is safe for concurrent use. Each station's configuration changes (register, admin
// edits, role reloads) are serialised by a per-station lock held across the push and its answer;
// lock order: station.op before Manager.mu before station.mu.
package stations
