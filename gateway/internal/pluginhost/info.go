package pluginhost

import (
	"slices"
	"strings"
	"time"
)

// Plugin states shown by the admin API.
const (
	StateActive      = "active"
	StateQuarantined = "quarantined"
	StateRejected    = "rejected" // no version serves: the only file seen was invalid
)

// Info describes one plugin for the admin API.
type Info struct {
	ID            string   `json:"id"`
	Kind          string   `json:"kind"` // "filter", "rpc" or "filter+rpc"
	File          string   `json:"file,omitempty"`
	Hash          string   `json:"version_hash,omitempty"`
	Name          string   `json:"name,omitempty"`
	Version       string   `json:"version,omitempty"`
	FilterKinds   []string `json:"filter_kinds,omitempty"`
	RPCModule     string   `json:"rpc_module,omitempty"`
	RPCMethods    []string `json:"rpc_methods,omitempty"`
	LoadedAt      string   `json:"loaded_at,omitempty"`
	State         string   `json:"state"`
	Calls         uint64   `json:"calls"`
	Failures      uint64   `json:"failures"`
	P50Micros     float64  `json:"p50_us"`
	P99Micros     float64  `json:"p99_us"`
	LastError     string   `json:"last_error,omitempty"`
	LastRejection string   `json:"last_rejection,omitempty"`
	PoolSize      int      `json:"pool_size,omitempty"`
	MemoryPages   uint32   `json:"memory_pages,omitempty"`
	TimeoutMillis float64  `json:"timeout_ms,omitempty"`
	// Deadline says how the per-call deadline is enforced: DeadlineInstrumented or DeadlineChecks.
	Deadline string `json:"deadline,omitempty"`
	// Cold: the version was validated but nobody has called it yet, so its code is not loaded
	// (the first call compiles it, from the on-disk compilation cache when it is there).
	Cold bool `json:"cold,omitempty"`
}

func (p *plugin) info() Info {
	p.smu.Lock()
	in := Info{ID: p.id, State: p.state, LastError: p.lastError, LastRejection: p.lastRejection, File: p.file}
	p.smu.Unlock()
	in.Calls, in.Failures = p.calls.Load(), p.failures.Load()
	in.P50Micros, in.P99Micros = p.lat.quantile(0.5), p.lat.quantile(0.99)
	if v := p.cur.Load(); v != nil {
		in.Hash, in.LoadedAt = v.hash, v.loadedAt.UTC().Format(time.RFC3339Nano)
		in.Name, in.Version = v.info.GetName(), v.info.GetVersion()
		for _, k := range v.filterKinds() {
			in.FilterKinds = append(in.FilterKinds, k.String())
		}
		in.RPCModule, in.RPCMethods = v.info.GetRpcModule(), v.info.GetRpcMethods()
		switch {
		case v.hasFilter && v.hasRPC:
			in.Kind = "filter+rpc"
		case v.hasFilter:
			in.Kind = "filter"
		default:
			in.Kind = "rpc"
		}
		in.PoolSize, in.MemoryPages = v.settings.PoolSize, v.settings.MemoryPages
		in.TimeoutMillis = float64(v.settings.Timeout) / 1e6
		in.Deadline = v.deadline
		in.Cold = v.cold.Load()
		if v.quarantined.Load() {
			in.State = StateQuarantined
		}
	}
	return in
}

// Infos lists every plugin seen (loaded, quarantined or rejected), sorted by id.
func (r *Registry) Infos() []Info {
	r.mu.Lock()
	ps := make([]*plugin, 0, len(r.plugins))
	for _, p := range r.plugins {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	out := make([]Info, 0, len(ps))
	for _, p := range ps {
		if in := p.info(); in.State != "" {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Info returns plugin id's description.
func (r *Registry) Info(id string) (Info, bool) {
	r.mu.Lock()
	p := r.plugins[id]
	r.mu.Unlock()
	if p == nil {
		return Info{}, false
	}
	in := p.info()
	return in, in.State != ""
}
