package stations

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"

	"github.com/teragate/teragate/gateway/internal/fswatch"
	"github.com/teragate/teragate/sdk/abi"
)

// ErrInvalidRole is returned for a role file that is not a role plugin.
var ErrInvalidRole = errors.New("stations: invalid role plugin")

// HashPrefix starts every script hash.
const HashPrefix = "sha256:"

// RoleVersion is one loaded version of a role plugin.
type RoleVersion struct {
	// Role is the role name (the file name without .wasm).
	Role string `json:"role"`
	// Script is "sha256:<hex>" of the file's bytes.
	Script string `json:"script"`
	// Size is the file's size in bytes.
	Size int `json:"size"`
	// LoadedAt is when this version was loaded.
	LoadedAt time.Time `json:"loaded_at"`
	data     []byte
}

// library holds the role plugins of the roles directory: the current version per role and every
// version seen since start by hash (stations swapping in a new version, or still registering with
// an old one, can fetch it).
type library struct {
	dir      string
	log      hclog.Logger
	onChange func(role, script string)
	loadMu   sync.Mutex // serialises loadFile: versions are installed and announced in order
	counted  func(ok bool)
	share    Sharer // nil on a single node

	mu       sync.RWMutex
	current  map[string]*RoleVersion // role → current version
	byHash   map[string]*RoleVersion // hex → version
	rejected map[string]string       // role → why its last file was refused
}

func newLibrary(dir string, log hclog.Logger, onChange func(role, script string)) *library {
	return &library{dir: dir, log: log, onChange: onChange,
		current: map[string]*RoleVersion{}, byHash: map[string]*RoleVersion{}, rejected: map[string]string{}}
}

// script returns the current script hash of role, or "".
func (l *library) script(role string) string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if v := l.current[role]; v != nil {
		return v.Script
	}
	return ""
}

// byHex returns the bytes of a version by its hex hash.
func (l *library) byHex(h string) ([]byte, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v := l.byHash[h]
	if v == nil {
		return nil, false
	}
	return v.data, true
}

// list returns the current versions, sorted by role, and the rejections.
func (l *library) list() ([]RoleVersion, map[string]string) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]RoleVersion, 0, len(l.current))
	for _, v := range l.current {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b RoleVersion) int { return strings.Compare(a.Role, b.Role) })
	rej := make(map[string]string, len(l.rejected))
	for k, v := range l.rejected {
		rej[k] = v
	}
	return out, rej
}

// add installs data as role's current version when it is a valid role plugin and differs from
// the current one; it reports whether it changed anything.
func (l *library) add(role string, data []byte) (bool, error) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	l.mu.RLock()
	cur := l.current[role]
	l.mu.RUnlock()
	if cur != nil && cur.Script == HashPrefix+h {
		return false, nil // same bytes: nothing to do
	}
	if err := validateRole(data); err != nil {
		l.mu.Lock()
		l.rejected[role] = err.Error()
		l.mu.Unlock()
		return false, err
	}
	v := &RoleVersion{Role: role, Script: HashPrefix + h, Size: len(data), LoadedAt: time.Now().UTC(), data: data}
	l.mu.Lock()
	l.current[role] = v
	if l.byHash[h] == nil {
		l.byHash[h] = v
	}
	delete(l.rejected, role)
	l.mu.Unlock()
	return true, nil
}

// validateRole checks that data is a Wasm module exporting the role plugin ABI. It uses
// wazero's interpreter, which validates without generating code.
func validateRole(data []byte) error {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRole, err)
	}
	exp := cm.ExportedFunctions()
	for _, name := range abi.RoleExports() {
		if _, ok := exp[name]; !ok {
			return fmt.Errorf("%w: missing export %s", ErrInvalidRole, name)
		}
	}
	return nil
}

// roleOfFile returns the role name of a file name "<role>.wasm" ([ValidRoleName]).
func roleOfFile(name string) (string, bool) {
	role, ok := strings.CutSuffix(name, ".wasm")
	return role, ok && ValidRoleName(role)
}

// Limits of a role plugin file: a larger file, or one whose read takes longer, is rejected.
const (
	MaxRoleBytes    = 32 << 20
	RoleReadTimeout = 10 * time.Second
)

// loadFile loads dir/<role>.wasm, read with [fswatch.ReadFile] (a regular file of at most
// [MaxRoleBytes], symbolic links only inside the directory). A file that cannot be read safely is
// rejected like an invalid module (logged, counted, reported); a removed file keeps the version
// loaded (running stations are not disturbed) but logs it.
func (l *library) loadFile(ctx context.Context, role string) {
	data, ok, err := l.readInstall(ctx, role)
	if ok && l.share != nil && ctx.Err() == nil {
		l.share.Changed(ctx, role, data, err)
	}
}

// readInstall is loadFile without telling the sharer: it returns the bytes read (nil if the file
// could not be read) and the rejection; ok is false when there was nothing to load (the file was
// removed, or the watch stops).
func (l *library) readInstall(ctx context.Context, role string) (data []byte, ok bool, err error) {
	data, err = fswatch.ReadFile(ctx, l.dir, role+".wasm", fswatch.Limits{MaxBytes: MaxRoleBytes, Timeout: RoleReadTimeout})
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, false, err // stopping
	case errors.Is(err, fs.ErrNotExist):
		l.log.Info("role plugin file removed; the loaded version stays until replaced", "role", role)
		return nil, false, nil
	case err != nil:
		l.loadMu.Lock()
		l.mu.Lock()
		l.rejected[role] = err.Error()
		l.mu.Unlock()
		l.loadMu.Unlock()
		l.log.Warn("role plugin rejected; the previous version stays", "role", role, "error", err)
		if l.counted != nil {
			l.counted(false)
		}
		return nil, true, err
	}
	return data, true, l.install(role, data)
}

// install makes data the current version of role when it is a valid role plugin (logged,
// counted, announced to onChange when it changed anything); an invalid one is rejected and the
// previous version stays.
func (l *library) install(role string, data []byte) error {
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	changed, err := l.add(role, data)
	if err != nil {
		l.log.Warn("role plugin rejected; the previous version stays", "role", role, "error", err)
		if l.counted != nil {
			l.counted(false)
		}
		return err
	}
	if changed {
		if l.counted != nil {
			l.counted(true)
		}
		s := l.script(role)
		l.log.Info("role plugin loaded", "role", role, "script", s, "bytes", len(data))
		if l.onChange != nil {
			l.onChange(role, s)
		}
	}
	return nil
}

// remove stops offering role: stations registering or reconfigured later get no plugin for it
// (they answer MISSING_ROLE_FACTORY); stations running it keep their version, and its bytes stay
// fetchable by hash. It reports whether role had a version.
func (l *library) remove(role string) bool {
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	l.mu.Lock()
	_, had := l.current[role]
	delete(l.current, role)
	delete(l.rejected, role)
	l.mu.Unlock()
	if had {
		l.log.Info("role plugin removed", "role", role)
	}
	return had
}

// Sharer is told what the roles directory holds and how its files change, after the library
// acted on them, so that a cluster can offer one set of roles (see [Manager.SetSharer]). Its
// methods run on the watcher's goroutine. A removed file keeps its role's version, on one node as
// in a cluster: [Manager.RemoveRole] removes a role.
type Sharer interface {
	// Initial is called once the directory is loaded at start, with the bytes of each role file
	// that loaded; the manager reports ready after it returns.
	Initial(ctx context.Context, files map[string][]byte)
	// Changed is called after the file of role was created or written: data are its bytes (nil
	// if it could not be read) and err its rejection (nil when that version is current).
	Changed(ctx context.Context, role string, data []byte, err error)
}

// SetSharer makes the manager tell s of the roles directory (call it before [Manager.Run]).
func (m *Manager) SetSharer(s Sharer) { m.lib.share = s }

// PutRole makes data the current version of role (validated as a role plugin, announced to the
// stations running the role). The roles directory is not written.
func (m *Manager) PutRole(role string, data []byte) (RoleVersion, error) {
	if !ValidRoleName(role) {
		return RoleVersion{}, fmt.Errorf("%w: bad role name %q", ErrInvalidRole, role)
	}
	if err := m.lib.install(role, data); err != nil {
		return RoleVersion{}, err
	}
	m.lib.mu.RLock()
	defer m.lib.mu.RUnlock()
	return *m.lib.current[role], nil
}

// RemoveRole stops offering role (see [Sharer]); it reports whether role had a version.
func (m *Manager) RemoveRole(role string) bool { return m.lib.remove(role) }

// RoleVersions returns the current role versions, sorted by role, and the last rejection of each
// role whose last file or upload was refused.
func (m *Manager) RoleVersions() ([]RoleVersion, map[string]string) { return m.lib.list() }

// ValidRoleName reports whether name can name a role: 1 to 100 of A-Z a-z 0-9 '_' '-'. It is the
// one rule for role names: the roles directory (<role>.wasm), PUT/DELETE /api/roles/{name}, a
// station's Register and admin edits, and job offers all check it.
//
// It differs on purpose from the plugin id rule ([pluginhost.ValidID]: lower case, '.', first
// a letter): a role name is chosen by a station's configuration and travels in the station
// protocol as a key of its roles, where upper case has been accepted from the start (stored
// station records may hold such names), and a role is one flat name with no kind prefix, whereas
// a plugin id is "<kind>.<name>" (the dot is part of its syntax: "filter.user" serves user
// connections) and is a metric label and a log scope. Either rule narrowed to the other would
// refuse names that were valid until now.
func ValidRoleName(name string) bool {
	if name == "" || len(name) > 100 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// watchReady loads the roles directory once and follows it until ctx is done (creating it if
// needed): a created, written, chmod-ed or renamed-in <role>.wasm is loaded after debounce.
// ready is called once: after the initial load, or when the watch cannot start.
func (l *library) watchReady(ctx context.Context, debounce time.Duration, ready func()) error {
	var once sync.Once
	defer once.Do(ready) // also when the watch cannot start
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	return fswatch.Run(ctx, fswatch.Config{
		Dir:      l.dir,
		Match:    roleOfFile,
		Debounce: debounce,
		Logger:   l.log,
		Initial: func(ctx context.Context, roles []string) {
			files := map[string][]byte{}
			for _, role := range roles {
				if data, ok, err := l.readInstall(ctx, role); ok && err == nil {
					files[role] = data
				}
			}
			if l.share != nil {
				l.share.Initial(ctx, files)
			}
			once.Do(ready)
		},
		Changed: l.loadFile,
	})
}
