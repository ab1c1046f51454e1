package directory

import "gopkg.in/yaml.v3"

// Site is a physical site (a clinic, a lab). Devices are attached to sites, projects belong to one.
type Site struct {
	// ID identifies the site inside the identity file. Required and unique among sites.
	ID string `yaml:"id"`
	// Name is the display name.
	Name string `yaml:"name"`
}

// Project groups users and participants; it belongs to one site.
type Project struct {
	// ID identifies the project inside the identity file. Required and unique among projects.
	ID string `yaml:"id"`
	// Name is the display name.
	Name string `yaml:"name"`
	// Site is the [Site.ID] of the project's site. Required; it must exist.
	Site string `yaml:"site"`
}

// User is a person who logs in with a username and a password (OpenTera's TeraUser).
type User struct {
	// UUID identifies the user. Required and unique across users, participants, devices and services.
	UUID string `yaml:"uuid"`
	// Username is the login name. Required and unique among users.
	Username string `yaml:"username"`
	// PasswordHash is the bcrypt hash of the password ($2a$, $2b$ or $2y$). Required.
	PasswordHash string `yaml:"password_hash"`
	// Fullname is the display name sent in events and login replies.
	Fullname string `yaml:"fullname"`
	// Superadmin users see every entity and may use admin-only endpoints.
	Superadmin bool `yaml:"superadmin"`
	// Projects lists the [Project.ID]s the user belongs to; each must exist.
	Projects []string `yaml:"projects"`
	// Enabled is false for a disabled account, whose logins are refused. Default true.
	Enabled bool `yaml:"enabled"`
}

// Participant is a person followed in a project (OpenTera's TeraParticipant). A participant logs in
// with a username and password (full access) or with its static token (limited access).
type Participant struct {
	// UUID identifies the participant. Required and unique across all entities.
	UUID string `yaml:"uuid"`
	// Username is the login name, unique among participants. Optional: a participant without one can
	// only log in with its token. Username and PasswordHash are given together or not at all.
	Username string `yaml:"username"`
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash string `yaml:"password_hash"`
	// Token is the static participant token (OpenTera's "base_token"). Optional; unique across all
	// tokens when set. It is a secret: never log it.
	Token string `yaml:"token"`
	// Name is the display name.
	Name string `yaml:"name"`
	// Project is the [Project.ID] of the participant's project. Required; it must exist.
	Project string `yaml:"project"`
	// Enabled is false for a disabled account, whose logins are refused. Default true.
	Enabled bool `yaml:"enabled"`
}

// Device is a device that connects on its own (OpenTera's TeraDevice).
type Device struct {
	// UUID identifies the device. Required and unique across all entities.
	UUID string `yaml:"uuid"`
	// Token is the device's static login token. Required and unique across all tokens. It is a
	// secret: never log it.
	Token string `yaml:"token"`
	// Name is the display name.
	Name string `yaml:"name"`
	// Sites lists the [Site.ID]s the device is attached to; each must exist. The device belongs to
	// every project of these sites.
	Sites []string `yaml:"sites"`
	// Participants lists the uuids of the participants linked to the device; each must exist.
	Participants []string `yaml:"participants"`
	// Onlineable devices may open a websocket (OpenTera's device_onlineable). Default false.
	Onlineable bool `yaml:"onlineable"`
	// Station marks a conference-manager station.
	Station bool `yaml:"station"`
	// Enabled is false for a disabled device, whose logins are refused. Default true.
	Enabled bool `yaml:"enabled"`

	// Optional details returned in the device login's device_info, as OpenTera's device record
	// has them: ID (id_device; default the device's 1-based position in the file), Type
	// (id_device_type, default 0), Subtype (id_device_subtype, default null), Config, Infos and
	// Notes (device_config, device_infos, device_notes: free text, default null).
	ID      int     `yaml:"id"`
	Type    int     `yaml:"type"`
	Subtype *int    `yaml:"subtype"`
	Config  *string `yaml:"config"`
	Infos   *string `yaml:"infos"`
	Notes   *string `yaml:"notes"`
}

// Service is a back-end service that authenticates with a static token (OpenTera's TeraService).
type Service struct {
	// UUID identifies the service. Required and unique across all entities.
	UUID string `yaml:"uuid"`
	// Name is the service name, e.g. "VideoRehabService".
	Name string `yaml:"name"`
	// Token is the service's static token. Required and unique across all tokens. It is a secret.
	Token string `yaml:"token"`
	// Admin services may publish any event and see every entity.
	Admin bool `yaml:"admin"`
	// Projects (ids) a non-admin service reaches: it sees, and may address events and RPC
	// arguments to, the users, participants and devices of these projects, like a user of them.
	// Without projects a non-admin service reaches only itself.
	Projects []string `yaml:"projects,omitempty"`
}

// UnmarshalYAML decodes a user, defaulting Enabled to true.
func (u *User) UnmarshalYAML(n *yaml.Node) error {
	type plain User
	p := plain{Enabled: true}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*u = User(p)
	return nil
}

// UnmarshalYAML decodes a participant, defaulting Enabled to true.
func (p *Participant) UnmarshalYAML(n *yaml.Node) error {
	type plain Participant
	v := plain{Enabled: true}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*p = Participant(v)
	return nil
}

// UnmarshalYAML decodes a device, defaulting Enabled to true.
func (d *Device) UnmarshalYAML(n *yaml.Node) error {
	type plain Device
	v := plain{Enabled: true}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*d = Device(v)
	return nil
}
