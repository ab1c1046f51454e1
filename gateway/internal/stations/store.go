package stations

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/teragate/teragate/internal/atomicfile"
)

// record is what is persisted per station.
type record struct {
	UUID         string   `json:"uuid"`
	Hostname     string   `json:"hostname,omitempty"`
	MAC          string   `json:"mac,omitempty"`
	IP           string   `json:"ip,omitempty"`
	BlockedRoles []string `json:"blocked_roles,omitempty"`
	Roles        Roles    `json:"roles"`
}

// store persists one JSON file per station in dir.
type store struct{ dir string }

// fileName returns the file of a station: its device uuid, with anything but [A-Za-z0-9-_.]
// replaced (uuids come from the directory, but a file name must never escape dir).
func (s store) fileName(uuid string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, uuid)
	return filepath.Join(s.dir, clean+".json")
}

// loadAll reads every station file; unreadable files are reported, not fatal.
func (s store) loadAll() (map[string]*record, []error) {
	out := map[string]*record{}
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, []error{err}
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.UUID == "" {
			errs = append(errs, fmt.Errorf("stations: %s: not a station record: %w", e.Name(), err))
			continue
		}
		if r.Roles == nil {
			r.Roles = Roles{}
		}
		out[r.UUID] = &r
	}
	return out, errs
}

// save writes r atomically: a temporary file in the same directory, fsync, rename, fsync of the
// directory. After a crash the file holds the old or the new record, never a mix.
func (s store) save(r *record) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r) // options are stored compact, byte for byte as pushed
	if err != nil {
		return err
	}
	return atomicfile.Write(s.fileName(r.UUID), b, 0o600)
}
