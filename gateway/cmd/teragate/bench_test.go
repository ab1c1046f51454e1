package main

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/loadtest"
)

func TestRunBenchFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "help", args: []string{"-h"}, want: 0},
		{name: "unknown flag", args: []string{"--nope"}, want: 2},
		{name: "bad target", args: []string{"--target", "nginx"}, want: 2},
		{name: "bad bare mode", args: []string{"--target", "bare", "--bare-mode", "fast"}, want: 2},
		{name: "bad types", args: []string{"--types", "robot"}, want: 2},
		{name: "url without identities", args: []string{"--url", "http://127.0.0.1:1"}, want: 2},
		{name: "extra argument", args: []string{"now"}, want: 2},
		{name: "missing identities file", args: []string{"--url", "http://127.0.0.1:1", "--identities", filepath.Join(t.TempDir(), "none.yaml")}, want: 1},
		{name: "bare server help", args: nil, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want < 0 {
				require.Equal(t, 0, runBareServer([]string{"-h"}))
				require.Equal(t, 2, runBareServer([]string{"--mode", "fast"}))
				return
			}
			require.Equal(t, tt.want, runBench(tt.args))
		})
	}
}

func TestRunBenchAgainstBareURL(t *testing.T) {
	bs, err := loadtest.NewBareServer(loadtest.BareConfig{Mode: loadtest.BareBatched})
	require.NoError(t, err)
	srv := httptest.NewServer(bs)
	t.Cleanup(func() {
		bs.Close()
		srv.Close()
	})
	code := runBench([]string{
		"--target", "bare", "--bare-mode", "batched", "--url", srv.URL, "--clients", "20",
		"--rate", "100", "--duration", "300ms", "--warmup", "0s", "--settle", "50ms", "--json",
	})
	require.Equal(t, 0, code)
	require.Equal(t, int64(30*20), bs.Stats().Written)
}
