package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/teragate/teragate/gateway/internal/pluginhost"
)

// ReloadReport says what a [Gateway.Reload] did.
type ReloadReport struct {
	// Applied are the config keys whose new values took effect.
	Applied []string
	// NeedRestart are the config keys that changed but only take effect on a restart; the
	// gateway keeps running with their old values.
	NeedRestart []string
	// PluginsRebuilt are the plugins rebuilt with new settings.
	PluginsRebuilt []string
	// CertificateReloaded is true when the TLS certificate files were read again.
	CertificateReloaded bool
}

// String describes the report in one line, for logs.
func (r ReloadReport) String() string {
	var b strings.Builder
	if len(r.Applied) == 0 && !r.CertificateReloaded {
		b.WriteString("nothing to apply")
	} else {
		b.WriteString("applied: " + strings.Join(r.Applied, ", "))
		if r.CertificateReloaded && !slices.Contains(r.Applied, "tls_cert") {
			b.WriteString(" (certificate files re-read)")
		}
	}
	if len(r.NeedRestart) > 0 {
		b.WriteString("; need a restart (old values kept): " + strings.Join(r.NeedRestart, ", "))
	}
	return b.String()
}

// Reload applies next, a new configuration, to the running gateway (SIGHUP or a change of the
// config file in teragate serve): log_level, plugin_config (plugins whose settings changed are
// rebuilt, validated and swapped as on a file reload) and the TLS certificate (tls_cert and
// tls_key are read again even when unchanged, so a renewed certificate takes effect for new
// connections). Other keys that changed are listed in the report as needing a restart. An
// invalid config changes nothing and returns an error wrapping [ErrInvalidConfig].
func (g *Gateway) Reload(next Config) (ReloadReport, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	rep, err := g.reload(next)
	g.metrics.ConfigReload(err == nil)
	if err != nil {
		g.log.Error("configuration reload failed", "applied", rep.String(), "error", err)
	} else {
		g.log.Info("configuration reloaded", "report", rep.String())
	}
	return rep, err
}

func (g *Gateway) reload(next Config) (ReloadReport, error) {
	var rep ReloadReport
	next.Logger, next.Builtins = g.cfg.Logger, g.cfg.Builtins
	next = next.WithDefaults()
	if err := next.Validate(); err != nil {
		return rep, err
	}
	changed := changedKeys(g.cfg, next)
	settings := map[string]pluginhost.Settings{}
	for id, pc := range next.PluginConfig {
		s, err := pc.settings()
		if err != nil {
			return rep, fmt.Errorf("%w: plugin_config.%s: %v", ErrInvalidConfig, id, err)
		}
		settings[id] = s
	}
	var cert *tls.Certificate
	if g.tlsCfg != nil && next.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(next.TLSCert, next.TLSKey)
		if err != nil {
			return rep, fmt.Errorf("%w: TLS certificate: %v", ErrInvalidConfig, err)
		}
		cert = &c
	}
	// Without cert, a change of tls_cert or tls_key (back to the generated certificate, or with
	// TLS off) is a restart.

	var errs []error
	for _, k := range changed {
		switch {
		case k == "log_level":
			g.log.SetLevel(hclog.LevelFromString(next.LogLevel))
			g.cfg.LogLevel = next.LogLevel
			rep.Applied = append(rep.Applied, k)
		case k == "plugin_config" && g.plugins != nil:
			ids, err := g.plugins.reg.Reconfigure(settings)
			rep.PluginsRebuilt = ids
			g.cfg.PluginConfig = next.PluginConfig
			rep.Applied = append(rep.Applied, k)
			errs = append(errs, err)
		case (k == "tls_cert" || k == "tls_key") && cert != nil:
			rep.Applied = append(rep.Applied, k)
		default:
			rep.NeedRestart = append(rep.NeedRestart, k)
		}
	}
	if cert != nil {
		g.cert.Store(cert)
		g.cfg.TLSCert, g.cfg.TLSKey = next.TLSCert, next.TLSKey
		rep.CertificateReloaded = true
	}
	return rep, errors.Join(errs...)
}

// changedKeys lists the YAML keys whose values differ between a and b (keys tagged "-" are not
// compared), in field order.
func changedKeys(a, b Config) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}
