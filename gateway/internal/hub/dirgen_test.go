package hub

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// testHash is a well-formed bcrypt hash; no test logs in.
const testHash = "$2a$04$rNy/rs6j1k138YQswh3RjeM9jhaJuzCPW2dkeRVfP7b4ZaP8e0y3K"

// dirShape sizes a generated directory.
type dirShape struct {
	users, participants, devices, projects int
	// superadmins is how many of the users are superadmins.
	superadmins int
	// random: users have 0–3 random projects, devices 0–2 random sites and 0–3 random
	// participants; otherwise the bench shape: entity i in project i mod projects (one site
	// each), device i linked to participant i mod participants and on its site.
	random bool
	// seed seeds a random shape; prefix makes the uuids of two generated directories differ.
	seed   uint64
	prefix string
}

// dirDoc is the identity file, for generating directories in tests.
type dirDoc struct {
	Sites        []directory.Site        `yaml:"sites"`
	Projects     []directory.Project     `yaml:"projects"`
	Users        []directory.User        `yaml:"users"`
	Participants []directory.Participant `yaml:"participants"`
	Devices      []directory.Device      `yaml:"devices"`
	Services     []directory.Service     `yaml:"services"`
}

func genDoc(sh dirShape) *dirDoc {
	rng := rand.New(rand.NewPCG(sh.seed, 7))
	d := &dirDoc{}
	nsites := sh.projects
	if sh.random {
		nsites = max(1, sh.projects/2)
	}
	for i := range nsites {
		d.Sites = append(d.Sites, directory.Site{ID: fmt.Sprintf("s%d", i), Name: fmt.Sprintf("Site %d", i)})
	}
	for i := range sh.projects {
		site := i
		if sh.random {
			site = rng.IntN(nsites)
		}
		d.Projects = append(d.Projects, directory.Project{ID: fmt.Sprintf("p%d", i), Name: fmt.Sprintf("P%d", i), Site: d.Sites[site].ID})
	}
	for i := range sh.users {
		u := directory.User{
			UUID: fmt.Sprintf("%su-%06d", sh.prefix, i), Username: fmt.Sprintf("%suser%d", sh.prefix, i),
			PasswordHash: testHash, Superadmin: i < sh.superadmins, Enabled: true,
		}
		if sh.random {
			for range rng.IntN(4) {
				if p := d.Projects[rng.IntN(sh.projects)].ID; !contains(u.Projects, p) {
					u.Projects = append(u.Projects, p)
				}
			}
		} else {
			u.Projects = []string{d.Projects[i%sh.projects].ID}
		}
		d.Users = append(d.Users, u)
	}
	for i := range sh.participants {
		p := i % sh.projects
		if sh.random {
			p = rng.IntN(sh.projects)
		}
		d.Participants = append(d.Participants, directory.Participant{
			UUID: fmt.Sprintf("%sp-%06d", sh.prefix, i), Name: fmt.Sprintf("P %d", i),
			Token: fmt.Sprintf("%sptoken-%06d-xxxxxxxxxxxxxxxxxxxxxxxx", sh.prefix, i), Project: d.Projects[p].ID, Enabled: true,
		})
	}
	for i := range sh.devices {
		dv := directory.Device{
			UUID: fmt.Sprintf("%sd-%06d", sh.prefix, i), Name: fmt.Sprintf("D %d", i), Onlineable: true, Enabled: true,
			Token: fmt.Sprintf("%sdtoken-%06d-xxxxxxxxxxxxxxxxxxxxxxxx", sh.prefix, i),
		}
		switch {
		case sh.random:
			for range rng.IntN(3) {
				if s := d.Sites[rng.IntN(nsites)].ID; !contains(dv.Sites, s) {
					dv.Sites = append(dv.Sites, s)
				}
			}
			for range rng.IntN(4) {
				if sh.participants > 0 {
					if p := d.Participants[rng.IntN(sh.participants)].UUID; !contains(dv.Participants, p) {
						dv.Participants = append(dv.Participants, p)
					}
				}
			}
		case sh.participants > 0:
			p := i % sh.participants
			dv.Participants = []string{d.Participants[p].UUID}
			dv.Sites = []string{d.Sites[p%sh.projects].ID}
		}
		d.Devices = append(d.Devices, dv)
	}
	d.Services = []directory.Service{{UUID: sh.prefix + "svc-admin", Name: "Admin", Token: sh.prefix + "stoken-admin-xxxxxxxxxxxxxxxxxxxxxxxxx", Admin: true}}
	return d
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (d *dirDoc) parse(tb testing.TB) *directory.Snapshot {
	tb.Helper()
	b, err := yaml.Marshal(d)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := directory.Parse(b)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// entities lists the directory's users, participants and devices.
func (d *dirDoc) entities() []filterEntity {
	var out []filterEntity
	for _, u := range d.Users {
		out = append(out, filterEntity{directory.KindUser, u.UUID})
	}
	for _, p := range d.Participants {
		out = append(out, filterEntity{directory.KindParticipant, p.UUID})
	}
	for _, dv := range d.Devices {
		out = append(out, filterEntity{directory.KindDevice, dv.UUID})
	}
	return out
}

type filterEntity struct {
	kind directory.Kind
	uuid string
}
