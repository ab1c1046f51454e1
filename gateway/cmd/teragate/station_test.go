package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStationMainRefusesBadConfig: every invalid flag or config file is a clear message and exit
// code 2, before the agent is started.
func TestStationMainRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	unknownKey := write("unknown.yaml", "url: https://x\ntokn: abc\n")
	badTick := write("tick.yaml", "token: abc\ntick: soon\n")
	notPEM := write("ca.pem", "not a certificate")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown config key", []string{"--config", unknownKey}, "field tokn not found"},
		{"missing config file", []string{"--config", filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"bad duration in file", []string{"--config", badTick}, "config tick"},
		{"program without path", []string{"--token", "t", "--program", "encode"}, `--program "encode": want name=path`},
		{"no certificate", []string{"--token", "t", "--cacert", notPEM}, "no certificate in"},
		{"no token", []string{"--token", ""}, "a token is required"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TERAGATE_TOKEN", "")
			var stderr bytes.Buffer
			code := stationMain(context.Background(), tt.args, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), tt.want)
		})
	}
}

// TestStationConfigMerge: flags win over the file, the file fills what no flag set, and the
// programs of both are kept.
func TestStationConfigMerge(t *testing.T) {
	file := stationFile{Programs: map[string]string{"a": "/bin/a", "b": "/bin/b"}, Tick: "5s", CallTimeout: "3s"}
	cfg := agentConfig{}
	cfg.Programs = map[string]string{}
	require.NoError(t, cfg.mergeStationFile(file, listFlag{"b=/usr/bin/b", "c=/bin/c"}, map[string]bool{"call-timeout": true}))
	require.Equal(t, map[string]string{"a": "/bin/a", "b": "/usr/bin/b", "c": "/bin/c"}, cfg.Programs)
	require.Equal(t, "5s", cfg.TickInterval.String())
	require.Zero(t, cfg.CallTimeout, "--call-timeout was given: the file's value must not replace it")
}
