// Package directory is teragate's identity directory: the sites, projects, users, participants,
// devices and services read from a YAML identity file, and the access relations between them.
//
// # Responsibility
//
// The package parses and validates the identity file ([Parse], [Load]) into an immutable
// [Snapshot], answers lookups by uuid, username and secret token, and precomputes who may see whom
// ([Snapshot.CanSee], [Snapshot.Principal], [Access.Sees]) so that event filtering can ask the
// question for thousands of recipients per event without allocating. A [Store] holds the current
// snapshot and [Store.Watch] hot-reloads it when the file changes.
//
// It does not check passwords, issue tokens or keep login state: that is package auth. It does not
// know about connections, presence or sessions.
//
// # File format
//
//	sites:        [{id: s1, name: Montreal}]
//	projects:     [{id: p1, name: Rehab, site: s1}]
//	users:        [{uuid: …, username: alice, password_hash: <bcrypt>, fullname: Alice A, superadmin: false, projects: [p1]}]
//	participants: [{uuid: …, username: pat, password_hash: <bcrypt>, token: <secret>, name: Pat, project: p1}]
//	devices:      [{uuid: …, token: <secret>, name: Robot 1, sites: [s1], participants: [<participant uuid>], onlineable: true, station: false}]
//	services:     [{uuid: …, name: VideoRehab, token: <secret>, admin: true}, {uuid: …, name: Reports, token: <secret>, projects: [p1]}]
//
// Unknown keys are ignored. Users, participants and devices accept `enabled: false` (the default is
// true), which makes every login of that entity fail with a "disabled" error. The rules that
// [Parse] enforces are listed on [Parse].
//
// # Access rules (as OpenTera)
//
//   - A superadmin user sees everyone.
//   - A user sees itself and the users, participants and devices of the projects it belongs to. A
//     device belongs to project P when one of the device's sites is P's site.
//   - A participant sees itself and its linked devices (the devices whose participants list names it).
//   - A device sees itself and its linked participants.
//   - An admin service sees everyone. A non-admin service sees itself and, when it lists projects,
//     the users, participants and devices of those projects (as a user of them would). What a
//     service sees is also what it may publish about and name in RPC arguments.
//
// # Concurrency
//
// A [Snapshot] is never modified after [Parse] returns it; every method is safe for concurrent use
// and values it returns that hold slices or pointers into the snapshot must be treated as read-only.
// A [Store] is safe for concurrent use: [Store.Current] is one atomic load, and a reload replaces
// the whole snapshot at once, so a reader always sees one consistent version. [Access] and [Subject]
// handles stay bound to the snapshot they came from; callers that keep them across reloads must
// recompute them in the reload callback.
package directory
