package directory_test

import (
	"testing"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// FuzzParseDirectory checks that Parse never panics and that whatever it accepts answers every
// lookup and access question without panicking.
func FuzzParseDirectory(f *testing.F) {
	f.Add(directory.DemoYAML)
	f.Add([]byte(""))
	f.Add([]byte("sites: [{id: s1}]\nprojects: [{id: p1, site: s1}]\nparticipants: [{uuid: a, project: p1, token: t}]\ndevices: [{uuid: d, token: u, sites: [s1], participants: [a]}]"))
	f.Add([]byte("users: [{uuid: a, username: x, password_hash: '$2a$04$rNy/rs6j1k138YQswh3RjeM9jhaJuzCPW2dkeRVfP7b4ZaP8e0y3K', superadmin: true}]"))
	f.Add([]byte("a: &a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := directory.Parse(data)
		if err != nil {
			if s != nil {
				t.Fatal("snapshot returned with an error")
			}
			return
		}
		_ = s.Counts()
		kinds := []directory.Kind{0, directory.KindUser, directory.KindParticipant, directory.KindDevice, directory.KindService, 7}
		ids := []string{"", "a", "d", directory.DemoAliceUUID, directory.DemoPatUUID, directory.DemoRobot1UUID}
		for _, vk := range kinds {
			for _, v := range ids {
				a, _ := s.Principal(vk, v)
				_, _ = s.Entity(vk, v)
				_ = s.AccessibleProjects(v)
				_ = s.DeviceParticipants(v)
				_ = s.ParticipantDevices(v)
				_ = s.DeviceProjects(v)
				for _, sk := range kinds {
					for _, sub := range ids {
						sj, _ := s.Subject(sk, sub)
						if s.CanSee(vk, v, sk, sub) != a.SeesSubject(sj) {
							t.Fatalf("CanSee and SeesSubject disagree for %v %q → %v %q", vk, v, sk, sub)
						}
					}
				}
			}
		}
	})
}
