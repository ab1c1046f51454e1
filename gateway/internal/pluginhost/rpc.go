package pluginhost

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

func exportRPC(in *instance) api.Function { return in.rpc }

// CallRPC calls method of RPC plugin id with call (whose method field it sets) and returns the
// JSON return value. A guest error, a trap or a timeout is an error (RPC transports answer it
// with an Error reply).
func (r *Registry) CallRPC(ctx context.Context, id, method string, call *pluginv1.RPCCall) ([]byte, error) {
	r.mu.Lock()
	p := r.plugins[id]
	r.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("%s: %w", id, ErrNotLoaded)
	}
	v := p.acquire()
	if v == nil {
		return nil, fmt.Errorf("%s: %w", id, ErrNotLoaded)
	}
	defer v.release()
	if !v.hasRPC {
		return nil, fmt.Errorf("%s: %w: not an RPC plugin", id, ErrNotLoaded)
	}
	if st, ok := ctx.Value(scopeKey{}).(*scopeState); ok {
		ctx = context.WithValue(ctx, scopeKey{}, &scopeState{sc: st.sc}) // this call's refusals only
	}
	c := proto.Clone(call).(*pluginv1.RPCCall)
	c.Method = method
	req, err := proto.Marshal(c)
	if err != nil {
		return nil, err
	}
	var ret []byte
	var answer error // the method's own error reply
	err = v.do(ctx, exportRPC, func(_ *instance, call func([]byte) ([]byte, error)) error {
		res, err := call(req)
		if errors.Is(err, ErrGuest) {
			// An error the method returned is an answer to its caller (bad arguments, a refusal),
			// not a fault of the plugin: the instance is sound and nothing counts toward
			// quarantine, so no caller can quarantine a plugin by sending it bad requests.
			answer = err
			return nil
		}
		if err != nil {
			return err
		}
		var rr pluginv1.RPCResult
		if err := proto.Unmarshal(res, &rr); err != nil {
			return fmt.Errorf("%w: bad RPCResult: %v", ErrProtocol, err)
		}
		ret = rr.GetReturnJson()
		return nil
	})
	if err == nil && answer != nil {
		err = fmt.Errorf("%s: %w", id, answer)
	}
	if err = forbidden(ctx, err); err != nil {
		return nil, err
	}
	return ret, nil
}

// callRaw calls an export with raw request bytes and returns a copy of the raw result (tests).
func (r *Registry) callRaw(ctx context.Context, id string, export func(*instance) api.Function, req []byte) ([]byte, error) {
	r.mu.Lock()
	p := r.plugins[id]
	r.mu.Unlock()
	if p == nil {
		return nil, ErrNotLoaded
	}
	v := p.acquire()
	if v == nil {
		return nil, ErrNotLoaded
	}
	defer v.release()
	var out []byte
	err := v.do(ctx, export, func(_ *instance, call func([]byte) ([]byte, error)) error {
		res, err := call(req)
		out = append([]byte(nil), res...)
		return err
	})
	return out, err
}
