package directory

// Indexing viewers. An event path that keeps its sockets indexed by what their viewers can see
// asks a subject for its audience and visits only the matching sockets instead of every socket:
//
//	projects, uuids, ok := sub.AppendAudience(projects[:0], uuids[:0])
//	// candidates: if ok, the admins ([Access.Admin]), plus the viewers whose uuid is in uuids or
//	// whose AppendViewProjects holds one of projects.
//
// Both sides follow the access rules of the package documentation; the description is never
// narrower than [Access.SeesSubject] in the same snapshot (the contract lets it be wider; with the
// current rules it is exact).

// AppendViewProjects appends to dst the ids of the projects through which the viewer sees other
// entities: a non-admin user's projects. Admins (they see everyone), participants, devices and
// services (they see by uuid) append nothing. The strings belong to the snapshot.
func (a Access) AppendViewProjects(dst []string) []string {
	if a.n == nil || a.n.admin || a.n.kind != KindUser {
		return dst
	}
	for _, p := range a.n.projs {
		dst = append(dst, a.s.projects[p].ID)
	}
	return dst
}

// AppendAudience describes, in the subject's snapshot, every viewer that may see sub: when ok,
// such a viewer is an admin ([Access.Admin]), or its uuid is appended to uuids (the subject itself
// and its linked entities), or its [Access.AppendViewProjects] holds one of the project ids
// appended to projects (the subject's projects; none for a service, which users cannot see).
// ok is false, and nothing is appended, when no one sees sub (an unknown subject: admins
// included). The strings belong to the snapshot; it allocates only to grow the slices.
func (s Subject) AppendAudience(projects, uuids []string) (_, _ []string, ok bool) {
	if s.s == nil {
		return projects, uuids, false
	}
	n := &s.s.nodes[s.i]
	uuids = append(uuids, s.uuid)
	for _, l := range n.links {
		uuids = append(uuids, s.s.uuidOf(l))
	}
	if n.kind != KindService {
		for _, p := range n.projs {
			projects = append(projects, s.s.projects[p].ID)
		}
	}
	return projects, uuids, true
}
