package directory_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestAccessMatchesReference compares every (viewer, subject) pair of random directories with a
// direct transcription of the rules, for small project counts (exact bit masks) and large ones
// (mask as a filter, then sorted-slice intersection).
func TestAccessMatchesReference(t *testing.T) {
	sizes := []struct {
		name string
		size genSize
	}{
		{"few projects", genSize{sites: 3, projects: 6, users: 25, participants: 30, devices: 20, services: 2, superadmins: 2}},
		{"64 projects", genSize{sites: 10, projects: 64, users: 30, participants: 30, devices: 30, services: 2, superadmins: 1}},
		{"many projects", genSize{sites: 20, projects: 300, users: 40, participants: 40, devices: 40, services: 2, superadmins: 1}},
		{"no participants", genSize{sites: 2, projects: 2, users: 5, devices: 5, services: 1}},
	}
	seeds := 4
	if testing.Short() {
		seeds = 1
	}
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			for seed := range seeds {
				f := genDir(uint64(seed), sz.size)
				s := f.parse(t)
				all := f.all()
				subjects := make([]directory.Subject, len(all))
				for i, r := range all {
					sub, ok := s.Subject(r.kind, r.uuid)
					require.True(t, ok)
					subjects[i] = sub
				}
				for _, v := range all {
					a, ok := s.Principal(v.kind, v.uuid)
					require.True(t, ok)
					for i, sub := range all {
						// Plain comparisons: require is too slow for ~100k pairs under -race.
						want := f.refSees(v, sub)
						if got := a.SeesSubject(subjects[i]); got != want {
							t.Fatalf("seed %d: %v SeesSubject %v = %v, want %v", seed, v, sub, got, want)
						}
						if got := a.Sees(sub.kind, sub.uuid); got != want {
							t.Fatalf("seed %d: %v Sees %v = %v, want %v", seed, v, sub, got, want)
						}
						if got := s.CanSee(v.kind, v.uuid, sub.kind, sub.uuid); got != want {
							t.Fatalf("seed %d: CanSee(%v, %v) = %v, want %v", seed, v, sub, got, want)
						}
					}
				}
			}
		})
	}
}

// TestAccessAcrossSnapshots checks that a handle from one snapshot answers for a subject resolved
// in another by falling back to the uuid.
func TestAccessAcrossSnapshots(t *testing.T) {
	s1, s2 := directory.Demo(), directory.Demo()
	a, _ := s1.Principal(directory.KindUser, directory.DemoAliceUUID)
	pat, _ := s2.Subject(directory.KindParticipant, directory.DemoPatUUID)
	paula, _ := s2.Subject(directory.KindParticipant, directory.DemoPaulaUUID)
	require.True(t, a.SeesSubject(pat))
	require.False(t, a.SeesSubject(paula))

	ghost, ok := s2.Subject(directory.KindParticipant, "ghost")
	require.False(t, ok)
	require.False(t, ghost.Valid())
	require.Equal(t, "ghost", ghost.UUID())
	require.Equal(t, directory.KindParticipant, ghost.Kind())
	adm, _ := s1.Principal(directory.KindUser, directory.DemoAdminUUID)
	require.False(t, adm.SeesSubject(ghost), "an unknown subject is seen by no one")
	require.False(t, adm.SeesSubject(directory.Subject{}))
	require.False(t, directory.Access{}.SeesSubject(pat))
}

// TestAccessAllocs pins the hot path at zero allocations.
func TestAccessAllocs(t *testing.T) {
	s := directory.Demo()
	a, _ := s.Principal(directory.KindUser, directory.DemoAliceUUID)
	sub, _ := s.Subject(directory.KindParticipant, directory.DemoPatUUID)
	allocs := testing.AllocsPerRun(100, func() {
		_ = a.SeesSubject(sub)
		_ = a.Sees(directory.KindParticipant, directory.DemoPatUUID)
		_ = s.CanSee(directory.KindUser, directory.DemoAliceUUID, directory.KindParticipant, directory.DemoPatUUID)
		_, _ = s.Principal(directory.KindUser, directory.DemoAliceUUID)
		_, _ = s.Subject(directory.KindParticipant, directory.DemoPatUUID)
	})
	require.Zero(t, allocs)
}

// TestAudienceCoversViewers checks, for every (viewer, subject) pair of random directories, that a
// viewer sees the subject exactly when the subject's audience describes it (an admin, a listed
// uuid or a shared view project; the contract only needs "sees ⇒ described", but with the current
// rules it is exact), and that an unknown subject has no audience.
func TestAudienceCoversViewers(t *testing.T) {
	sizes := []genSize{
		{sites: 3, projects: 6, users: 25, participants: 30, devices: 20, services: 2, superadmins: 2},
		{sites: 20, projects: 300, users: 40, participants: 40, devices: 40, services: 2, superadmins: 1},
		{sites: 2, projects: 2, users: 5, devices: 5, services: 1},
	}
	for _, sz := range sizes {
		f := genDir(7, sz)
		s := f.parse(t)
		all := f.all()
		var projects, uuids, view []string
		for _, sr := range all {
			sub, ok := s.Subject(sr.kind, sr.uuid)
			require.True(t, ok)
			projects, uuids, ok = sub.AppendAudience(projects[:0], uuids[:0])
			require.True(t, ok)
			for _, v := range all {
				a, _ := s.Principal(v.kind, v.uuid)
				view = a.AppendViewProjects(view[:0])
				described := a.Admin() || slices.Contains(uuids, v.uuid) ||
					slices.ContainsFunc(view, func(p string) bool { return slices.Contains(projects, p) })
				sees := a.SeesSubject(sub)
				if sees != described {
					t.Fatalf("%v sees %v = %v, but described by its audience = %v (projects %v, uuids %v)", v, sr, sees, described, projects, uuids)
				}
			}
		}
	}
	sub, ok := directory.Demo().Subject(directory.KindUser, "nobody")
	require.False(t, ok)
	p, u, ok := sub.AppendAudience(nil, nil)
	require.False(t, ok)
	require.Empty(t, p)
	require.Empty(t, u)
}
