package directory_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestDemoLogins checks that every documented demo credential works against the embedded file.
func TestDemoLogins(t *testing.T) {
	s := directory.Demo()
	require.Equal(t, directory.Counts{Sites: 2, Projects: 3, Users: 3, Participants: 2, Devices: 2, Services: 1}, s.Counts())
	require.Len(t, directory.DemoLogins, 8)
	for _, l := range directory.DemoLogins {
		t.Run(l.Kind.String()+"/"+l.UUID, func(t *testing.T) {
			var hash string
			switch l.Kind {
			case directory.KindUser:
				u, ok := s.UserByUsername(l.Username)
				require.True(t, ok)
				require.Equal(t, l.UUID, u.UUID)
				hash = u.PasswordHash
			case directory.KindParticipant:
				p, ok := s.ParticipantByUsername(l.Username)
				require.True(t, ok)
				require.Equal(t, l.UUID, p.UUID)
				hash = p.PasswordHash
			}
			if l.Password != "" {
				require.Equal(t, "$2a$10$", hash[:7], "demo hashes use cost 10")
				// bcrypt at cost 10 is slow under -race: with -short, check one password only.
				if !testing.Short() || l.Username == "alice" {
					require.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte(l.Password)))
				}
			}
			if l.Token != "" {
				require.GreaterOrEqual(t, len(l.Token), 32)
				k, uuid, ok := s.ByToken(l.Token)
				require.True(t, ok)
				require.Equal(t, l.Kind, k)
				require.Equal(t, l.UUID, uuid)
			}
			require.True(t, s.Enabled(l.Kind, l.UUID))
			require.NotEmpty(t, l.Note)
		})
	}
}

func TestDemoAccess(t *testing.T) {
	s := directory.Demo()
	const (
		admin, alice, bob = directory.DemoAdminUUID, directory.DemoAliceUUID, directory.DemoBobUUID
		pat, paula        = directory.DemoPatUUID, directory.DemoPaulaUUID
		robot1, robot2    = directory.DemoRobot1UUID, directory.DemoRobot2UUID
		svc               = directory.DemoServiceUUID
	)
	u, p, d, v := directory.KindUser, directory.KindParticipant, directory.KindDevice, directory.KindService
	tests := []struct {
		name    string
		vk      directory.Kind
		viewer  string
		sk      directory.Kind
		subject string
		want    bool
	}{
		{"admin sees alice", u, admin, u, alice, true},
		{"admin sees paula", u, admin, p, paula, true},
		{"admin sees robot2", u, admin, d, robot2, true},
		{"admin sees the service", u, admin, v, svc, true},
		{"alice sees herself", u, alice, u, alice, true},
		{"alice sees pat (p1)", u, alice, p, pat, true},
		{"alice does not see paula (p3)", u, alice, p, paula, false},
		{"alice sees robot1 (s1 hosts p1)", u, alice, d, robot1, true},
		{"alice does not see robot2 (s2)", u, alice, d, robot2, false},
		{"alice does not see bob", u, alice, u, bob, false},
		{"alice does not see admin (no projects)", u, alice, u, admin, false},
		{"alice does not see the service", u, alice, v, svc, false},
		{"bob sees paula", u, bob, p, paula, true},
		{"bob sees robot2", u, bob, d, robot2, true},
		{"bob does not see pat", u, bob, p, pat, false},
		{"pat sees herself", p, pat, p, pat, true},
		{"pat sees robot1", p, pat, d, robot1, true},
		{"pat does not see robot2", p, pat, d, robot2, false},
		{"pat does not see paula", p, pat, p, paula, false},
		{"pat does not see alice", p, pat, u, alice, false},
		{"robot1 sees itself", d, robot1, d, robot1, true},
		{"robot1 sees pat", d, robot1, p, pat, true},
		{"robot1 does not see paula", d, robot1, p, paula, false},
		{"robot1 does not see robot2", d, robot1, d, robot2, false},
		{"robot1 does not see alice", d, robot1, u, alice, false},
		{"admin service sees everyone", v, svc, p, pat, true},
		{"wrong kind for the subject", u, alice, d, pat, false},
		{"wrong kind for the viewer", p, alice, p, pat, false},
		{"unknown subject, even for admin", u, admin, u, "ghost", false},
		{"unknown viewer", u, "ghost", u, "ghost", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, s.CanSee(tt.vk, tt.viewer, tt.sk, tt.subject))
			a, ok := s.Principal(tt.vk, tt.viewer)
			if !ok {
				require.False(t, a.Valid())
				require.False(t, a.Sees(tt.sk, tt.subject))
				return
			}
			require.Equal(t, tt.want, a.Sees(tt.sk, tt.subject))
			sub, _ := s.Subject(tt.sk, tt.subject)
			require.Equal(t, tt.want, a.SeesSubject(sub))
		})
	}
}

func TestDemoFacts(t *testing.T) {
	s := directory.Demo()
	require.Equal(t, []string{"p1", "p2", "p3"}, s.AccessibleProjects(directory.DemoAdminUUID))
	require.Equal(t, []string{"p1"}, s.AccessibleProjects(directory.DemoAliceUUID))
	require.Nil(t, s.AccessibleProjects(directory.DemoPatUUID), "not a user")

	pr, ok := s.ParticipantProject(directory.DemoPaulaUUID)
	require.True(t, ok)
	require.Equal(t, "p3", pr)
	_, ok = s.ParticipantProject(directory.DemoAliceUUID)
	require.False(t, ok)

	require.Equal(t, []string{"s1"}, s.DeviceSites(directory.DemoRobot1UUID))
	require.Equal(t, []string{"p1", "p2"}, s.DeviceProjects(directory.DemoRobot1UUID))
	require.Equal(t, []string{directory.DemoPatUUID}, s.DeviceParticipants(directory.DemoRobot1UUID))
	require.Equal(t, []string{directory.DemoRobot2UUID}, s.ParticipantDevices(directory.DemoPaulaUUID))
	require.Nil(t, s.DeviceSites("ghost"))

	// Returned slices are copies.
	got := s.AccessibleProjects(directory.DemoAliceUUID)
	got[0] = "mutated"
	require.Equal(t, []string{"p1"}, s.AccessibleProjects(directory.DemoAliceUUID))

	for _, tt := range []struct {
		kind directory.Kind
		uuid string
		want string
	}{
		{directory.KindUser, directory.DemoAliceUUID, "Alice Demo"},
		{directory.KindParticipant, directory.DemoPatUUID, "Pat Demo"},
		{directory.KindDevice, directory.DemoRobot2UUID, "robot2"},
		{directory.KindService, directory.DemoServiceUUID, "VideoRehabService"},
	} {
		name, ok := s.Entity(tt.kind, tt.uuid)
		require.True(t, ok)
		require.Equal(t, tt.want, name)
	}
	_, ok = s.Entity(directory.KindDevice, directory.DemoAliceUUID)
	require.False(t, ok)

	a, ok := s.Principal(directory.KindUser, directory.DemoAdminUUID)
	require.True(t, ok)
	require.True(t, a.Admin())
	require.Equal(t, directory.KindUser, a.Kind())
	require.Equal(t, directory.DemoAdminUUID, a.UUID())
	require.Same(t, s, a.Snapshot())
	var zero directory.Access
	require.False(t, zero.Admin())
	require.Equal(t, "", zero.UUID())
	require.Equal(t, directory.Kind(0), zero.Kind())
}

func TestLookups(t *testing.T) {
	s := directory.Demo()
	tok := func(k directory.Kind) string {
		for _, l := range directory.DemoLogins {
			if l.Kind == k && l.Token != "" {
				return l.Token
			}
		}
		panic(k)
	}
	tests := []struct {
		name   string
		lookup func() (string, bool)
		want   string
	}{
		{"user", func() (string, bool) { u, ok := s.User(directory.DemoBobUUID); return uid(u, ok) }, "bob"},
		{"user by username", func() (string, bool) { u, ok := s.UserByUsername("alice"); return uid(u, ok) }, "alice"},
		{"unknown user", func() (string, bool) { u, ok := s.UserByUsername("mallory"); return uid(u, ok) }, ""},
		{"user by uuid of another kind", func() (string, bool) { u, ok := s.User(directory.DemoPatUUID); return uid(u, ok) }, ""},
		{"participant", func() (string, bool) { p, ok := s.Participant(directory.DemoPatUUID); return pid(p, ok) }, "pat"},
		{"participant by username", func() (string, bool) { p, ok := s.ParticipantByUsername("paula"); return pid(p, ok) }, "paula"},
		{"participant by token", func() (string, bool) {
			p, ok := s.ParticipantByToken(tok(directory.KindParticipant))
			return pid(p, ok)
		}, "pat"},
		{"participant by device token", func() (string, bool) { p, ok := s.ParticipantByToken(tok(directory.KindDevice)); return pid(p, ok) }, ""},
		{"participant by empty token", func() (string, bool) { p, ok := s.ParticipantByToken(""); return pid(p, ok) }, ""},
		{"device", func() (string, bool) { d, ok := s.Device(directory.DemoRobot1UUID); return did(d, ok) }, "robot1"},
		{"device by token", func() (string, bool) { d, ok := s.DeviceByToken(tok(directory.KindDevice)); return did(d, ok) }, "robot1"},
		{"device by wrong token", func() (string, bool) { d, ok := s.DeviceByToken("nope"); return did(d, ok) }, ""},
		{"service", func() (string, bool) { v, ok := s.Service(directory.DemoServiceUUID); return vid(v, ok) }, "VideoRehabService"},
		{"service by token", func() (string, bool) { v, ok := s.ServiceByToken(tok(directory.KindService)); return vid(v, ok) }, "VideoRehabService"},
		{"project", func() (string, bool) { p, ok := s.Project("p3"); return projid(p, ok) }, "Robotics"},
		{"site", func() (string, bool) { st, ok := s.Site("s2"); return siteid(st, ok) }, "Sherbrooke"},
		{"unknown site", func() (string, bool) { st, ok := s.Site("s9"); return siteid(st, ok) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.lookup()
			require.Equal(t, tt.want != "", ok)
			require.Equal(t, tt.want, got)
		})
	}
	_, _, ok := s.ByToken("")
	require.False(t, ok)
}

func uid(u *directory.User, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return u.Username, true
}

func pid(p *directory.Participant, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return p.Username, true
}

func did(d *directory.Device, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return d.Name, true
}

func vid(v *directory.Service, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return v.Name, true
}

func projid(p *directory.Project, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return p.Name, true
}

func siteid(s *directory.Site, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return s.Name, true
}
