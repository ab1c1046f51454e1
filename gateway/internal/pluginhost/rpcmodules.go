package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/scope"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	"github.com/teragate/teragate/sdk/abi"
)

// rpcModules keeps the RPC router in step with the RPC plugins ([Config.Router]): each plugin's
// module serves exactly the methods of its serving version, and goes with its file.
type rpcModules struct {
	r      *Registry
	router *rpc.Router
	mu     sync.Mutex
	byID   map[string]string // plugin id → registered module
}

// changed is the registry's OnChange hook for RPC plugins.
func (m *rpcModules) changed(id string, info *Info) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.byID[id]
	mod := ""
	if info != nil {
		mod = info.RPCModule
	}
	if old != "" && old != mod {
		m.router.Unregister(old)
		delete(m.byID, id)
	}
	if mod == "" {
		return
	}
	methods := rpc.Methods{}
	for _, name := range info.RPCMethods {
		methods[name] = m.method(id, name)
	}
	if err := m.router.Replace(mod, methods); err != nil {
		m.r.log.Error("could not register a plugin's RPC module", "plugin", id, "module", mod, "error", err)
		return
	}
	m.byID[id] = mod
}

// method serves one RPC plugin method: the arguments cross as a JSON array, the return value as
// JSON text. An authenticated caller that is not an admin is passed to the plugin and bounds what
// the host imports do for the call ([WithScope]).
func (m *rpcModules) method(id, method string) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, args rpc.Args) (any, error) {
		aj, err := json.Marshal(args.Decode())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", rpc.ErrBadArgs, err)
		}
		call := &pluginv1.RPCCall{ArgsJson: aj}
		if c, ok := rpc.CallerFrom(ctx); ok {
			call.Caller = &pluginv1.Subject{Kind: c.Kind.String(), Uuid: c.UUID}
			call.CallerAdmin = c.Admin
			if !c.Admin {
				ctx = WithScope(ctx, scope.Of(c.Access))
			}
		}
		out, err := m.r.CallRPC(ctx, id, method, call)
		if errors.Is(err, ErrForbidden) {
			// The reason the plugin gave, or the host's.
			msg := "a host call named an entity outside the caller's access"
			if e := err.Error(); strings.Contains(e, abi.ForbiddenPrefix) {
				msg = e[strings.LastIndex(e, abi.ForbiddenPrefix)+len(abi.ForbiddenPrefix):]
			}
			return nil, fmt.Errorf("%w: %s", rpc.ErrForbidden, msg)
		}
		if err != nil {
			return nil, err
		}
		py, err := rpc.PythonJSON(out)
		if err != nil {
			return nil, fmt.Errorf("plugin %s returned invalid JSON: %w", id, err)
		}
		return rpc.RawJSON(py), nil
	})
}

// routerJSON serves the rpc_call import from the router (JSON in, JSON out). The call keeps the
// context's caller, so methods filter their answers as they would for that caller.
type routerJSON struct{ r *rpc.Router }

func (a routerJSON) CallJSON(ctx context.Context, module, method string, argsJSON []byte) ([]byte, error) {
	var raw []json.RawMessage
	if len(argsJSON) > 0 {
		if err := json.Unmarshal(argsJSON, &raw); err != nil {
			return nil, fmt.Errorf("%w: args must be a JSON array: %v", rpc.ErrBadArgs, err)
		}
	}
	args := make(rpc.Args, 0, len(raw))
	for _, r := range raw {
		v, err := rpc.JSONArg(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", rpc.ErrBadArgs, err)
		}
		args = append(args, v)
	}
	v, err := a.r.Call(ctx, module, method, args)
	if err != nil {
		return nil, err
	}
	return rpc.AppendJSON(nil, v)
}
