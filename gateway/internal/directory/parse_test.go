package directory_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
)

const h = testHash

// base is a small valid file that the invalid cases extend.
const base = `
sites: [{id: s1, name: Montreal}]
projects: [{id: p1, name: Rehab, site: s1}]
`

func TestParseValid(t *testing.T) {
	src := base + `
extra_top_level: ignored
users:
  - {uuid: u1, username: alice, password_hash: "` + h + `", fullname: Alice A, projects: [p1, p1], shoe_size: 42}
  - {uuid: u2, username: bob, password_hash: "` + h + `", enabled: false}
participants:
  - {uuid: pa1, username: pat, password_hash: "` + h + `", token: tok-pat, name: Pat, project: p1}
  - {uuid: pa2, token: tok-p2, name: Tokenonly, project: p1, enabled: false}
  - {uuid: pa3, name: Nologin, project: p1}
devices:
  - {uuid: d1, token: tok-d1, name: Robot, sites: [s1], participants: [pa1], onlineable: true}
  - {uuid: d2, token: tok-d2, name: Off, enabled: false}
services:
  - {uuid: v1, name: VideoRehab, token: tok-v1, admin: true}
`
	s, err := directory.Parse([]byte(src))
	require.NoError(t, err)
	require.Equal(t, directory.Counts{Sites: 1, Projects: 1, Users: 2, Participants: 3, Devices: 2, Services: 1}, s.Counts())

	u, ok := s.UserByUsername("alice")
	require.True(t, ok)
	require.Equal(t, "u1", u.UUID)
	require.True(t, u.Enabled, "enabled defaults to true")
	require.Equal(t, []string{"p1", "p1"}, u.Projects, "the entity is kept as written")
	require.Equal(t, []string{"p1"}, s.AccessibleProjects("u1"), "duplicate projects are folded")

	b, _ := s.User("u2")
	require.False(t, b.Enabled)
	require.False(t, s.Enabled(directory.KindUser, "u2"))
	require.True(t, s.Enabled(directory.KindUser, "u1"))
	require.True(t, s.Enabled(directory.KindService, "v1"), "services are always enabled")
	require.False(t, s.Enabled(directory.KindDevice, "nope"))
	require.False(t, s.Enabled(directory.KindDevice, "u1"), "wrong kind")

	d, ok := s.DeviceByToken("tok-d1")
	require.True(t, ok)
	require.True(t, d.Onlineable)
	d2, _ := s.Device("d2")
	require.False(t, d2.Onlineable, "onlineable defaults to false")
	require.False(t, d2.Enabled)
	require.Len(t, s.Hash(), 64)
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "\n", "# nothing\n", "{}"} {
		s, err := directory.Parse([]byte(src))
		require.NoError(t, err, "%q", src)
		require.Equal(t, directory.Counts{}, s.Counts())
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr error
		want    string // substring naming the offending entry
	}{
		{
			name: "yaml syntax", src: "sites: [", wantErr: directory.ErrSyntax, want: "yaml",
		},
		{
			name: "wrong type", src: "users: {uuid: 1}", wantErr: directory.ErrSyntax, want: "cannot unmarshal",
		},
		{
			name: "missing site id", src: "sites: [{name: x}]", wantErr: directory.ErrMissing, want: "sites[0]: directory: missing id",
		},
		{
			name: "duplicate site", src: "sites: [{id: s1}, {id: s1}]", wantErr: directory.ErrDuplicate, want: `sites[1] "s1": directory: duplicate site id "s1" (also sites[0])`,
		},
		{
			name: "project unknown site", src: "sites: [{id: s1}]\nprojects: [{id: p9, site: s9}]", wantErr: directory.ErrUnknownRef, want: `projects[0] "p9": directory: unknown site "s9"`,
		},
		{
			name: "project without site", src: "projects: [{id: p9}]", wantErr: directory.ErrMissing, want: `projects[0] "p9": directory: missing site`,
		},
		{
			name: "duplicate project", src: "sites: [{id: s1}]\nprojects: [{id: p1, site: s1}, {id: p1, site: s1}]", wantErr: directory.ErrDuplicate, want: `projects[1] "p1"`,
		},
		{
			name: "missing uuid", src: base + `users: [{username: alice, password_hash: "` + h + `"}]`, wantErr: directory.ErrMissing, want: `users[0] "alice": directory: missing uuid`,
		},
		{
			name:    "duplicate uuid across kinds",
			src:     base + `users: [{uuid: x1, username: alice, password_hash: "` + h + `"}]` + "\ndevices: [{uuid: x1, token: t, name: Robot}]",
			wantErr: directory.ErrDuplicate, want: `devices[0] "Robot": directory: duplicate uuid "x1" (also users[0] "alice")`,
		},
		{
			name:    "duplicate username",
			src:     base + `users: [{uuid: a, username: alice, password_hash: "` + h + `"}, {uuid: b, username: alice, password_hash: "` + h + `"}]`,
			wantErr: directory.ErrDuplicate, want: `users[1] "alice": directory: duplicate username "alice" (also users[0])`,
		},
		{
			name:    "same username in two kinds is fine, duplicate participant username is not",
			src:     base + `participants: [{uuid: a, username: pat, password_hash: "` + h + `", project: p1}, {uuid: b, username: pat, password_hash: "` + h + `", project: p1}]`,
			wantErr: directory.ErrDuplicate, want: `participants[1] "pat": directory: duplicate username "pat" (also participants[0])`,
		},
		{
			name: "user without username", src: base + `users: [{uuid: a, password_hash: "` + h + `"}]`, wantErr: directory.ErrMissing, want: `users[0] "a": directory: missing username`,
		},
		{
			name: "user without hash", src: base + `users: [{uuid: a, username: alice}]`, wantErr: directory.ErrMissing, want: `users[0] "alice": directory: missing password_hash`,
		},
		{
			name: "bad hash", src: base + `users: [{uuid: a, username: alice, password_hash: "plaintext"}]`, wantErr: directory.ErrBadHash, want: `users[0] "alice": directory: invalid bcrypt hash`,
		},
		{
			name: "bad hash prefix", src: base + `users: [{uuid: a, username: alice, password_hash: "$2x` + h[3:] + `"}]`, wantErr: directory.ErrBadHash, want: `users[0]`,
		},
		{
			name: "bad hash cost", src: base + `users: [{uuid: a, username: alice, password_hash: "$2a$99` + h[6:] + `"}]`, wantErr: directory.ErrBadHash, want: `users[0]`,
		},
		{
			name: "bad hash alphabet", src: base + `users: [{uuid: a, username: alice, password_hash: "` + h[:59] + `!"}]`, wantErr: directory.ErrBadHash, want: `users[0]`,
		},
		{
			name: "user unknown project", src: base + `users: [{uuid: a, username: alice, password_hash: "` + h + `", projects: [p1, p7]}]`, wantErr: directory.ErrUnknownRef, want: `users[0] "alice": directory: unknown project "p7"`,
		},
		{
			name: "participant unknown project", src: base + `participants: [{uuid: a, name: Pat, project: p7}]`, wantErr: directory.ErrUnknownRef, want: `participants[0] "Pat": directory: unknown project "p7"`,
		},
		{
			name: "participant without project", src: base + `participants: [{uuid: a, name: Pat}]`, wantErr: directory.ErrMissing, want: `participants[0] "Pat": directory: missing project`,
		},
		{
			name: "participant username without hash", src: base + `participants: [{uuid: a, username: pat, project: p1}]`, wantErr: directory.ErrMissing, want: `participants[0] "pat": directory: missing password_hash`,
		},
		{
			name: "participant hash without username", src: base + `participants: [{uuid: a, name: Pat, password_hash: "` + h + `", project: p1}]`, wantErr: directory.ErrMissing, want: `participants[0] "Pat": directory: missing username`,
		},
		{
			name: "device without token", src: base + `devices: [{uuid: d, name: Robot}]`, wantErr: directory.ErrMissing, want: `devices[0] "Robot": directory: missing token`,
		},
		{
			name: "service without token", src: `services: [{uuid: v, name: Svc}]`, wantErr: directory.ErrMissing, want: `services[0] "Svc": directory: missing token`,
		},
		{
			name:    "duplicate token across kinds",
			src:     base + "participants: [{uuid: a, name: Pat, project: p1, token: same}]\nservices: [{uuid: v, name: Svc, token: same}]",
			wantErr: directory.ErrDuplicate, want: `services[0] "Svc": directory: duplicate token (also participants[0] "Pat")`,
		},
		{
			name: "device unknown site", src: base + `devices: [{uuid: d, name: Robot, token: t, sites: [s1, s8]}]`, wantErr: directory.ErrUnknownRef, want: `devices[0] "Robot": directory: unknown site "s8"`,
		},
		{
			name: "device unknown participant", src: base + `devices: [{uuid: d, name: Robot, token: t, participants: [ghost]}]`, wantErr: directory.ErrUnknownRef, want: `devices[0] "Robot": directory: unknown participant "ghost"`,
		},
		{
			name:    "device participant that is a user",
			src:     base + `users: [{uuid: u, username: alice, password_hash: "` + h + `"}]` + "\ndevices: [{uuid: d, name: Robot, token: t, participants: [u]}]",
			wantErr: directory.ErrUnknownRef, want: `unknown participant "u"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := directory.Parse([]byte(tt.src))
			require.Nil(t, s)
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorIs(t, err, directory.ErrInvalid)
			require.Contains(t, err.Error(), tt.want)
			require.True(t, strings.HasPrefix(err.Error(), "directory: invalid identity file: "), err.Error())
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := base + `
users:
  - {uuid: a, username: alice, password_hash: nope, projects: [zz]}
devices:
  - {uuid: a, name: Robot}
`
	_, err := directory.Parse([]byte(src))
	var ve *directory.ValidationError
	require.True(t, errors.As(err, &ve))
	require.Len(t, ve.Problems, 4, err.Error())
	for _, want := range []error{directory.ErrBadHash, directory.ErrUnknownRef, directory.ErrDuplicate, directory.ErrMissing} {
		require.ErrorIs(t, err, want)
	}

	var b strings.Builder
	b.WriteString("sites:\n")
	for range 80 {
		b.WriteString("  - {name: x}\n")
	}
	_, err = directory.Parse([]byte(b.String()))
	require.True(t, errors.As(err, &ve))
	require.Len(t, ve.Problems, 50)
	require.True(t, ve.Truncated)
	require.True(t, strings.HasSuffix(err.Error(), "…and more"))
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ids.yaml")
	require.NoError(t, os.WriteFile(good, directory.DemoYAML, 0o600))
	s, err := directory.Load(good)
	require.NoError(t, err)
	require.Equal(t, directory.Demo().Hash(), s.Hash())

	_, err = directory.Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("sites: [{}]"), 0o600))
	_, err = directory.Load(bad)
	require.ErrorIs(t, err, directory.ErrMissing)
	require.Contains(t, err.Error(), bad, "the path is named")
}
