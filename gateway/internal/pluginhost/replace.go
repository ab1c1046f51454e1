package pluginhost

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/teragate/teragate/gateway/internal/metrics"
)

// Reconfigure replaces every plugin's settings (ids not in settings get the defaults) and
// rebuilds, from the same bytes, each serving plugin whose settings changed: the new version is
// validated and initialised with its new config before it is swapped in, as a reload. It returns
// the ids rebuilt; a plugin whose rebuild fails keeps serving its current version and its error is
// joined in the result.
func (r *Registry) Reconfigure(settings map[string]Settings) ([]string, error) {
	for id, s := range settings {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, id, err)
		}
	}
	r.mu.Lock()
	old := r.cfg.Settings
	r.cfg.Settings = settings
	ids := make([]string, 0, len(r.plugins))
	for id := range r.plugins {
		if !reflect.DeepEqual(old[id], settings[id]) {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	slices.Sort(ids)
	var rebuilt []string
	var errs []error
	for _, id := range ids {
		p := r.plugin(id)
		p.loadMu.Lock()
		cur := p.cur.Load()
		if cur == nil {
			p.loadMu.Unlock()
			continue
		}
		v, err := r.build(p, cur.file, cur.hash, cur.data, cur.called.Load())
		if err != nil {
			p.loadMu.Unlock()
			p.log.Error("new settings rejected; the plugin keeps its current settings", "error", err)
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrInvalid, id, err))
			continue
		}
		p.cur.Store(v)
		p.gen++
		p.smu.Lock()
		p.state, p.lastError = StateActive, ""
		p.smu.Unlock()
		p.loadMu.Unlock()
		r.rebuildKinds()
		r.obs.PluginLoad(id, metrics.PluginLoaded)
		r.obs.PluginVersion(id, v.hash[:16], StateActive)
		p.log.Info("plugin reconfigured", "hash", v.hash[:16], "pool", v.settings.PoolSize, "timeout", v.settings.Timeout)
		cur.release()
		if r.cfg.OnChange != nil {
			info := p.info()
			r.cfg.OnChange(id, &info)
		}
		rebuilt = append(rebuilt, id)
	}
	return rebuilt, errors.Join(errs...)
}

// source is where a version came from.
type source struct {
	file, hash string
	data       []byte
}

func (v *version) source() *source { return &source{file: v.file, hash: v.hash, data: v.data} }

// rollback (OnQuarantine [Rollback]) replaces bad, just quarantined, by the version it replaced
// (if that one was never quarantined) or else by the built-in of the id, so that a reload that
// passed validation but keeps failing on real traffic does not leave its clients failing closed.
// Without either, or if it fails to build, bad stays quarantined (calls fail closed) until a new
// file loads.
func (r *Registry) rollback(p *plugin, bad *version, cause error) {
	p.loadMu.Lock()
	defer p.loadMu.Unlock()
	if p.cur.Load() != bad {
		return // already replaced
	}
	to := p.prev
	if to == nil || to.hash == bad.hash {
		to = nil
		if b, ok := r.cfg.Builtin[p.id]; ok {
			if h := hashOf(b); h != bad.hash {
				to = &source{file: BuiltinFile, hash: h, data: b}
			}
		}
	}
	if to == nil {
		return
	}
	v, err := r.build(p, to.file, to.hash, to.data, bad.called.Load())
	if err != nil {
		p.log.Error("rollback failed; the quarantined version stays (calls fail closed)", "to", to.hash[:16], "error", err)
		return
	}
	p.cur.Store(v)
	p.gen++
	p.prev = nil
	msg := fmt.Sprintf("rolled back from %s (%s) after repeated failures: %v", bad.hash[:16], bad.file, cause)
	p.smu.Lock()
	p.state, p.lastError, p.file = StateActive, msg, to.file
	p.smu.Unlock()
	r.rebuildKinds()
	r.obs.PluginLoad(p.id, metrics.PluginRollback)
	r.obs.PluginVersion(p.id, v.hash[:16], StateActive)
	p.log.Warn("plugin rolled back", "from", bad.hash[:16], "to", v.hash[:16], "file", to.file)
	bad.release()
	if r.cfg.OnChange != nil {
		info := p.info()
		r.cfg.OnChange(p.id, &info)
	}
}

// Unload stops serving plugin id (its file was removed). In-flight calls finish first. It does
// not fall back to a built-in: the directory watcher loads that instead of unloading.
func (r *Registry) Unload(id string) {
	r.mu.Lock()
	p := r.plugins[id]
	r.mu.Unlock()
	if p == nil {
		return
	}
	p.loadMu.Lock()
	old := p.unloadLocked()
	p.loadMu.Unlock()
	r.unloaded(p, old)
}

// unloadLocked stops serving p's version, if any, and returns it (p.loadMu held). The caller
// finishes with [Registry.unloaded] once it released p.loadMu.
func (p *plugin) unloadLocked() *version {
	old := p.cur.Swap(nil)
	p.gen++
	p.prev = nil
	p.smu.Lock()
	p.state = ""
	p.smu.Unlock()
	return old
}

// unloaded reports the unload of old (nil: nothing was serving) and releases it.
func (r *Registry) unloaded(p *plugin, old *version) {
	id := p.id
	if old == nil {
		return
	}
	r.rebuildKinds()
	r.obs.PluginLoad(id, metrics.PluginUnloaded)
	r.obs.PluginVersion(id, "", "")
	p.log.Info("plugin unloaded", "hash", old.hash[:16])
	old.release()
	if r.cfg.OnChange != nil {
		r.cfg.OnChange(id, nil)
	}
}
