package loadtest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ReloadConfig describes a plugin reload run (`teragate bench --plugin-reloads`): the same module
// written again and again into a gateway's plugin directory, each time under a new hash, while
// the server's RSS is sampled.
type ReloadConfig struct {
	// BaseURL is the gateway's HTTP base URL. Required.
	BaseURL string
	// AdminToken authenticates GET /api/plugins (an admin service's token). Required.
	AdminToken string
	// InsecureSkipVerify accepts any TLS certificate.
	InsecureSkipVerify bool
	// PluginDir is the gateway's plugin directory. Required.
	PluginDir string
	// ID is the plugin id written (<ID>.wasm). Required.
	ID string
	// Module is the plugin's WebAssembly module; each version appends a custom section to it.
	Module []byte
	// Count is how many new versions are written after the first. Required.
	Count int
	// Interval is the least time between two writes; a write also waits until the previous
	// version serves. Zero means 1.2 s.
	Interval time.Duration
	// Settle is the wait before the "before" and "after" samples. Zero means 10 s.
	Settle time.Duration
	// LoadTimeout bounds the wait for one version to serve. Zero means 2 min.
	LoadTimeout time.Duration
	// ServerPID is the gateway process, for its RSS. Required.
	ServerPID int
	// Progress receives a line per reload. Nil means none.
	Progress io.Writer
}

// ReloadReport is the result of [RunReloads].
type ReloadReport struct {
	ID      string `json:"id"`
	Reloads int    `json:"reloads"`
	// RSS of the server after the first version served and Settle passed, its highest sample
	// during the reloads, and after the last one served and Settle passed.
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSPeak   int64 `json:"rss_peak_bytes"`
	RSSAfter  int64 `json:"rss_after_bytes"`
	// LoadP50 and LoadMax are the times from writing a version to it serving.
	LoadP50 time.Duration `json:"load_p50"`
	LoadMax time.Duration `json:"load_max"`
	// LiveBefore and LiveAfter are the host's own counts (GET /api/plugins "live"), nil when the
	// server does not report them.
	LiveBefore json.RawMessage `json:"live_before,omitempty"`
	LiveAfter  json.RawMessage `json:"live_after,omitempty"`
}

// WriteText prints the report as aligned lines.
func (r *ReloadReport) WriteText(w io.Writer) error {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	var sb strings.Builder
	fmt.Fprintf(&sb, "reloads       %d new versions of %s (the same code, a new custom section each)\n", r.Reloads, r.ID)
	fmt.Fprintf(&sb, "rss           before %.1f MiB, peak %.1f MiB, after %.1f MiB (%+.1f%%)\n",
		mib(r.RSSBefore), mib(r.RSSPeak), mib(r.RSSAfter), 100*(float64(r.RSSAfter)/float64(r.RSSBefore)-1))
	fmt.Fprintf(&sb, "load time     p50 %s, max %s (file written → serving)\n", r.LoadP50.Round(time.Millisecond), r.LoadMax.Round(time.Millisecond))
	if r.LiveBefore != nil || r.LiveAfter != nil {
		fmt.Fprintf(&sb, "host counts   before %s, after %s\n", r.LiveBefore, r.LiveAfter)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// reloadVersion returns module with a custom section "teragate-bench" holding n: the same code
// under a new hash.
func reloadVersion(module []byte, n int) []byte {
	name := "teragate-bench"
	body := binary.AppendUvarint(nil, uint64(len(name)))
	body = append(body, name...)
	body = binary.AppendUvarint(body, uint64(n)+1) // a non-empty payload
	out := append(append([]byte(nil), module...), 0)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// RunReloads writes cfg.Count+1 versions of cfg.Module as <ID>.wasm into cfg.PluginDir (by
// atomic rename, as a deployment would), waits for each to serve, and reports the server's RSS
// before, during and after.
func RunReloads(ctx context.Context, cfg ReloadConfig) (*ReloadReport, error) {
	if cfg.BaseURL == "" || cfg.AdminToken == "" || cfg.PluginDir == "" || cfg.ID == "" || len(cfg.Module) == 0 || cfg.Count <= 0 || cfg.ServerPID <= 0 {
		return nil, fmt.Errorf("%w: a reload run needs a URL, an admin token, a plugin directory, an id, a module, a count and the server's pid", ErrConfig)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 1200 * time.Millisecond
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 10 * time.Second
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 2 * time.Minute
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	tr := &http.Transport{Proxy: nil}
	if cfg.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator asked for it
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	defer client.CloseIdleConnections()
	rep := &ReloadReport{ID: cfg.ID, Reloads: cfg.Count}
	var peak int64
	sample := func() int64 {
		s, err := ReadProcStat(cfg.ServerPID)
		if err != nil {
			return 0
		}
		peak = max(peak, s.RSS)
		return s.RSS
	}
	write := func(n int) (time.Duration, error) {
		data := reloadVersion(cfg.Module, n)
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		path := filepath.Join(cfg.PluginDir, cfg.ID+".wasm")
		tmp := filepath.Join(cfg.PluginDir, "."+cfg.ID+".tmp")
		start := time.Now()
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return 0, err
		}
		if err := os.Rename(tmp, path); err != nil {
			return 0, err
		}
		deadline := start.Add(cfg.LoadTimeout)
		for {
			st, err := pluginState(ctx, client, cfg, hash)
			sample()
			if err != nil {
				return 0, err
			}
			if st.serving {
				return time.Since(start), nil
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("loadtest: version %d of %s not serving after %s (last rejection: %s)", n, cfg.ID, cfg.LoadTimeout, st.rejection)
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	settle := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.Settle):
			return nil
		}
	}
	if _, err := write(0); err != nil {
		return nil, err
	}
	if err := settle(); err != nil {
		return nil, err
	}
	peak = 0
	rep.RSSBefore = sample()
	rep.LiveBefore, _ = pluginLive(ctx, client, cfg)
	fmt.Fprintf(progress, "reload: before %.1f MiB, host %s\n", float64(rep.RSSBefore)/(1<<20), rep.LiveBefore)
	var times []time.Duration
	for i := 1; i <= cfg.Count; i++ {
		start := time.Now()
		d, err := write(i)
		if err != nil {
			return nil, err
		}
		times = append(times, d)
		fmt.Fprintf(progress, "reload %d/%d: serving after %s, rss %.1f MiB\n", i, cfg.Count, d.Round(time.Millisecond), float64(sample())/(1<<20))
		if wait := cfg.Interval - time.Since(start); wait > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	if err := settle(); err != nil {
		return nil, err
	}
	rep.RSSPeak = peak
	rep.RSSAfter = sample()
	rep.RSSPeak = max(rep.RSSPeak, rep.RSSAfter)
	rep.LiveAfter, _ = pluginLive(ctx, client, cfg)
	slices.Sort(times)
	rep.LoadP50, rep.LoadMax = times[len(times)/2], times[len(times)-1]
	return rep, nil
}

type pluginStatus struct {
	serving   bool
	rejection string
}

// pluginsBody is the part of GET /api/plugins a reload run reads.
type pluginsBody struct {
	Plugins []struct {
		ID            string `json:"id"`
		Hash          string `json:"version_hash"`
		State         string `json:"state"`
		LastRejection string `json:"last_rejection"`
	} `json:"plugins"`
	Live json.RawMessage `json:"live"`
}

func getPlugins(ctx context.Context, client *http.Client, cfg ReloadConfig) (*pluginsBody, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.BaseURL, "/")+"/api/plugins", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "OpenTera "+cfg.AdminToken)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadtest: GET /api/plugins: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("loadtest: GET /api/plugins: %s: %s", resp.Status, b)
	}
	var body pluginsBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("loadtest: GET /api/plugins: %w", err)
	}
	return &body, nil
}

func pluginState(ctx context.Context, client *http.Client, cfg ReloadConfig, hash string) (pluginStatus, error) {
	body, err := getPlugins(ctx, client, cfg)
	if err != nil {
		return pluginStatus{}, err
	}
	for _, p := range body.Plugins {
		if p.ID == cfg.ID {
			return pluginStatus{serving: p.Hash == hash && p.State == "active", rejection: p.LastRejection}, nil
		}
	}
	return pluginStatus{}, nil
}

func pluginLive(ctx context.Context, client *http.Client, cfg ReloadConfig) (json.RawMessage, error) {
	body, err := getPlugins(ctx, client, cfg)
	if err != nil {
		return nil, err
	}
	return body.Live, nil
}
