package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/rpc"
)

func echo(ctx context.Context, args rpc.Args) (any, error) { return args.Decode(), nil }

func TestRouterRegisterAndCall(t *testing.T) {
	r := rpc.NewRouter(rpc.RouterConfig{})
	require.NoError(t, r.Register("M", rpc.Methods{"echo": rpc.HandlerFunc(echo)}))
	require.NoError(t, r.Register("M", rpc.Methods{"fail": rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) {
		return nil, errors.New("boom")
	})}))
	require.Equal(t, []string{"M"}, r.Modules())
	require.Equal(t, []string{"echo", "fail"}, r.Methods("M"))

	args, err := rpc.ArgsOf("a", 1, 1.5, true)
	require.NoError(t, err)
	v, err := r.Call(context.Background(), "M", "echo", args)
	require.NoError(t, err)
	require.Equal(t, []any{"a", int64(1), 1.5, true}, v)

	tests := []struct {
		name           string
		module, method string
		wantErr        error
		wantStatus     string
	}{
		{"unknown module", "N", "echo", rpc.ErrUnknownModule, rpc.StatusUnknownModule},
		{"unknown method", "M", "nope", rpc.ErrUnknownMethod, rpc.StatusUnknownMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Call(context.Background(), tt.module, tt.method, nil)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, tt.wantStatus, rpc.StatusOf(err))
		})
	}
	_, err = r.Call(context.Background(), "M", "fail", nil)
	require.EqualError(t, err, "boom")
	require.Equal(t, rpc.StatusError, rpc.StatusOf(err))
}

func TestRouterRegistrationErrors(t *testing.T) {
	r := rpc.NewRouter(rpc.RouterConfig{})
	require.NoError(t, r.Register("M", rpc.Methods{"a": rpc.HandlerFunc(echo)}))
	tests := []struct {
		name    string
		module  string
		methods rpc.Methods
		wantErr error
	}{
		{"duplicate", "M", rpc.Methods{"a": rpc.HandlerFunc(echo)}, rpc.ErrDuplicate},
		{"empty module", "", rpc.Methods{"b": rpc.HandlerFunc(echo)}, rpc.ErrBadName},
		{"glob in module", "M*", rpc.Methods{"b": rpc.HandlerFunc(echo)}, rpc.ErrBadName},
		{"space in method", "M", rpc.Methods{"b c": rpc.HandlerFunc(echo)}, rpc.ErrBadName},
		{"nil handler", "M", rpc.Methods{"b": nil}, rpc.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, r.Register(tt.module, tt.methods), tt.wantErr)
			require.Equal(t, []string{"a"}, r.Methods("M"), "a failed registration changes nothing")
		})
	}
}

func TestRouterUnregisterReplaceWatch(t *testing.T) {
	r := rpc.NewRouter(rpc.RouterConfig{})
	var changes int
	stop := r.Watch(func() { changes++ })
	require.NoError(t, r.Register("M", rpc.Methods{"a": rpc.HandlerFunc(echo), "b": rpc.HandlerFunc(echo)}))
	r.Unregister("M", "a")
	require.Equal(t, []string{"b"}, r.Methods("M"))
	require.NoError(t, r.Replace("M", rpc.Methods{"c": rpc.HandlerFunc(echo)}))
	require.Equal(t, []string{"c"}, r.Methods("M"))
	r.Unregister("M")
	require.Empty(t, r.Modules())
	_, err := r.Call(context.Background(), "M", "c", nil)
	require.ErrorIs(t, err, rpc.ErrUnknownModule)
	require.Equal(t, 4, changes)
	stop()
	require.NoError(t, r.Register("X", rpc.Methods{"a": rpc.HandlerFunc(echo)}))
	require.Equal(t, 4, changes)
}

func TestRouterRecoversPanics(t *testing.T) {
	var got []string
	r := rpc.NewRouter(rpc.RouterConfig{Observe: func(module, method, status string, _ time.Duration) {
		got = append(got, module+"."+method+":"+status)
	}})
	require.NoError(t, r.Register("M", rpc.Methods{"p": rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { panic("oops") })}))
	_, err := r.Call(context.Background(), "M", "p", nil)
	require.ErrorIs(t, err, rpc.ErrHandlerPanic)
	_, _ = r.Call(context.Background(), "M", "zzz", nil)
	_, _ = r.Call(context.Background(), "Q", "zzz", nil)
	require.Equal(t, []string{"M.p:error", "M._unknown:unknown_method", "_unknown._unknown:unknown_module"}, got,
		"unknown names never become label values")
}

// TestRouterHammer swaps the method table while P goroutines call: every call sees either the
// old or the new table, never an error for a method that exists in both.
func TestRouterHammer(t *testing.T) {
	r := rpc.NewRouter(rpc.RouterConfig{})
	require.NoError(t, r.Register("M", rpc.Methods{"stable": rpc.HandlerFunc(echo)}))
	iters := 2000
	if testing.Short() {
		iters = 200
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := r.Call(ctx, "M", "stable", nil); err != nil {
					t.Error(err)
					return
				}
				_, _ = r.Call(ctx, "M", "flappy", nil)
			}
		}()
	}
	for i := 0; i < iters; i++ {
		name := fmt.Sprintf("m%d", i%7)
		_ = r.Register("M", rpc.Methods{"flappy": rpc.HandlerFunc(echo)})
		_ = r.Register("P"+name, rpc.Methods{"x": rpc.HandlerFunc(echo)})
		r.Unregister("M", "flappy")
		r.Unregister("P" + name)
	}
	cancel()
	wg.Wait()
}

func TestArgs(t *testing.T) {
	args, err := rpc.ArgsOf("u", 3, 2.5, true)
	require.NoError(t, err)
	s, err := args.String(0)
	require.NoError(t, err)
	require.Equal(t, "u", s)
	n, err := args.Number(1)
	require.NoError(t, err)
	require.Equal(t, rpc.Int(3), n)
	n, err = args.Number(2)
	require.NoError(t, err)
	require.Equal(t, rpc.Float(2.5), n)
	_, err = args.String(1)
	require.ErrorIs(t, err, rpc.ErrBadArgs)
	require.ErrorContains(t, err, "argument 2 is an integer, want a string")
	_, err = args.Number(3)
	require.ErrorIs(t, err, rpc.ErrBadArgs)
	_, err = args.String(9)
	require.ErrorIs(t, err, rpc.ErrBadArgs)
	_, err = rpc.ArgsOf(struct{}{})
	require.ErrorIs(t, err, rpc.ErrBadArgs)

	require.True(t, rpc.Int(1).Less(rpc.Float(1.5)))
	require.False(t, rpc.Float(2).Less(rpc.Int(2)))
	require.True(t, rpc.Int(1).Less(rpc.Int(2)))
}

func BenchmarkRouterCall(b *testing.B) {
	r := rpc.NewRouter(rpc.RouterConfig{Observe: func(string, string, string, time.Duration) {}})
	list := []string{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"}
	require.NoError(b, r.Register("TeraServer.UserManagerModule", rpc.Methods{
		"online_users": rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { return list, nil }),
	}))
	ctx := context.Background()
	b.Run("dispatch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Call(ctx, "TeraServer.UserManagerModule", "online_users", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dispatch+reply", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			v, err := r.Call(ctx, "TeraServer.UserManagerModule", "online_users", nil)
			buf, _ = rpc.AppendReply(buf[:0], "online_users", 1, "module.TeraServer.UserManagerModule.rpc", v, err)
		}
	})
}

// TestRouterReserved: a reserved module cannot be replaced or removed; others can.
func TestRouterReserved(t *testing.T) {
	r := rpc.NewRouter(rpc.RouterConfig{})
	h := rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { return "builtin", nil })
	require.NoError(t, r.Register("Core", rpc.Methods{"a": h}))
	r.Reserve("Core")
	require.True(t, r.Reserved("Core"))
	require.False(t, r.Reserved("Plugin"))
	err := r.Replace("Core", rpc.Methods{"a": rpc.HandlerFunc(func(context.Context, rpc.Args) (any, error) { return "pwned", nil })})
	require.ErrorIs(t, err, rpc.ErrReserved)
	r.Unregister("Core")
	v, err := r.Call(context.Background(), "Core", "a", nil)
	require.NoError(t, err)
	require.Equal(t, "builtin", v)
	require.NoError(t, r.Replace("Plugin", rpc.Methods{"b": h}))
}
