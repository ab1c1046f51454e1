package gateway_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/tlsgen"
)

// serverCert returns the leaf certificate's serial number the gateway presents to a new
// connection.
func serverCert(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test certificates
	resp, err := c.Get(url + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "healthz: %s", b)
	require.JSONEq(t, `{"status": "ok"}`, string(b))
	return resp.TLS.PeerCertificates[0].SerialNumber.String()
}

func metricLine(t *testing.T, e *env, name string) string {
	t.Helper()
	resp, err := e.client.Get(e.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// TestReload: a new configuration applies the keys that can change live (log level, TLS
// certificate files, read again even when unchanged), lists the others as needing a restart, and
// an invalid one changes nothing.
func TestReload(t *testing.T) {
	certA, keyA := tlsgen.Paths(t.TempDir() + "/a")
	certB, keyB := tlsgen.Paths(t.TempDir() + "/b")
	for _, dir := range []string{certA, certB} {
		_, _, err := tlsgen.Ensure(strings.TrimSuffix(dir, "/tls/cert.pem"), []string{"127.0.0.1"})
		require.NoError(t, err)
	}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.Discard})
	var cfg gateway.Config
	e := startGateway(t, func(c *gateway.Config) {
		c.Insecure, c.TLSCert, c.TLSKey, c.Logger = false, certA, keyA, logger
		cfg = *c
	})
	first := serverCert(t, e.base)

	tests := []struct {
		name        string
		mutate      func(c *gateway.Config)
		wantErr     bool
		applied     []string
		needRestart []string
		wantCert    string // "a" or "b"
		wantLevel   hclog.Level
	}{
		{"nothing changed re-reads the certificate", func(*gateway.Config) {}, false, nil, nil, "a", hclog.Warn},
		{"log level", func(c *gateway.Config) { c.LogLevel = "debug" }, false, []string{"log_level"}, nil, "a", hclog.Debug},
		{"certificate swapped", func(c *gateway.Config) { c.TLSCert, c.TLSKey = certB, keyB }, false, []string{"tls_cert", "tls_key"}, nil, "b", hclog.Debug},
		{"restart-only keys are reported, not applied", func(c *gateway.Config) { c.PingInterval = gateway.Duration(5 * time.Second); c.SingleSocket = true },
			false, nil, []string{"single_socket", "ping_interval"}, "b", hclog.Debug},
		{"invalid log level changes nothing", func(c *gateway.Config) { c.LogLevel = "loud"; c.TLSCert = certA }, true, nil, nil, "b", hclog.Debug},
		{"unreadable certificate changes nothing", func(c *gateway.Config) { c.LogLevel = "error"; c.TLSCert = "/nonexistent.pem" }, true, nil, nil, "b", hclog.Debug},
	}
	next := cfg
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			try := next
			tt.mutate(&try)
			rep, err := e.gw.Reload(try)
			if tt.wantErr {
				require.ErrorIs(t, err, gateway.ErrInvalidConfig)
				require.Equal(t, "0", strings.Fields(metricLine(t, e, "teragate_config_last_reload_successful"))[1])
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.applied, rep.Applied, rep.String())
				require.Equal(t, tt.needRestart, rep.NeedRestart, rep.String())
				require.True(t, rep.CertificateReloaded)
				require.Equal(t, "1", strings.Fields(metricLine(t, e, "teragate_config_last_reload_successful"))[1])
				next = try
			}
			got := serverCert(t, e.base)
			if tt.wantCert == "a" {
				require.Equal(t, first, got)
			} else {
				require.NotEqual(t, first, got)
			}
			require.Equal(t, tt.wantLevel, logger.GetLevel())
		})
	}
}
