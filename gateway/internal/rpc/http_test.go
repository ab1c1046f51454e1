package rpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
)

func TestDecodeHTTPRequest(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantMethod string
		wantArgs   []any
		wantErr    error
	}{
		{"no args", `{"method": "online_users"}`, "online_users", []any{}, nil},
		{"scalars", `{"method": "m", "args": [true, 12, -3, 1.5, 1e3, "s", 18446744073709551615]}`, "m",
			[]any{true, int64(12), int64(-3), 1.5, 1000.0, "s", uint64(18446744073709551615)}, nil},
		{"null arg", `{"method": "m", "args": [null]}`, "m", nil, rpc.ErrBadArgs},
		{"object arg", `{"method": "m", "args": [{"a": 1}]}`, "m", nil, rpc.ErrBadArgs},
		{"array arg", `{"method": "m", "args": [[1]]}`, "m", nil, rpc.ErrBadArgs},
		{"no method", `{"args": []}`, "", nil, rpc.ErrMalformed},
		{"not json", `method=x`, "", nil, rpc.ErrMalformed},
		{"args not array", `{"method": "m", "args": 3}`, "", nil, rpc.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, _, args, err := rpc.DecodeHTTPRequest([]byte(tt.body))
			require.Equal(t, tt.wantMethod, method)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantArgs, args.Decode())
		})
	}
}

func TestHTTPHandler(t *testing.T) {
	r := rpc.NewRouter(rpc.RouterConfig{})
	require.NoError(t, r.Register("M", rpc.Methods{
		"who": rpc.HandlerFunc(func(ctx context.Context, _ rpc.Args) (any, error) {
			c, ok := rpc.CallerFrom(ctx)
			require.True(t, ok)
			return c.UUID, nil
		}),
		"need_string": rpc.HandlerFunc(func(_ context.Context, a rpc.Args) (any, error) { return a.String(0) }),
		"forbidden":   rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { return nil, rpc.ErrForbidden }),
		"broken":      rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { return nil, errors.New("broken") }),
	}))
	h := rpc.HTTPHandler(rpc.HTTPConfig{Router: r, Authenticate: func(req *http.Request) (rpc.Caller, error) {
		if req.Header.Get("Authorization") != "OpenTera good" {
			return rpc.Caller{}, errors.New("bad token")
		}
		return rpc.Caller{Kind: directory.KindService, UUID: "svc"}, nil
	}})
	mux := http.NewServeMux()
	mux.Handle("POST /api/rpc/{module}", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name, module, token, body string
		wantCode                  int
		wantBody                  string
	}{
		{"ok", "M", "good", `{"method": "who", "id": 5}`, 200, `{"method": "who", "id": 5, "pattern": "module.M.rpc", "status": "OK", "return_value": "svc"}`},
		{"no token", "M", "", `{"method": "who"}`, 401, `"Unauthorized"`},
		{"bad token", "M", "bad", `{"method": "who"}`, 401, `"Unauthorized"`},
		{"unknown module", "Z", "good", `{"method": "who"}`, 404, `{"method": "who", "id": 0, "pattern": "module.Z.rpc", "status": "Error", "return_value": null, "reason": "rpc: unknown module: \"Z\""}`},
		{"unknown method", "M", "good", `{"method": "nope"}`, 404, `{"method": "nope", "id": 0, "pattern": "module.M.rpc", "status": "Error", "return_value": null, "reason": "rpc: unknown method: \"nope\""}`},
		{"wrong arg type", "M", "good", `{"method": "need_string", "args": [1.5]}`, 400, `{"method": "need_string", "id": 0, "pattern": "module.M.rpc", "status": "Error", "return_value": null, "reason": "rpc: bad arguments: argument 1 is a float, want a string"}`},
		{"unsupported arg type", "M", "good", `{"method": "need_string", "args": [null]}`, 400, `{"method": "need_string", "id": 0, "pattern": "module.M.rpc", "status": "Error", "return_value": null, "reason": "rpc: bad arguments: argument 1: null is not a valid argument (use a boolean, number or string)"}`},
		{"malformed body", "M", "good", `{`, 400, ``},
		{"forbidden", "M", "good", `{"method": "forbidden"}`, 403, `{"method": "forbidden", "id": 0, "pattern": "module.M.rpc", "status": "Error", "return_value": null, "reason": "rpc: forbidden"}`},
		{"handler error", "M", "good", `{"method": "broken"}`, 500, `{"method": "broken", "id": 0, "pattern": "module.M.rpc", "status": "Error", "return_value": null, "reason": "broken"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/rpc/"+tt.module, strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.token != "" {
				req.Header.Set("Authorization", "OpenTera "+tt.token)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.wantCode, resp.StatusCode, "%s", b)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			if tt.wantBody != "" {
				require.Equal(t, tt.wantBody+"\n", string(b))
			} else {
				require.Contains(t, string(b), `"status": "Error"`)
			}
		})
	}
}

func TestCallerVisibility(t *testing.T) {
	require.Nil(t, rpc.Visibility(context.Background()), "no caller: everything visible")
	require.Nil(t, rpc.Visibility(rpc.WithCaller(context.Background(), rpc.Caller{Admin: true})))
	v := rpc.Visibility(rpc.WithCaller(context.Background(), rpc.Caller{Kind: directory.KindUser, UUID: "x"}))
	require.NotNil(t, v)
	require.False(t, v(directory.KindUser, "y"), "the zero Access sees nothing")
}
