package directory_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// testHash is a well-formed bcrypt hash (of "password", cost 4) used where no login happens.
const testHash = "$2a$04$rNy/rs6j1k138YQswh3RjeM9jhaJuzCPW2dkeRVfP7b4ZaP8e0y3K"

// dirFile mirrors the identity file, for tests that build directories in Go.
type dirFile struct {
	Sites        []directory.Site        `yaml:"sites"`
	Projects     []directory.Project     `yaml:"projects"`
	Users        []directory.User        `yaml:"users"`
	Participants []directory.Participant `yaml:"participants"`
	Devices      []directory.Device      `yaml:"devices"`
	Services     []directory.Service     `yaml:"services"`

	idx *refIndex // built on first use by refSees
}

type refIndex struct {
	projectSite  map[string]string
	users        map[string]directory.User
	participants map[string]directory.Participant
	devices      map[string]directory.Device
	services     map[string]directory.Service
}

func (f *dirFile) index() *refIndex {
	if f.idx != nil {
		return f.idx
	}
	x := &refIndex{
		projectSite: map[string]string{}, users: map[string]directory.User{},
		participants: map[string]directory.Participant{}, devices: map[string]directory.Device{},
		services: map[string]directory.Service{},
	}
	for _, p := range f.Projects {
		x.projectSite[p.ID] = p.Site
	}
	for _, u := range f.Users {
		x.users[u.UUID] = u
	}
	for _, p := range f.Participants {
		x.participants[p.UUID] = p
	}
	for _, d := range f.Devices {
		x.devices[d.UUID] = d
	}
	for _, v := range f.Services {
		x.services[v.UUID] = v
	}
	f.idx = x
	return x
}

func (f *dirFile) yaml(tb testing.TB) []byte {
	tb.Helper()
	b, err := yaml.Marshal(f)
	require.NoError(tb, err)
	return b
}

func (f *dirFile) parse(tb testing.TB) *directory.Snapshot {
	tb.Helper()
	s, err := directory.Parse(f.yaml(tb))
	require.NoError(tb, err)
	return s
}

type genSize struct {
	sites, projects, users, participants, devices, services int
	superadmins                                             int
}

// genDir builds a random but valid directory.
func genDir(seed uint64, n genSize) *dirFile {
	rng := rand.New(rand.NewPCG(seed, 42))
	f := &dirFile{}
	for i := range n.sites {
		f.Sites = append(f.Sites, directory.Site{ID: fmt.Sprintf("s%d", i), Name: fmt.Sprintf("Site %d", i)})
	}
	for i := range n.projects {
		f.Projects = append(f.Projects, directory.Project{ID: fmt.Sprintf("p%d", i), Site: f.Sites[rng.IntN(n.sites)].ID})
	}
	pick := func(k, max int, id func(int) string) []string {
		var out []string
		for range rng.IntN(k + 1) {
			out = append(out, id(rng.IntN(max)))
		}
		return out
	}
	for i := range n.users {
		f.Users = append(f.Users, directory.User{
			UUID: fmt.Sprintf("u-%06d", i), Username: fmt.Sprintf("user%d", i), PasswordHash: testHash,
			Superadmin: i < n.superadmins, Enabled: true,
			Projects: pick(3, n.projects, func(j int) string { return f.Projects[j].ID }),
		})
	}
	for i := range n.participants {
		f.Participants = append(f.Participants, directory.Participant{
			UUID: fmt.Sprintf("p-%06d", i), Token: fmt.Sprintf("ptoken-%06d-xxxxxxxxxxxxxxxxxxxxxxxx", i),
			Name: fmt.Sprintf("P %d", i), Project: f.Projects[rng.IntN(n.projects)].ID, Enabled: true,
		})
	}
	for i := range n.devices {
		d := directory.Device{
			UUID: fmt.Sprintf("d-%06d", i), Token: fmt.Sprintf("dtoken-%06d-xxxxxxxxxxxxxxxxxxxxxxxx", i),
			Name: fmt.Sprintf("D %d", i), Onlineable: true, Enabled: true,
			Sites: pick(2, n.sites, func(j int) string { return f.Sites[j].ID }),
		}
		if n.participants > 0 {
			d.Participants = pick(3, n.participants, func(j int) string { return f.Participants[j].UUID })
		}
		f.Devices = append(f.Devices, d)
	}
	for i := range n.services {
		f.Services = append(f.Services, directory.Service{
			UUID: fmt.Sprintf("v-%06d", i), Name: fmt.Sprintf("Svc%d", i),
			Token: fmt.Sprintf("stoken-%06d-xxxxxxxxxxxxxxxxxxxxxxxx", i), Admin: i == 0,
		})
	}
	return f
}

type ref struct {
	kind directory.Kind
	uuid string
}

func (f *dirFile) all() []ref {
	var out []ref
	for _, u := range f.Users {
		out = append(out, ref{directory.KindUser, u.UUID})
	}
	for _, p := range f.Participants {
		out = append(out, ref{directory.KindParticipant, p.UUID})
	}
	for _, d := range f.Devices {
		out = append(out, ref{directory.KindDevice, d.UUID})
	}
	for _, s := range f.Services {
		out = append(out, ref{directory.KindService, s.UUID})
	}
	return out
}

// refSees is a direct, slow transcription of the access rules, used as the oracle.
func (f *dirFile) refSees(v, s ref) bool {
	if v == s {
		return true
	}
	x := f.index()
	switch v.kind {
	case directory.KindUser:
		u := x.users[v.uuid]
		if u.Superadmin {
			return true
		}
		switch s.kind {
		case directory.KindUser:
			for _, p := range x.users[s.uuid].Projects {
				if slices.Contains(u.Projects, p) {
					return true
				}
			}
		case directory.KindParticipant:
			return slices.Contains(u.Projects, x.participants[s.uuid].Project)
		case directory.KindDevice:
			d := x.devices[s.uuid]
			for _, p := range u.Projects {
				if slices.Contains(d.Sites, x.projectSite[p]) {
					return true
				}
			}
		}
		return false
	case directory.KindParticipant:
		return s.kind == directory.KindDevice && slices.Contains(x.devices[s.uuid].Participants, v.uuid)
	case directory.KindDevice:
		return s.kind == directory.KindParticipant && slices.Contains(x.devices[v.uuid].Participants, s.uuid)
	case directory.KindService:
		return x.services[v.uuid].Admin
	}
	return false
}
