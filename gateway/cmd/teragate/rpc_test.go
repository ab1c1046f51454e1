package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/gatewaytest"
)

func TestParseArg(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"1", json.Number("1")},
		{"1.5", json.Number("1.5")},
		{"-2e3", json.Number("-2e3")},
		{"true", true},
		{"false", false},
		{`"x y"`, "x y"},
		{`"unterminated`, `"unterminated`},
		{"abc", "abc"},
		{"00000000-0000-4000-8000-000000000201", "00000000-0000-4000-8000-000000000201"},
		{`{"battery": 80}`, `{"battery": 80}`},
		{"NaN", "NaN"},
		{"0x10", "0x10"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, parseArg(tt.in))
		})
	}
}

func TestRPCCommand(t *testing.T) {
	gw := gatewaytest.Start(t, nil)
	const token = gatewaytest.ServiceToken // demo admin service
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"online_users", []string{"--url", gw.URL(), "--token", token, "TeraServer.UserManagerModule", "online_users"}, 0,
			`{"method": "online_users", "id": 0, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": []}` + "\n"},
		{"return value only", []string{"--url", gw.URL(), "--token", token, "--return-value", "TeraServer.UserManagerModule", "status_devices"}, 0, "{}\n"},
		{"args parsed", []string{"--url", gw.URL(), "--token", token, "TeraServer.UserManagerModule", "update_device_status", "00000000-0000-4000-8000-000000000201", `{"a": 1}`, "1.0"}, 0,
			`{"method": "update_device_status", "id": 0, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "OK", "return_value": null}` + "\n"},
		{"error reply", []string{"--url", gw.URL(), "--token", token, "TeraServer.UserManagerModule", "update_device_status", "1", "2", "3"}, 1,
			`{"method": "update_device_status", "id": 0, "pattern": "module.TeraServer.UserManagerModule.rpc", "status": "Error", "return_value": null, "reason": "rpc: bad arguments: argument 1 is an integer, want a string (update_device_status(uuid, status, timestamp))"}` + "\n"},
		{"usage", []string{"--token", token, "OnlyModule"}, 2, ""},
		{"bad token", []string{"--url", gw.URL(), "--token", "nope", "TeraServer.UserManagerModule", "online_users"}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := rpcMain(context.Background(), tt.args, &out, &errOut)
			require.Equal(t, tt.wantCode, code, "stderr: %s", errOut.String())
			require.Equal(t, tt.wantOut, out.String())
		})
	}
}
