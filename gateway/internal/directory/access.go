package directory

import "slices"

// Access is the precomputed access handle of one viewing entity (a recipient of events). It is a
// small value (three words) that is cheap to copy and store per connection; [Access.Sees] and
// [Access.SeesSubject] never allocate.
//
// The zero Access sees nothing. An Access stays bound to the snapshot it came from: after a reload,
// get a fresh one from the new snapshot (for example in the [Store.Watch] callback).
//
// Typical use on the event path, resolving the event's subject once and testing each recipient:
//
//	sub, ok := snap.Subject(directory.KindParticipant, ev.ParticipantUUID)
//	for _, r := range recipients {
//		if ok && r.access.SeesSubject(sub) {
//			deliver(r)
//		}
//	}
type Access struct {
	s *Snapshot
	n *node
	i int32
}

// Subject is a resolved event subject: an entity that events are about. Resolve it once per event
// with [Snapshot.Subject] and test many recipients with [Access.SeesSubject].
type Subject struct {
	s    *Snapshot
	i    int32
	kind Kind
	uuid string
}

// Principal returns the access handle of the entity of kind k with the given uuid. It reports false
// when the snapshot has no such entity. Disabled entities still get a handle: being disabled
// blocks logins, not visibility.
func (s *Snapshot) Principal(k Kind, uuid string) (Access, bool) {
	i, ok := s.lookup(k, uuid)
	if !ok {
		return Access{}, false
	}
	return Access{s: s, n: &s.nodes[i], i: i}, true
}

// Subject resolves the entity of kind k with the given uuid as an event subject. It reports false
// for an unknown entity; the zero Subject is seen by no one, superadmins included (fail closed).
func (s *Snapshot) Subject(k Kind, uuid string) (Subject, bool) {
	i, ok := s.lookup(k, uuid)
	if !ok {
		return Subject{kind: k, uuid: uuid}, false
	}
	return Subject{s: s, i: i, kind: k, uuid: uuid}, true
}

// CanSee reports whether the viewer (kind and uuid) may see events about the subject (kind and
// uuid), following the rules in the package documentation. Unknown viewers and unknown subjects
// give false. It costs two map lookups; on hot paths keep an [Access] per viewer instead.
func (s *Snapshot) CanSee(viewer Kind, viewerUUID string, subject Kind, subjectUUID string) bool {
	vi, ok := s.lookup(viewer, viewerUUID)
	if !ok {
		return false
	}
	si, ok := s.lookup(subject, subjectUUID)
	if !ok {
		return false
	}
	return s.sees(&s.nodes[vi], vi, si)
}

// Valid reports whether a is a handle of an existing entity (not the zero Access).
func (a Access) Valid() bool { return a.n != nil }

// Kind returns the viewer's kind, or 0 for the zero Access.
func (a Access) Kind() Kind {
	if a.n == nil {
		return 0
	}
	return a.n.kind
}

// UUID returns the viewer's uuid, or "" for the zero Access.
func (a Access) UUID() string {
	if a.n == nil {
		return ""
	}
	return a.s.uuidOf(a.i)
}

// Admin reports whether the viewer is a superadmin user or an admin service (sees everyone).
func (a Access) Admin() bool { return a.n != nil && a.n.admin }

// Snapshot returns the snapshot the handle belongs to (nil for the zero Access).
func (a Access) Snapshot() *Snapshot { return a.s }

// Sees reports whether the viewer may see events about the entity of kind subjectKind with uuid
// subjectUUID. It costs one map lookup and no allocation.
func (a Access) Sees(subjectKind Kind, subjectUUID string) bool {
	if a.n == nil {
		return false
	}
	si, ok := a.s.lookup(subjectKind, subjectUUID)
	if !ok {
		return false
	}
	return a.s.sees(a.n, a.i, si)
}

// SeesSubject reports whether the viewer may see events about sub. When both come from the same
// snapshot it needs no map lookup (a few nanoseconds); otherwise it falls back to [Access.Sees]
// with the subject's kind and uuid.
func (a Access) SeesSubject(sub Subject) bool {
	if a.n == nil {
		return false
	}
	if sub.s == a.s {
		return a.s.sees(a.n, a.i, sub.i)
	}
	if sub.s == nil {
		return false
	}
	return a.Sees(sub.kind, sub.uuid)
}

// Kind returns the subject's kind.
func (s Subject) Kind() Kind { return s.kind }

// UUID returns the subject's uuid.
func (s Subject) UUID() string { return s.uuid }

// Valid reports whether the subject was found in its snapshot.
func (s Subject) Valid() bool { return s.s != nil }

// sees is the access rule, on node indices. v is &s.nodes[vi].
func (s *Snapshot) sees(v *node, vi, si int32) bool {
	if vi == si || v.admin {
		return true
	}
	sn := &s.nodes[si]
	switch v.kind {
	case KindUser, KindService:
		if sn.kind == KindService || v.mask&sn.mask == 0 {
			return false
		}
		return s.exactMask || intersects(v.projs, sn.projs)
	case KindParticipant:
		return sn.kind == KindDevice && contains(v.links, si)
	case KindDevice:
		return sn.kind == KindParticipant && contains(v.links, si)
	}
	return false
}

// intersects reports whether two sorted slices share an element.
func intersects(a, b []int32) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}

// contains reports whether the sorted slice a holds x.
func contains(a []int32, x int32) bool {
	if len(a) <= 8 {
		for _, v := range a {
			if v == x {
				return true
			}
		}
		return false
	}
	_, found := slices.BinarySearch(a, x)
	return found
}

// Directory facts, for filter plugins and handlers. They return fresh slices the caller may keep.

// AccessibleProjects returns the ids of the projects the user can access, in file order: every
// project for a superadmin, the user's own projects otherwise. It returns nil for an unknown user.
func (s *Snapshot) AccessibleProjects(userUUID string) []string {
	i, ok := s.lookup(KindUser, userUUID)
	if !ok {
		return nil
	}
	if s.nodes[i].admin {
		out := make([]string, len(s.projects))
		for j := range s.projects {
			out[j] = s.projects[j].ID
		}
		return out
	}
	return s.projectIDs(s.nodes[i].projs)
}

// ParticipantProject returns the id of the participant's project.
func (s *Snapshot) ParticipantProject(uuid string) (string, bool) {
	p, ok := s.Participant(uuid)
	if !ok {
		return "", false
	}
	return p.Project, true
}

// DeviceSites returns the ids of the device's sites (without duplicates), or nil for an unknown
// device.
func (s *Snapshot) DeviceSites(uuid string) []string {
	d, ok := s.Device(uuid)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(d.Sites))
	for _, id := range d.Sites {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// DeviceProjects returns the ids of the projects the device belongs to through its sites, in file
// order, or nil for an unknown device.
func (s *Snapshot) DeviceProjects(uuid string) []string {
	i, ok := s.lookup(KindDevice, uuid)
	if !ok {
		return nil
	}
	return s.projectIDs(s.nodes[i].projs)
}

// DeviceParticipants returns the uuids of the participants linked to the device, or nil.
func (s *Snapshot) DeviceParticipants(uuid string) []string {
	i, ok := s.lookup(KindDevice, uuid)
	if !ok {
		return nil
	}
	return s.uuids(s.nodes[i].links)
}

// ParticipantDevices returns the uuids of the devices linked to the participant, or nil.
func (s *Snapshot) ParticipantDevices(uuid string) []string {
	i, ok := s.lookup(KindParticipant, uuid)
	if !ok {
		return nil
	}
	return s.uuids(s.nodes[i].links)
}

func (s *Snapshot) projectIDs(idx []int32) []string {
	out := make([]string, len(idx))
	for j, p := range idx {
		out[j] = s.projects[p].ID
	}
	return out
}

func (s *Snapshot) uuids(idx []int32) []string {
	out := make([]string, len(idx))
	for j, n := range idx {
		out[j] = s.uuidOf(n)
	}
	return out
}
