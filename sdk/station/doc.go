// Package station is the station agent (the conference manager's station, docs/stations.md): it logs in to a teragate gateway as a station device,
// opens the bidirectional /wss/station websocket, registers (hostname, MAC, IP, blocked roles,
// current role config), and applies the role configuration the manager pushes, running each
// role uuid as an instance of the role's Wasm plugin. `teragate station` is this package behind
// flags.
//
// # Configuration pushes
//
// An UpdateConfiguration is validated before anything is touched, in the reference's order:
// a role in [Config.BlockedRoles] → ROLE_BLOCKED; a role without a factory (no plugin hash, a
// plugin that cannot be fetched, does not match its hash, does not load or implements another
// role) → MISSING_ROLE_FACTORY; more uuids than the role's instance limit, or options that are
// not a JSON object → INVALID_CONFIGURATION. Each error's message names the offending roles.
// A valid config is applied per uuid: removed uuids are stopped, kept ones updated (or swapped
// to a new plugin: stop on the old instance, start on a new one with the same uuid and options),
// new ones started. The applied config is saved in [Config.StateDir] (atomic write) and reported
// at the next registration; a restarted agent starts it again before it reaches the manager.
//
// # Role plugins
//
// Plugins are fetched from the manager by content hash (GET /api/stations/roles/<sha256 hex>),
// verified against the hash, cached on disk under StateDir/roles and compiled by wazero with an
// on-disk compilation cache. Every call runs under a deadline ([Config.CallTimeout]) in a
// runtime that stops a guest at its deadline, with a memory limit; an instance whose call
// fails is discarded and started again with backoff. The only capability a role has is running
// the programs [Config.Programs] allow-lists, by name; how they end (exit code, signal) is
// reported to the role on its next tick and to the manager. A job the manager offers
// (JobOffer) is offered to the running instances of its role in turn (tg_role_offer) until one
// accepts.
//
// # Concurrency
//
// [Agent.Run] runs until its context ends, reconnecting with backoff (1 s doubling to 5 s, reset
// after a successful registration). An Agent is safe for concurrent use; role calls are
// serialised (one at a time per agent).
package station
