package loadtest

import (
	"github.com/teragate/teragate/gateway/internal/directory"

	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// DefaultPassword is the password of every user and participant in a
// generated directory. The bench needs it in clear to log users in with HTTP
// Basic; it only protects throw-away benchmark identities.
const DefaultPassword = "tgbench-password"

// ErrDirectory reports an identity directory the bench cannot use.
var ErrDirectory = errors.New("loadtest: bad identity directory")

// The entities of a generated identity file are the directory's own types, so the file the bench
// writes is exactly what the gateway reads.
type (
	// Site is a site of the identity file.
	Site = directory.Site
	// Project is a project of the identity file.
	Project = directory.Project
	// User is a user of the identity file.
	User = directory.User
	// Participant is a participant of the identity file.
	Participant = directory.Participant
	// Device is a device of the identity file.
	Device = directory.Device
	// Service is a service of the identity file.
	Service = directory.Service
)

// Directory is an identity file as the gateway's `--identities` reads it
// (the identity file's schema), plus the clear password the bench logs users in with (never
// written to the file).
type Directory struct {
	Sites        []Site        `yaml:"sites"`
	Projects     []Project     `yaml:"projects"`
	Users        []User        `yaml:"users"`
	Participants []Participant `yaml:"participants"`
	Devices      []Device      `yaml:"devices"`
	Services     []Service     `yaml:"services"`

	// Password is the clear password of the users (and participants).
	Password string `yaml:"-"`
}

// GenerateOptions sizes a generated directory.
type GenerateOptions struct {
	// Users, Participants and Devices are the entity counts. Participants is
	// raised to 1 when there are devices (each device is linked to one).
	Users, Participants, Devices int
	// Projects is the number of projects (one site each). Zero means 10.
	Projects int
	// BcryptCost is the cost of the shared password hash. Zero means 4.
	BcryptCost int
}

// GenerateDirectory builds a directory for a benchmark: entity i of each kind
// belongs to project i mod Projects (users through their project list,
// participants directly, devices through the site of the participant they
// are linked to); device i is linked to participant i mod Participants. All
// users and participants share one bcrypt hash of [DefaultPassword], so
// logins are cheap; every token is random (256 bits, hex) and unique. One
// admin service is added for publishing.
func GenerateDirectory(o GenerateOptions) (*Directory, error) {
	if o.Users < 0 || o.Participants < 0 || o.Devices < 0 {
		return nil, fmt.Errorf("%w: negative entity count", ErrDirectory)
	}
	if o.Projects <= 0 {
		o.Projects = 10
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = 4
	}
	if o.Devices > 0 && o.Participants == 0 {
		o.Participants = 1
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(DefaultPassword), o.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("loadtest: hash password: %w", err)
	}
	d := &Directory{Password: DefaultPassword}
	for k := 0; k < o.Projects; k++ {
		d.Sites = append(d.Sites, Site{ID: fmt.Sprintf("s%d", k), Name: fmt.Sprintf("Site %d", k)})
		d.Projects = append(d.Projects, Project{ID: fmt.Sprintf("p%d", k), Name: fmt.Sprintf("Project %d", k), Site: fmt.Sprintf("s%d", k)})
	}
	d.Users = make([]User, o.Users)
	for i := range d.Users {
		d.Users[i] = User{
			UUID: newUUID(), Username: fmt.Sprintf("benchuser%d", i), PasswordHash: string(hash),
			Fullname: fmt.Sprintf("Bench User %d", i), Projects: []string{d.Projects[i%o.Projects].ID}, Enabled: true,
		}
	}
	d.Participants = make([]Participant, o.Participants)
	for i := range d.Participants {
		d.Participants[i] = Participant{
			UUID: newUUID(), Username: fmt.Sprintf("benchparticipant%d", i), PasswordHash: string(hash),
			Token: newToken(), Name: fmt.Sprintf("Participant %d", i), Project: d.Projects[i%o.Projects].ID, Enabled: true,
		}
	}
	d.Devices = make([]Device, o.Devices)
	for i := range d.Devices {
		p := i % len(d.Participants)
		d.Devices[i] = Device{
			UUID: newUUID(), Token: newToken(), Name: fmt.Sprintf("Device %d", i),
			Sites:        []string{d.Sites[p%o.Projects].ID},
			Participants: []string{d.Participants[p].UUID}, Onlineable: true, Enabled: true,
		}
	}
	d.Services = []Service{{UUID: newUUID(), Name: "BenchService", Token: newToken(), Admin: true}}
	return d, nil
}

// WriteYAML writes the directory as an identity file.
func (d *Directory) WriteYAML(w io.Writer) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return fmt.Errorf("loadtest: encode identities: %w", err)
	}
	return enc.Close()
}

// WriteFile writes the directory to path with mode 0600 (it holds tokens).
func (d *Directory) WriteFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if err := d.WriteYAML(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// LoadDirectory reads an identity file. password is the clear password of
// its users (the file only holds hashes); empty means [DefaultPassword].
// Unknown keys are ignored.
func LoadDirectory(path, password string) (*Directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	d := &Directory{}
	if err := yaml.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDirectory, path, err)
	}
	if password == "" {
		password = DefaultPassword
	}
	d.Password = password
	return d, nil
}

// AdminServiceToken returns the token of the first admin service, or of the
// first service when none is admin, or "".
func (d *Directory) AdminServiceToken() string {
	for _, s := range d.Services {
		if s.Admin && s.Token != "" {
			return s.Token
		}
	}
	for _, s := range d.Services {
		if s.Token != "" {
			return s.Token
		}
	}
	return ""
}

// audience precomputes, for participant events, which bench clients should
// receive an event about each participant (the access rules, as OpenTera's
// filters apply them: docs/opentera.md).
type audience struct {
	projectOfParticipant []int   // participant index → project index (-1 unknown)
	usersByProject       [][]int // project index → user indexes
	superUsers           []int   // superadmin user indexes
	devicesByParticipant [][]int // participant index → device indexes
	projectIndex         map[string]int
	participantIndex     map[string]int
}

func newAudience(d *Directory) *audience {
	a := &audience{projectIndex: map[string]int{}, participantIndex: map[string]int{}}
	for i, p := range d.Projects {
		a.projectIndex[p.ID] = i
	}
	a.usersByProject = make([][]int, len(d.Projects))
	for i, u := range d.Users {
		if u.Superadmin {
			a.superUsers = append(a.superUsers, i)
			continue
		}
		seen := map[int]bool{}
		for _, p := range u.Projects {
			if k, ok := a.projectIndex[p]; ok && !seen[k] {
				seen[k] = true
				a.usersByProject[k] = append(a.usersByProject[k], i)
			}
		}
	}
	a.projectOfParticipant = make([]int, len(d.Participants))
	for i, p := range d.Participants {
		a.participantIndex[p.UUID] = i
		a.projectOfParticipant[i] = -1
		if k, ok := a.projectIndex[p.Project]; ok {
			a.projectOfParticipant[i] = k
		}
	}
	a.devicesByParticipant = make([][]int, len(d.Participants))
	for i, dv := range d.Devices {
		for _, pu := range dv.Participants {
			if p, ok := a.participantIndex[pu]; ok {
				a.devicesByParticipant[p] = append(a.devicesByParticipant[p], i)
			}
		}
	}
	return a
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
