//go:build !wasip1

package pdk

import "github.com/teragate/teragate/sdk/pdk/internal/hook"

// Natively, host functions go to the harness installed in hook.Current (sdk/pdk/pdktest).

func hostLog(level int32, msg []byte) {
	if h := hook.Current; h != nil {
		h.Log(level, msg)
	}
}

func hostQuery(fn func(hook.Host, []byte) ([]byte, int32), q []byte) ([]byte, error) {
	h := hook.Current
	if h == nil {
		return nil, ErrNoHost
	}
	res, code := fn(h, q)
	if code < 0 {
		return nil, hostErr(code)
	}
	return res, nil
}

func hostDirectory(q []byte) ([]byte, error) { return hostQuery(hook.Host.Directory, q) }
func hostPresence(q []byte) ([]byte, error)  { return hostQuery(hook.Host.Presence, q) }
func hostRPCCall(q []byte) ([]byte, error)   { return hostQuery(hook.Host.RPCCall, q) }

func hostPublish(req []byte) int32 {
	h := hook.Current
	if h == nil {
		return -3
	}
	return h.Publish(req)
}
