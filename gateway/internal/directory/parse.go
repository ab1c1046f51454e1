package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"

	"gopkg.in/yaml.v3"
)

// file is the YAML document.
type file struct {
	Sites        []Site        `yaml:"sites"`
	Projects     []Project     `yaml:"projects"`
	Users        []User        `yaml:"users"`
	Participants []Participant `yaml:"participants"`
	Devices      []Device      `yaml:"devices"`
	Services     []Service     `yaml:"services"`
}

// Load reads and parses the identity file at path. See [Parse]. The file must be a regular file
// of at most [MaxFileBytes]; a symbolic link is followed only when it resolves inside the file's
// directory; the read is bounded by [FileReadTimeout].
func Load(path string) (*Snapshot, error) {
	data, err := readFile(context.Background(), path)
	if err != nil {
		return nil, fmt.Errorf("directory: read identity file: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates an identity file and precomputes its lookups and access relations.
// An empty document is valid and gives an empty directory. Keys the schema does not know are
// ignored.
//
// Parse reports every problem it finds in one [*ValidationError] (matching [ErrInvalid]), each
// naming the offending entry. It rejects:
//   - a missing site id, project id or entity uuid, or a missing username for a user ([ErrMissing]);
//   - a uuid used twice across users, participants, devices and services, a username used twice
//     within users or within participants, a static token used twice across participants, devices
//     and services, a site or project id used twice ([ErrDuplicate]);
//   - a project whose site does not exist, a user project, participant project or device site that
//     does not exist, a device participant that is not a participant ([ErrUnknownRef]);
//   - a missing project for a participant, a missing password_hash for a user or for a participant
//     that has a username (and the other way round), an empty token for a device or a service
//     ([ErrMissing]);
//   - a password_hash that is not a bcrypt hash ([ErrBadHash]).
//
// A YAML syntax or type error is returned wrapped in [ErrSyntax] (and [ErrInvalid]).
func Parse(data []byte) (*Snapshot, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w: %w", ErrInvalid, ErrSyntax, err)
	}
	v := validator{f: &f}
	s := v.build()
	if len(v.problems) > 0 {
		return nil, &ValidationError{Problems: v.problems, Truncated: v.truncated}
	}
	s.hash = sha256.Sum256(data)
	return s, nil
}

type validator struct {
	f         *file
	problems  []error
	truncated bool
}

func (v *validator) add(entry string, format string, args ...any) {
	if len(v.problems) >= maxProblems {
		v.truncated = true
		return
	}
	v.problems = append(v.problems, fmt.Errorf("%s: "+format, append([]any{entry}, args...)...))
}

// label names an entry for error messages: `users[1] "alice"`.
func label(list string, i int, hint string) string {
	if hint == "" {
		return fmt.Sprintf("%s[%d]", list, i)
	}
	return fmt.Sprintf("%s[%d] %q", list, i, hint)
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

// build validates the file and builds the snapshot, one entity list at a time. The snapshot is
// only meaningful when no problem was recorded.
func (v *validator) build() *Snapshot {
	f := v.f
	nNodes := len(f.Users) + len(f.Participants) + len(f.Devices) + len(f.Services)
	b := &builder{
		v: v,
		f: f,
		s: &Snapshot{
			sites:        f.Sites,
			projects:     f.Projects,
			users:        f.Users,
			participants: f.Participants,
			devices:      f.Devices,
			services:     f.Services,

			siteByID:          make(map[string]int32, len(f.Sites)),
			projectByID:       make(map[string]int32, len(f.Projects)),
			userByName:        make(map[string]int32, len(f.Users)),
			participantByName: make(map[string]int32, len(f.Participants)),
			exactMask:         len(f.Projects) <= 64,
			nodes:             make([]node, 0, nNodes),
			byUUID:            make(map[string]int32, nNodes),
			byToken:           make(map[[sha256.Size]byte]int32, len(f.Participants)+len(f.Devices)+len(f.Services)),
		},
		uuidOwner:  make(map[string]string, nNodes),
		tokenOwner: make(map[[sha256.Size]byte]string),
	}
	b.sites()
	b.projects()
	b.users()
	b.participants()
	b.devices()
	b.services()
	b.normalise()
	return b.s
}

// builder holds a snapshot under construction and the owners of the uuids and tokens seen so
// far, for duplicate reports.
type builder struct {
	v          *validator
	f          *file
	s          *Snapshot
	uuidOwner  map[string]string
	tokenOwner map[[sha256.Size]byte]string
}

// sites indexes the sites by id.
func (b *builder) sites() {
	v, f, s := b.v, b.f, b.s
	for i, st := range f.Sites {
		l := label("sites", i, st.ID)
		if st.ID == "" {
			v.add(l, "%w id", ErrMissing)
			continue
		}
		if _, dup := s.siteByID[st.ID]; dup {
			v.add(l, "%w site id %q (also %s)", ErrDuplicate, st.ID, label("sites", int(s.siteByID[st.ID]), ""))
			continue
		}
		s.siteByID[st.ID] = int32(i)
	}
}

// projects indexes the projects by id and links each to its site.
func (b *builder) projects() {
	v, f, s := b.v, b.f, b.s
	s.projectSite = make([]int32, len(f.Projects))
	s.siteProjects = make([][]int32, len(f.Sites))
	for i, p := range f.Projects {
		l := label("projects", i, p.ID)
		s.projectSite[i] = -1
		if p.ID == "" {
			v.add(l, "%w id", ErrMissing)
		} else if j, dup := s.projectByID[p.ID]; dup {
			v.add(l, "%w project id %q (also %s)", ErrDuplicate, p.ID, label("projects", int(j), ""))
		} else {
			s.projectByID[p.ID] = int32(i)
		}
		switch si, ok := s.siteByID[p.Site]; {
		case p.Site == "":
			v.add(l, "%w site", ErrMissing)
		case !ok:
			v.add(l, "%w site %q", ErrUnknownRef, p.Site)
		default:
			s.projectSite[i] = si
			s.siteProjects[si] = append(s.siteProjects[si], int32(i))
		}
	}
}

// addNode registers an entity's uuid and returns its node index.
func (b *builder) addNode(l string, k Kind, ent int, uuid string, enabled bool) int32 {
	s := b.s
	idx := int32(len(s.nodes))
	s.nodes = append(s.nodes, node{kind: k, ent: int32(ent), enabled: enabled})
	switch prev, dup := b.uuidOwner[uuid]; {
	case uuid == "":
		b.v.add(l, "%w uuid", ErrMissing)
	case dup:
		b.v.add(l, "%w uuid %q (also %s)", ErrDuplicate, uuid, prev)
	default:
		b.uuidOwner[uuid] = l
		s.byUUID[uuid] = idx
	}
	return idx
}

// addToken registers an entity's token (by its hash).
func (b *builder) addToken(l string, idx int32, token string) {
	h := sha256.Sum256([]byte(token))
	if prev, dup := b.tokenOwner[h]; dup {
		b.v.add(l, "%w token (also %s)", ErrDuplicate, prev)
		return
	}
	b.tokenOwner[h] = l
	b.s.byToken[h] = idx
}

func (b *builder) checkHash(l, hash string) {
	if !validBcrypt(hash) {
		b.v.add(l, "%w in password_hash", ErrBadHash)
	}
}

// projectIdx returns the index of project id, recording an unknown reference.
func (b *builder) projectIdx(l, id string) (int32, bool) {
	p, ok := b.s.projectByID[id]
	if !ok {
		b.v.add(l, "%w project %q", ErrUnknownRef, id)
	}
	return p, ok
}

// users registers the users: uuid, unique username, password hash, projects.
func (b *builder) users() {
	v, f, s := b.v, b.f, b.s
	for i := range f.Users {
		u := &f.Users[i]
		l := label("users", i, firstNonEmpty(u.Username, u.UUID))
		idx := b.addNode(l, KindUser, i, u.UUID, u.Enabled)
		n := &s.nodes[idx]
		n.admin = u.Superadmin
		if u.Username == "" {
			v.add(l, "%w username", ErrMissing)
		} else if j, dup := s.userByName[u.Username]; dup {
			v.add(l, "%w username %q (also %s)", ErrDuplicate, u.Username, label("users", int(s.nodes[j].ent), ""))
		} else {
			s.userByName[u.Username] = idx
		}
		if u.PasswordHash == "" {
			v.add(l, "%w password_hash", ErrMissing)
		} else {
			b.checkHash(l, u.PasswordHash)
		}
		for _, pid := range u.Projects {
			if p, ok := b.projectIdx(l, pid); ok {
				n.projs = append(n.projs, p)
			}
		}
	}
}

// participants registers the participants: uuid, optional login, token, project.
func (b *builder) participants() {
	v, f, s := b.v, b.f, b.s
	for i := range f.Participants {
		p := &f.Participants[i]
		l := label("participants", i, firstNonEmpty(p.Username, p.Name, p.UUID))
		idx := b.addNode(l, KindParticipant, i, p.UUID, p.Enabled)
		switch {
		case p.Username != "" && p.PasswordHash == "":
			v.add(l, "%w password_hash (a participant with a username needs one)", ErrMissing)
		case p.Username == "" && p.PasswordHash != "":
			v.add(l, "%w username (a participant with a password_hash needs one)", ErrMissing)
		}
		if p.Username != "" {
			if j, dup := s.participantByName[p.Username]; dup {
				v.add(l, "%w username %q (also %s)", ErrDuplicate, p.Username, label("participants", int(s.nodes[j].ent), ""))
			} else {
				s.participantByName[p.Username] = idx
			}
		}
		if p.PasswordHash != "" {
			b.checkHash(l, p.PasswordHash)
		}
		if p.Token != "" {
			b.addToken(l, idx, p.Token)
		}
		if p.Project == "" {
			v.add(l, "%w project", ErrMissing)
		} else if pi, ok := b.projectIdx(l, p.Project); ok {
			s.nodes[idx].projs = []int32{pi}
		}
	}
}

// devices registers the devices: uuid, token, the projects of their sites, their participants.
func (b *builder) devices() {
	v, f, s := b.v, b.f, b.s
	for i := range f.Devices {
		d := &f.Devices[i]
		l := label("devices", i, firstNonEmpty(d.Name, d.UUID))
		idx := b.addNode(l, KindDevice, i, d.UUID, d.Enabled)
		if d.Token == "" {
			v.add(l, "%w token", ErrMissing)
		} else {
			b.addToken(l, idx, d.Token)
		}
		var projs []int32
		for _, sid := range d.Sites {
			si, ok := s.siteByID[sid]
			if !ok {
				v.add(l, "%w site %q", ErrUnknownRef, sid)
				continue
			}
			projs = append(projs, s.siteProjects[si]...)
		}
		s.nodes[idx].projs = projs
		for _, puuid := range d.Participants {
			pi, ok := s.byUUID[puuid]
			if !ok || s.nodes[pi].kind != KindParticipant {
				v.add(l, "%w participant %q", ErrUnknownRef, puuid)
				continue
			}
			s.nodes[idx].links = append(s.nodes[idx].links, pi)
			s.nodes[pi].links = append(s.nodes[pi].links, idx)
		}
	}
}

// services registers the services: uuid, token, projects.
func (b *builder) services() {
	v, f, s := b.v, b.f, b.s
	for i := range f.Services {
		sv := &f.Services[i]
		l := label("services", i, firstNonEmpty(sv.Name, sv.UUID))
		idx := b.addNode(l, KindService, i, sv.UUID, true)
		s.nodes[idx].admin = sv.Admin
		if sv.Token == "" {
			v.add(l, "%w token", ErrMissing)
		} else {
			b.addToken(l, idx, sv.Token)
		}
		for _, pid := range sv.Projects {
			if p, ok := b.projectIdx(l, pid); ok {
				s.nodes[idx].projs = append(s.nodes[idx].projs, p)
			}
		}
	}
}

// normalise sorts the access records, removes duplicates and sets the project summary mask.
func (b *builder) normalise() {
	s := b.s
	for i := range s.nodes {
		n := &s.nodes[i]
		n.projs = sortedUnique(n.projs)
		n.links = sortedUnique(n.links)
		for _, p := range n.projs {
			n.mask |= 1 << (uint(p) & 63)
		}
	}
}

func sortedUnique(a []int32) []int32 {
	if len(a) == 0 {
		return nil
	}
	slices.Sort(a)
	return slices.Clip(slices.Compact(a))
}

// validBcrypt reports whether h has the shape of a bcrypt hash: "$2a$", "$2b$" or "$2y$", a two-digit
// cost from 04 to 31, "$", then 53 characters of bcrypt's base64 alphabet.
func validBcrypt(h string) bool {
	if len(h) != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$' {
		return false
	}
	if h[2] != 'a' && h[2] != 'b' && h[2] != 'y' {
		return false
	}
	if h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' {
		return false
	}
	if cost := int(h[4]-'0')*10 + int(h[5]-'0'); cost < 4 || cost > 31 {
		return false
	}
	for i := 7; i < len(h); i++ {
		c := h[i]
		if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
