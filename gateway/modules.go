package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/teragate/teragate/gateway/internal/api"
	"github.com/teragate/teragate/gateway/internal/modsync"
	"github.com/teragate/teragate/gateway/internal/pluginhost"
	"github.com/teragate/teragate/gateway/internal/stations"
)

// ClusterFile is the File the admin API reports for a plugin version that came from the cluster
// (Redis) or an upload, rather than from the node's plugin directory.
const ClusterFile = "(cluster)"

// Module uploads and, with Redis, cluster-wide plugins and roles (docs/modules.md):
//
//	PUT    /api/plugins/{id}   admin: the body is the plugin's Wasm module
//	DELETE /api/plugins/{id}   admin: the built-in of id (or none) serves again
//	GET    /api/roles          admin: the role plugins, with each node's version under Redis
//	PUT    /api/roles/{name}   admin: the body is the role plugin's Wasm module
//	DELETE /api/roles/{name}   admin: the role is no longer offered to stations

// moduleSyncCounter returns the counter of cluster loads, registered once per gateway registry.
func (g *Gateway) moduleSyncCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teragate_module_sync_total",
		Help: "Cluster module versions a node acted on, by kind (plugins, roles) and result (loaded, rejected, removed, missing).",
	}, []string{"kind", "result"})
	if err := g.metrics.Registry().Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return c
}

// newModuleSync returns the Redis store of one kind of module, or nil on a single node.
func (g *Gateway) newModuleSync(kind string, t modsync.Target) (*modsync.Store, error) {
	if g.redis == nil || g.cluster == nil {
		return nil, nil
	}
	counter := g.moduleSyncCounter()
	return modsync.New(modsync.Config{
		Client:    g.redis,
		Kind:      kind,
		NodeID:    g.cluster.NodeID(),
		Target:    t,
		MaxBytes:  g.cfg.MaxModuleBytes,
		StatusTTL: 3 * time.Duration(g.cfg.RedisNodeTTL),
		OnApply:   func(result string) { counter.WithLabelValues(kind, result).Inc() },
		Logger:    g.log.Named("modsync." + kind),
	})
}

// pluginTarget is the plugin registry as a [modsync.Target].
type pluginTarget struct{ pp *pluginParts }

func (t pluginTarget) Apply(id, _ string, data []byte) error {
	return t.pp.reg.LoadAs(id, ClusterFile, data)
}

func (t pluginTarget) Remove(id string) {
	if ok, _ := t.pp.reg.LoadBuiltin(id); !ok {
		t.pp.reg.Unload(id)
	}
}

func (t pluginTarget) Serving() map[string]string {
	out := map[string]string{}
	for _, in := range t.pp.reg.Infos() {
		if in.Hash != "" {
			out[in.ID] = in.Hash
		}
	}
	return out
}

// roleTarget is the station role library as a [modsync.Target].
type roleTarget struct{ m *stations.Manager }

func (t roleTarget) Apply(role, _ string, data []byte) error {
	_, err := t.m.PutRole(role, data)
	return err
}

func (t roleTarget) Remove(role string) { t.m.RemoveRole(role) }

func (t roleTarget) Serving() map[string]string {
	vs, _ := t.m.RoleVersions()
	out := make(map[string]string, len(vs))
	for _, v := range vs {
		out[v.Role] = strings.TrimPrefix(v.Script, stations.HashPrefix)
	}
	return out
}

// sharer passes a directory's contents and changes to a store: it starts the store with the
// files loaded at start, publishes a file the node accepted, records one it refused, and (for
// plugins) deletes a removed file's plugin everywhere.
type sharer struct {
	g     *Gateway
	kind  string
	store func() *modsync.Store
}

func (s sharer) Initial(ctx context.Context, files map[string][]byte) {
	s.g.startModuleSync(ctx, s.kind, s.store(), files)
}

func (s sharer) Changed(ctx context.Context, id string, data []byte, err error) {
	st := s.store()
	if err != nil {
		st.Rejected(ctx, id, data, err)
		return
	}
	if _, _, err := st.Publish(ctx, id, data); err != nil {
		s.g.log.Error("a module file loaded on this node but could not be shared with the cluster", "kind", s.kind, "id", id, "error", err)
	}
}

func (s sharer) Removed(ctx context.Context, id string) {
	if _, err := s.store().Delete(ctx, id); err != nil {
		s.g.log.Error("a module file was removed but the cluster could not be told", "kind", s.kind, "id", id, "error", err)
	}
}

// startModuleSync starts st (nil: nothing to do) with the files loaded from the node's directory,
// its goroutines counted in the gateway's.
func (g *Gateway) startModuleSync(ctx context.Context, kind string, st *modsync.Store, files map[string][]byte) {
	if st == nil {
		return
	}
	if err := st.Start(ctx, files); err != nil {
		g.log.Error("could not load the cluster's modules; this node serves its own until it restarts", "kind", kind, "error", err)
		return
	}
	g.wg.Add(1)
	go func() { defer g.wg.Done(); st.Wait() }()
}

// initRoleSync shares the role plugins through Redis and mounts the roles endpoints.
func (g *Gateway) initRoleSync() error {
	g.api.Handle("GET /api/roles", "roles", api.AdminOnly(g.api.Authenticate, g.handleRoles))
	g.api.Handle("PUT /api/roles/{name}", "roles_put", api.AdminOnly(g.api.Authenticate, g.handlePutRole))
	g.api.Handle("DELETE /api/roles/{name}", "roles_delete", api.AdminOnly(g.api.Authenticate, g.handleDeleteRole))
	st, err := g.newModuleSync("roles", roleTarget{g.stations})
	if err != nil || st == nil {
		return err
	}
	g.roleSync = st
	g.stations.SetSharer(sharer{g: g, kind: "roles", store: func() *modsync.Store { return g.roleSync }})
	return nil
}

// readModule reads a module upload: 413 above max_module_bytes, 400 when empty. It answers the
// error itself and returns nil then.
func (g *Gateway) readModule(w http.ResponseWriter, r *http.Request) []byte {
	limit := g.cfg.MaxModuleBytes
	if r.ContentLength > limit {
		api.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("module of %d bytes: the limit (max_module_bytes) is %d", r.ContentLength, limit))
		return nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		api.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("module larger than the limit (max_module_bytes) of %d bytes", limit))
		return nil
	case err != nil:
		api.WriteError(w, http.StatusBadRequest, "reading the module: "+err.Error())
		return nil
	case len(data) == 0:
		api.WriteError(w, http.StatusBadRequest, "empty body: send the module's Wasm bytes")
		return nil
	}
	return data
}

// moduleResult is the answer of a module PUT or DELETE.
type moduleResult struct {
	ID string `json:"id"`
	// Hash is the sha256 hex of the uploaded version ("" after a DELETE).
	Hash string `json:"version_hash,omitempty"`
	// Changed is false when the version was already the current one (PUT) or there was nothing
	// to delete (DELETE).
	Changed bool `json:"changed"`
	// Cluster is true when the change went to every node through Redis; false when it applies to
	// this node only.
	Cluster bool `json:"cluster"`
	// File is the file written (single node with a directory), if any.
	File string `json:"file,omitempty"`
	// Node is the node that took the request ("" on a single node).
	Node string `json:"node,omitempty"`
}

// handlePutPlugin serves PUT /api/plugins/{id}: the module is loaded on this node first (400
// with its reason when it is refused: nothing changes anywhere), then shared with every node
// (Redis) or written into the plugin directory (a single node with one).
func (g *Gateway) handlePutPlugin(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !pluginhost.ValidID(id) {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("bad plugin id %q: lower-case letters, digits, '_', '-' and '.', starting with a letter", id))
		return
	}
	if g.plugins == nil {
		api.WriteError(w, http.StatusConflict, "plugins are off on this node (no plugin directory and no built-ins)")
		return
	}
	data := g.readModule(w, r)
	if data == nil {
		return
	}
	res := moduleResult{ID: id, Hash: modsync.Hash(data), Node: g.NodeID()}
	before, _ := g.plugins.reg.Info(id)
	file := ClusterFile
	if g.plugins.store == nil && g.cfg.Plugins != "" {
		file = filepath.Join(g.cfg.Plugins, id+".wasm")
	}
	if err := g.plugins.reg.LoadAs(id, file, data); err != nil {
		api.WriteError(w, http.StatusBadRequest, "module rejected: "+strings.TrimPrefix(err.Error(), "pluginhost: "))
		return
	}
	res.Changed = before.Hash != res.Hash
	if st := g.plugins.store; st != nil {
		_, changed, err := st.Publish(r.Context(), id, data)
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "the module serves on this node but could not be shared with the cluster: "+err.Error())
			return
		}
		res.Changed, res.Cluster = changed, true
	} else if g.cfg.Plugins != "" {
		if err := writeAtomic(g.cfg.Plugins, id+".wasm", data); err != nil {
			api.WriteError(w, http.StatusInternalServerError, "the module serves but could not be written to the plugin directory: "+err.Error())
			return
		}
		res.File = file
	}
	g.log.Info("plugin uploaded", "id", id, "hash", res.Hash[:16], "bytes", len(data), "cluster", res.Cluster)
	api.WriteJSON(w, http.StatusOK, res)
}

// handleDeletePlugin serves DELETE /api/plugins/{id}: the built-in of id (or, without one,
// nothing) serves again, on every node with Redis; a single node also removes the file.
func (g *Gateway) handleDeletePlugin(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !pluginhost.ValidID(id) {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("bad plugin id %q", id))
		return
	}
	if g.plugins == nil {
		api.WriteError(w, http.StatusNotFound, "plugins are off on this node")
		return
	}
	res := moduleResult{ID: id, Node: g.NodeID()}
	if st := g.plugins.store; st != nil {
		had, err := st.Delete(r.Context(), id)
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		res.Changed, res.Cluster = had, true
	} else {
		in, _ := g.plugins.reg.Info(id)
		res.Changed = in.Hash != "" && in.File != pluginhost.BuiltinFile
		if g.cfg.Plugins != "" {
			err := os.Remove(filepath.Join(g.cfg.Plugins, id+".wasm"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				api.WriteError(w, http.StatusInternalServerError, "removing the plugin file: "+err.Error())
				return
			}
			res.Changed = res.Changed || err == nil
		}
		pluginTarget{g.plugins}.Remove(id)
	}
	if !res.Changed {
		api.WriteError(w, http.StatusNotFound, fmt.Sprintf("no uploaded or dropped version of plugin %s", id))
		return
	}
	g.log.Info("plugin deleted: its built-in (if any) serves", "id", id, "cluster", res.Cluster)
	api.WriteJSON(w, http.StatusOK, res)
}

// handlePutRole serves PUT /api/roles/{name}, as handlePutPlugin does for plugins.
func (g *Gateway) handlePutRole(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !stations.ValidRoleName(name) {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("bad role name %q: letters, digits, '-' and '_'", name))
		return
	}
	data := g.readModule(w, r)
	if data == nil {
		return
	}
	res := moduleResult{ID: name, Hash: modsync.Hash(data), Node: g.NodeID()}
	before := roleTarget{g.stations}.Serving()[name]
	if _, err := g.stations.PutRole(name, data); err != nil {
		api.WriteError(w, http.StatusBadRequest, "module rejected: "+strings.TrimPrefix(err.Error(), "stations: "))
		return
	}
	res.Changed = before != res.Hash
	if st := g.roleSync; st != nil {
		_, changed, err := st.Publish(r.Context(), name, data)
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "the role is offered by this node but could not be shared with the cluster: "+err.Error())
			return
		}
		res.Changed, res.Cluster = changed, true
	} else {
		if err := writeAtomic(g.stations.RolesDir(), name+".wasm", data); err != nil {
			api.WriteError(w, http.StatusInternalServerError, "the role is offered but could not be written to the roles directory: "+err.Error())
			return
		}
		res.File = filepath.Join(g.stations.RolesDir(), name+".wasm")
	}
	g.log.Info("role plugin uploaded", "role", name, "hash", res.Hash[:16], "bytes", len(data), "cluster", res.Cluster)
	api.WriteJSON(w, http.StatusOK, res)
}

// handleDeleteRole serves DELETE /api/roles/{name}: the role is no longer offered (stations
// running it keep their version until their next configuration push); a single node also
// removes its file.
func (g *Gateway) handleDeleteRole(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !stations.ValidRoleName(name) {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("bad role name %q", name))
		return
	}
	res := moduleResult{ID: name, Node: g.NodeID()}
	if st := g.roleSync; st != nil {
		had, err := st.Delete(r.Context(), name)
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		res.Changed, res.Cluster = had, true
	} else {
		// The file first: a removed file keeps its role, so the watcher does not undo this.
		err := os.Remove(filepath.Join(g.stations.RolesDir(), name+".wasm"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			api.WriteError(w, http.StatusInternalServerError, "removing the role file: "+err.Error())
			return
		}
		res.Changed = g.stations.RemoveRole(name) || err == nil
	}
	if !res.Changed {
		api.WriteError(w, http.StatusNotFound, fmt.Sprintf("no role %s", name))
		return
	}
	g.log.Info("role plugin deleted", "role", name, "cluster", res.Cluster)
	api.WriteJSON(w, http.StatusOK, res)
}

// roleEntry is one role in GET /api/roles.
type roleEntry struct {
	Role string `json:"role"`
	// Hash is the sha256 hex of the version this node offers ("" for none).
	Hash          string          `json:"version_hash,omitempty"`
	Size          int             `json:"size,omitempty"`
	LoadedAt      *time.Time      `json:"loaded_at,omitempty"`
	LastRejection string          `json:"last_rejection,omitempty"`
	Cluster       *modsync.IDView `json:"cluster,omitempty"`
}

// handleRoles serves GET /api/roles.
func (g *Gateway) handleRoles(w http.ResponseWriter, r *http.Request) {
	vs, rej := g.stations.RoleVersions()
	byName := map[string]*roleEntry{}
	var order []string
	entry := func(name string) *roleEntry {
		e := byName[name]
		if e == nil {
			e = &roleEntry{Role: name}
			byName[name] = e
			order = append(order, name)
		}
		return e
	}
	for _, v := range vs {
		e := entry(v.Role)
		e.Hash, e.Size = strings.TrimPrefix(v.Script, stations.HashPrefix), v.Size
		at := v.LoadedAt
		e.LoadedAt = &at
	}
	for name, why := range rej {
		entry(name).LastRejection = why
	}
	if g.roleSync != nil {
		view, err := g.roleSync.View(r.Context())
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, "reading the cluster's roles: "+err.Error())
			return
		}
		for _, name := range view.IDs() {
			idv := view.ID(name)
			if _, ok := byName[name]; !ok && idv.Hash == "" {
				continue // deleted everywhere
			}
			entry(name).Cluster = &idv
		}
	}
	out := struct {
		Dir   string      `json:"dir"`
		Node  string      `json:"node,omitempty"`
		Roles []roleEntry `json:"roles"`
	}{Dir: g.stations.RolesDir(), Node: g.NodeID(), Roles: []roleEntry{}}
	slices.Sort(order)
	for _, name := range order {
		out.Roles = append(out.Roles, *byName[name])
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// writeAtomic writes data to dir/name through a temporary file renamed over it, so a watcher
// never reads a partial module.
func writeAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
