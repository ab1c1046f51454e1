package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/teragate/teragate/gateway/internal/directory"
)

func TestGenerateDirectory(t *testing.T) {
	tests := []struct {
		name                    string
		opts                    GenerateOptions
		wantUsers, wantParts    int
		wantDevices, wantProjes int
	}{
		{name: "mix", opts: GenerateOptions{Users: 7, Participants: 5, Devices: 9, Projects: 3}, wantUsers: 7, wantParts: 5, wantDevices: 9, wantProjes: 3},
		{name: "default projects", opts: GenerateOptions{Users: 2}, wantUsers: 2, wantProjes: 10},
		{name: "devices need a participant", opts: GenerateOptions{Devices: 3, Projects: 2}, wantParts: 1, wantDevices: 3, wantProjes: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := GenerateDirectory(tt.opts)
			require.NoError(t, err)

			var buf bytes.Buffer
			require.NoError(t, d.WriteYAML(&buf))
			// Parse with a schema-agnostic decoder: the file must have the
			// keys of the identity file.
			var raw map[string][]map[string]any
			require.NoError(t, yaml.Unmarshal(buf.Bytes(), &raw))
			require.Len(t, raw["users"], tt.wantUsers)
			require.Len(t, raw["participants"], tt.wantParts)
			require.Len(t, raw["devices"], tt.wantDevices)
			require.Len(t, raw["projects"], tt.wantProjes)
			require.Len(t, raw["sites"], tt.wantProjes)
			require.Len(t, raw["services"], 1)
			require.Equal(t, true, raw["services"][0]["admin"])
			for _, u := range raw["users"] {
				for _, k := range []string{"uuid", "username", "password_hash", "fullname", "superadmin", "projects"} {
					require.Contains(t, u, k)
				}
			}
			for _, p := range raw["participants"] {
				for _, k := range []string{"uuid", "token", "name", "project"} {
					require.Contains(t, p, k)
				}
			}
			for _, dv := range raw["devices"] {
				for _, k := range []string{"uuid", "token", "name", "sites", "participants", "onlineable", "station"} {
					require.Contains(t, dv, k)
				}
				require.Equal(t, true, dv["onlineable"])
			}

			// Tokens and uuids are unique and long enough.
			tokens, uuids := map[string]bool{}, map[string]bool{}
			addTok := func(tok string) {
				require.GreaterOrEqual(t, len(tok), 32)
				require.False(t, tokens[tok], "duplicate token")
				tokens[tok] = true
			}
			addUUID := func(u string) {
				require.Len(t, u, 36)
				require.False(t, uuids[u], "duplicate uuid")
				uuids[u] = true
			}
			for _, u := range d.Users {
				addUUID(u.UUID)
			}
			for _, p := range d.Participants {
				addUUID(p.UUID)
				addTok(p.Token)
			}
			for _, dv := range d.Devices {
				addUUID(dv.UUID)
				addTok(dv.Token)
			}
			for _, s := range d.Services {
				addUUID(s.UUID)
				addTok(s.Token)
			}

			// Round trip through a file.
			path := filepath.Join(t.TempDir(), "ids.yaml")
			require.NoError(t, d.WriteFile(path))
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			back, err := LoadDirectory(path, "")
			require.NoError(t, err)
			require.Equal(t, d, back)
		})
	}
}

func TestGenerateDirectoryPasswordAndLinks(t *testing.T) {
	d, err := GenerateDirectory(GenerateOptions{Users: 4, Participants: 4, Devices: 8, Projects: 2})
	require.NoError(t, err)
	hash := d.Users[0].PasswordHash
	cost, err := bcrypt.Cost([]byte(hash))
	require.NoError(t, err)
	require.Equal(t, 4, cost)
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte(d.Password)))
	for _, u := range d.Users {
		require.Equal(t, hash, u.PasswordHash, "one shared hash")
	}
	a := newAudience(d)
	// Participant 1 is in project p1 with users 1 and 3 and devices 1 and 5.
	require.Equal(t, 1, a.projectOfParticipant[1])
	require.Equal(t, []int{1, 3}, a.usersByProject[1])
	require.Equal(t, []int{1, 5}, a.devicesByParticipant[1])
	// A device's site is its participant's project's site.
	require.Equal(t, []string{"s1"}, d.Devices[5].Sites)
	require.Equal(t, d.Services[0].Token, d.AdminServiceToken())
}

func TestLoadDirectoryErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("users: {not: a list"), 0o600))
	_, err := LoadDirectory(bad, "")
	require.ErrorIs(t, err, ErrDirectory)
	_, err = LoadDirectory(filepath.Join(dir, "missing.yaml"), "")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		n       int
		want    Mix
		wantErr error
	}{
		{name: "equal split", spec: "user,participant,device", n: 10, want: Mix{Users: 4, Participants: 3, Devices: 3}},
		{name: "weights", spec: "user:2,device", n: 30, want: Mix{Users: 20, Devices: 10}},
		{name: "equals weights and plurals", spec: "users=1, devices=3", n: 8, want: Mix{Users: 2, Devices: 6}},
		{name: "single", spec: "device", n: 5, want: Mix{Devices: 5}},
		{name: "zero weight", spec: "user:0,device", n: 3, want: Mix{Devices: 3}},
		{name: "unknown", spec: "robot", n: 3, wantErr: ErrMix},
		{name: "duplicate", spec: "user,user", n: 3, wantErr: ErrMix},
		{name: "empty", spec: "", n: 3, wantErr: ErrMix},
		{name: "bad weight", spec: "user:x", n: 3, wantErr: ErrMix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMix(tt.spec, tt.n)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.n, got.Total())
		})
	}
}

// TestGeneratedDirectoryParses: the file the bench writes is accepted by the gateway's own parser,
// with every account enabled.
func TestGeneratedDirectoryParses(t *testing.T) {
	d, err := GenerateDirectory(GenerateOptions{Users: 5, Participants: 5, Devices: 5, Projects: 2})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, d.WriteYAML(&buf))
	snap, err := directory.Parse(buf.Bytes())
	require.NoError(t, err)
	for _, u := range d.Users {
		require.True(t, snap.Enabled(directory.KindUser, u.UUID))
	}
	for _, p := range d.Participants {
		require.True(t, snap.Enabled(directory.KindParticipant, p.UUID))
	}
	for _, dv := range d.Devices {
		require.True(t, snap.Enabled(directory.KindDevice, dv.UUID))
	}
}
