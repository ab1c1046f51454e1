package pdktest

import (
	"slices"
	"sync"

	"github.com/teragate/teragate/sdk/pdk"
)

// Directory is a fake directory: the facts a test sets about users, participants, devices,
// projects and sites. It answers the directory host import and, unless the harness's CanSee is
// replaced, the [pdk.Visible] clauses of rules, with OpenTera's access rules:
//
//   - an entity sees itself; a superadmin user sees every known entity;
//   - a user sees the users sharing one of its projects, the participants of its projects and the
//     devices on the sites of its projects;
//   - a participant sees the devices linked to it; a device the participants linked to it.
//
// Unknown entities are seen by nobody. Methods return the Directory so calls can be chained. It is
// safe for concurrent use.
type Directory struct {
	mu           sync.RWMutex
	users        map[string]*fakeUser
	participants map[string]string // uuid → project
	devices      map[string]*fakeDevice
	projects     map[string]string // project → site
}

type fakeUser struct {
	admin    bool
	projects []string
}

type fakeDevice struct {
	sites        []string
	participants []string
}

// NewDirectory returns an empty fake directory.
func NewDirectory() *Directory {
	return &Directory{
		users:        map[string]*fakeUser{},
		participants: map[string]string{},
		devices:      map[string]*fakeDevice{},
		projects:     map[string]string{},
	}
}

// AddProject adds a project on a site.
func (d *Directory) AddProject(id, site string) *Directory {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.projects[id] = site
	return d
}

// AddUser adds a user with access to the projects; superadmin users see everything.
func (d *Directory) AddUser(uuid string, superadmin bool, projects ...string) *Directory {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[uuid] = &fakeUser{admin: superadmin, projects: projects}
	return d
}

// AddParticipant adds a participant of a project.
func (d *Directory) AddParticipant(uuid, project string) *Directory {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.participants[uuid] = project
	return d
}

// AddDevice adds a device on the sites, linked to the participants.
func (d *Directory) AddDevice(uuid string, sites []string, participants ...string) *Directory {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.devices[uuid] = &fakeDevice{sites: sites, participants: participants}
	return d
}

// Superadmin reports whether uuid is a superadmin user.
func (d *Directory) Superadmin(uuid string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u := d.users[uuid]
	return u != nil && u.admin
}

func (d *Directory) known(s pdk.Subject) bool {
	switch s.Kind {
	case pdk.KindUser:
		return d.users[s.UUID] != nil
	case pdk.KindParticipant:
		_, ok := d.participants[s.UUID]
		return ok
	case pdk.KindDevice:
		return d.devices[s.UUID] != nil
	}
	return false
}

// CanSee reports whether viewer may see events about subject (the rules in the type's doc).
func (d *Directory) CanSee(viewer, subject pdk.Subject) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !d.known(viewer) || !d.known(subject) {
		return false
	}
	if viewer == subject {
		return true
	}
	switch viewer.Kind {
	case pdk.KindUser:
		u := d.users[viewer.UUID]
		if u.admin {
			return true
		}
		switch subject.Kind {
		case pdk.KindUser:
			return slices.ContainsFunc(d.users[subject.UUID].projects, func(p string) bool { return slices.Contains(u.projects, p) })
		case pdk.KindParticipant:
			return slices.Contains(u.projects, d.participants[subject.UUID])
		case pdk.KindDevice:
			for _, p := range u.projects {
				if site, ok := d.projects[p]; ok && slices.Contains(d.devices[subject.UUID].sites, site) {
					return true
				}
			}
		}
	case pdk.KindParticipant:
		return subject.Kind == pdk.KindDevice && slices.Contains(d.devices[subject.UUID].participants, viewer.UUID)
	case pdk.KindDevice:
		return subject.Kind == pdk.KindParticipant && slices.Contains(d.devices[viewer.UUID].participants, subject.UUID)
	}
	return false
}

// query answers a DirectoryQuery by name.
func (d *Directory) query(name string, subject pdk.Subject) (found, flag bool, values []string, ok bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	found = d.known(subject)
	switch name {
	case "participant_project":
		if p, in := d.participants[subject.UUID]; in {
			values = []string{p}
		}
	case "device_sites":
		if dv := d.devices[subject.UUID]; dv != nil {
			values = slices.Clone(dv.sites)
		}
	case "device_participants":
		if dv := d.devices[subject.UUID]; dv != nil {
			values = slices.Clone(dv.participants)
		}
	case "participant_devices":
		for uuid, dv := range d.devices {
			if slices.Contains(dv.participants, subject.UUID) {
				values = append(values, uuid)
			}
		}
		slices.Sort(values)
	case "user_projects":
		if u := d.users[subject.UUID]; u != nil {
			if u.admin {
				for p := range d.projects {
					values = append(values, p)
				}
				slices.Sort(values)
			} else {
				values = slices.Clone(u.projects)
			}
		}
	case "superadmin":
		u := d.users[subject.UUID]
		flag = u != nil && u.admin
	default:
		return false, false, nil, false
	}
	return found, flag, values, true
}

// Presence is a fake presence registry: who is online, who is busy in which session, and who
// takes part in which session. It is safe for concurrent use.
type Presence struct {
	mu       sync.RWMutex
	online   map[pdk.Subject]bool
	busy     map[pdk.Subject]string
	sessions map[string]map[pdk.Subject]bool
}

// NewPresence returns an empty fake presence registry.
func NewPresence() *Presence {
	return &Presence{
		online:   map[pdk.Subject]bool{},
		busy:     map[pdk.Subject]string{},
		sessions: map[string]map[pdk.Subject]bool{},
	}
}

// SetOnline sets whether the entity is online.
func (p *Presence) SetOnline(kind pdk.Kind, uuid string, online bool) *Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.online[pdk.Subject{Kind: kind, UUID: uuid}] = online
	return p
}

// SetBusy makes the entity busy in the session (and a member of it); an empty session clears it.
func (p *Presence) SetBusy(kind pdk.Kind, uuid, session string) *Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := pdk.Subject{Kind: kind, UUID: uuid}
	if session == "" {
		delete(p.busy, s)
		return p
	}
	p.busy[s] = session
	p.join(session, s)
	return p
}

// Join makes the entities members of the session (invited, not necessarily busy).
func (p *Presence) Join(session string, kind pdk.Kind, uuids ...string) *Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range uuids {
		p.join(session, pdk.Subject{Kind: kind, UUID: u})
	}
	return p
}

func (p *Presence) join(session string, s pdk.Subject) {
	m := p.sessions[session]
	if m == nil {
		m = map[pdk.Subject]bool{}
		p.sessions[session] = m
	}
	m[s] = true
}

// InSession reports whether the entity is a member of the session.
func (p *Presence) InSession(kind pdk.Kind, uuid, session string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.sessions[session][pdk.Subject{Kind: kind, UUID: uuid}]
}

// Busy returns the session the entity is busy in ("" when free).
func (p *Presence) Busy(kind pdk.Kind, uuid string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.busy[pdk.Subject{Kind: kind, UUID: uuid}]
}

// Online reports whether the entity is online.
func (p *Presence) Online(kind pdk.Kind, uuid string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.online[pdk.Subject{Kind: kind, UUID: uuid}]
}
