package directory_test

import (
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
