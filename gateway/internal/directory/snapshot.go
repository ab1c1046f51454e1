package directory

import (
	"crypto/sha256"
	"encoding/hex"
)

// Snapshot is one parsed, validated version of the identity file. It is immutable: every method is
// safe for concurrent use, and the pointers and slices it returns must not be modified.
//
// Lookups return (value, false) for unknown keys. Entity pointers point into the snapshot, so two
// lookups of the same entity in one snapshot return the same pointer.
type Snapshot struct {
	hash [sha256.Size]byte

	sites        []Site
	projects     []Project
	users        []User
	participants []Participant
	devices      []Device
	services     []Service

	siteByID    map[string]int32
	projectByID map[string]int32

	// nodes holds one node per entity: users first, then participants, devices and services, so
	// that node index = offset of the kind + index in the kind's slice.
	nodes             []node
	byUUID            map[string]int32
	userByName        map[string]int32
	participantByName map[string]int32
	byToken           map[[sha256.Size]byte]int32

	// projectSite[p] is the site index of project p; siteProjects[s] the sorted projects of site s.
	projectSite  []int32
	siteProjects [][]int32

	// exactMask is true when there are at most 64 projects, so node.mask is an exact project set.
	exactMask bool
}

// node is the precomputed access record of one entity. It is what the hot path touches.
type node struct {
	kind    Kind
	admin   bool // superadmin user or admin service
	enabled bool
	ent     int32   // index in the kind's slice
	mask    uint64  // bit p%64 set for every project p in projs
	projs   []int32 // sorted, unique project indices (user: its projects; participant: one; device: via sites)
	links   []int32 // sorted node indices of linked entities (participant ↔ device)
}

// Counts is the number of entries of each kind in a [Snapshot].
type Counts struct {
	Sites, Projects, Users, Participants, Devices, Services int
}

// Hash returns the hex SHA-256 of the bytes the snapshot was parsed from. [Store.Watch] uses it to
// skip reloads of identical content; it also identifies a directory version in logs.
func (s *Snapshot) Hash() string { return hex.EncodeToString(s.hash[:]) }

// Counts returns the number of entries of each kind.
func (s *Snapshot) Counts() Counts {
	return Counts{
		Sites: len(s.sites), Projects: len(s.projects), Users: len(s.users),
		Participants: len(s.participants), Devices: len(s.devices), Services: len(s.services),
	}
}

// lookup returns the node index of uuid if it is an entity of kind k.
func (s *Snapshot) lookup(k Kind, uuid string) (int32, bool) {
	i, ok := s.byUUID[uuid]
	if !ok || s.nodes[i].kind != k {
		return 0, false
	}
	return i, true
}

// User returns the user with the given uuid.
func (s *Snapshot) User(uuid string) (*User, bool) {
	if i, ok := s.lookup(KindUser, uuid); ok {
		return &s.users[s.nodes[i].ent], true
	}
	return nil, false
}

// UserByUsername returns the user with the given username (exact, case-sensitive match).
func (s *Snapshot) UserByUsername(name string) (*User, bool) {
	if i, ok := s.userByName[name]; ok {
		return &s.users[s.nodes[i].ent], true
	}
	return nil, false
}

// Participant returns the participant with the given uuid.
func (s *Snapshot) Participant(uuid string) (*Participant, bool) {
	if i, ok := s.lookup(KindParticipant, uuid); ok {
		return &s.participants[s.nodes[i].ent], true
	}
	return nil, false
}

// ParticipantByUsername returns the participant with the given username (exact match).
func (s *Snapshot) ParticipantByUsername(name string) (*Participant, bool) {
	if i, ok := s.participantByName[name]; ok {
		return &s.participants[s.nodes[i].ent], true
	}
	return nil, false
}

// ParticipantByToken returns the participant whose static token is token.
func (s *Snapshot) ParticipantByToken(token string) (*Participant, bool) {
	if i, ok := s.tokenNode(KindParticipant, token); ok {
		return &s.participants[s.nodes[i].ent], true
	}
	return nil, false
}

// Device returns the device with the given uuid.
func (s *Snapshot) Device(uuid string) (*Device, bool) {
	if i, ok := s.lookup(KindDevice, uuid); ok {
		return &s.devices[s.nodes[i].ent], true
	}
	return nil, false
}

// DeviceIndex returns the device's 0-based position among the file's devices, or -1.
func (s *Snapshot) DeviceIndex(uuid string) int {
	if i, ok := s.lookup(KindDevice, uuid); ok {
		return int(s.nodes[i].ent)
	}
	return -1
}

// DeviceByToken returns the device whose static token is token.
func (s *Snapshot) DeviceByToken(token string) (*Device, bool) {
	if i, ok := s.tokenNode(KindDevice, token); ok {
		return &s.devices[s.nodes[i].ent], true
	}
	return nil, false
}

// Service returns the service with the given uuid.
func (s *Snapshot) Service(uuid string) (*Service, bool) {
	if i, ok := s.lookup(KindService, uuid); ok {
		return &s.services[s.nodes[i].ent], true
	}
	return nil, false
}

// ServiceByToken returns the service whose static token is token.
func (s *Snapshot) ServiceByToken(token string) (*Service, bool) {
	if i, ok := s.tokenNode(KindService, token); ok {
		return &s.services[s.nodes[i].ent], true
	}
	return nil, false
}

// Project returns the project with the given id.
func (s *Snapshot) Project(id string) (*Project, bool) {
	if i, ok := s.projectByID[id]; ok {
		return &s.projects[i], true
	}
	return nil, false
}

// Site returns the site with the given id.
func (s *Snapshot) Site(id string) (*Site, bool) {
	if i, ok := s.siteByID[id]; ok {
		return &s.sites[i], true
	}
	return nil, false
}

// ByToken resolves a static token of any kind (participant, device or service) with one hash and
// one map lookup. It returns the owner's kind and uuid.
//
// # Notes
//
// Tokens are looked up by their SHA-256, so the snapshot's maps never use a secret as a key.
func (s *Snapshot) ByToken(token string) (Kind, string, bool) {
	if token == "" {
		return 0, "", false
	}
	i, ok := s.byToken[sha256.Sum256([]byte(token))]
	if !ok {
		return 0, "", false
	}
	return s.nodes[i].kind, s.uuidOf(i), true
}

func (s *Snapshot) tokenNode(k Kind, token string) (int32, bool) {
	if token == "" {
		return 0, false
	}
	i, ok := s.byToken[sha256.Sum256([]byte(token))]
	if !ok || s.nodes[i].kind != k {
		return 0, false
	}
	return i, true
}

// Enabled reports whether the entity of kind k with the given uuid exists and may log in. Services
// have no enabled flag and are always enabled.
func (s *Snapshot) Enabled(k Kind, uuid string) bool {
	i, ok := s.lookup(k, uuid)
	return ok && s.nodes[i].enabled
}

// Entity returns the display name of the entity of kind k with the given uuid: a user's fullname
// (its username when the fullname is empty), a participant's, device's or service's name.
func (s *Snapshot) Entity(k Kind, uuid string) (name string, ok bool) {
	i, ok := s.lookup(k, uuid)
	if !ok {
		return "", false
	}
	e := s.nodes[i].ent
	switch k {
	case KindUser:
		if u := &s.users[e]; u.Fullname != "" {
			return u.Fullname, true
		}
		return s.users[e].Username, true
	case KindParticipant:
		return s.participants[e].Name, true
	case KindDevice:
		return s.devices[e].Name, true
	default:
		return s.services[e].Name, true
	}
}

func (s *Snapshot) uuidOf(i int32) string {
	n := &s.nodes[i]
	switch n.kind {
	case KindUser:
		return s.users[n.ent].UUID
	case KindParticipant:
		return s.participants[n.ent].UUID
	case KindDevice:
		return s.devices[n.ent].UUID
	default:
		return s.services[n.ent].UUID
	}
}
