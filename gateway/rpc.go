package gateway

import (
	"context"
	"encoding/json"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// UserManagerModule is the module name of the built-in presence methods (OpenTera's user
// manager): online_users, busy_users, status_users, the same for participants and devices, and
// update_device_status.
const UserManagerModule = presence.Module

// Errors of [Gateway.Call], matched with errors.Is.
var (
	// ErrUnknownModule is returned for a call to a module that is not registered.
	ErrUnknownModule = rpc.ErrUnknownModule
	// ErrUnknownMethod is returned for a call to a method the module does not have.
	ErrUnknownMethod = rpc.ErrUnknownMethod
	// ErrBadArgs is returned when the arguments have the wrong number or types.
	ErrBadArgs = rpc.ErrBadArgs
)

// rpcParts are the RPC router and its transports.
type rpcParts struct {
	router  *rpc.Router
	bus     *rpc.BusServer
	metrics *metrics.RPC
}

// initRPC builds the router, registers the user manager's methods and mounts the HTTP endpoints
// POST /api/rpc/{module} and POST /api/device/status.
func (g *Gateway) initRPC() error {
	m := metrics.NewRPC(g.metrics.Registry())
	p := &rpcParts{metrics: m, router: rpc.NewRouter(rpc.RouterConfig{Observe: m.Observe})}
	if err := p.router.Register(presence.Module, g.pres.Methods()); err != nil {
		return err
	}
	p.router.Reserve(presence.Module) // plugins may not replace or remove the user manager
	p.bus = rpc.NewBusServer(rpc.BusConfig{
		Bus: g.bus, Router: p.router, Logger: g.log.Named("rpc"),
		OnMalformed: func() { m.Malformed("bus") },
		Lease:       g.rpcLease(),
		// The user manager's requests come through the presence subscription, in order with
		// the presence messages published before them.
		External: []string{presence.Module},
	})
	g.pres.Also(topic.RPC(presence.Module), p.bus.Handler(presence.Module))
	g.api.Handle("POST /api/rpc/{module}", "rpc", rpc.HTTPHandler(rpc.HTTPConfig{
		Router: p.router, Authenticate: g.api.RPCCaller, Logger: g.log.Named("rpc"), MaxBodyBytes: g.cfg.MaxBodyBytes,
	}))
	g.api.Handle("POST /api/device/status", "device_status", presence.DeviceStatusHandler(presence.DeviceStatusConfig{
		Router: p.router, Authenticate: g.api.RPCCaller,
	}))
	g.rpc = p
	return nil
}

func (g *Gateway) startRPC(ctx context.Context) error { return g.rpc.bus.Start(ctx) }

func (g *Gateway) stopRPC(ctx context.Context) error {
	err := g.rpc.bus.Stop(ctx) // releases the leases: another node answers at once
	if g.lease != nil {
		g.lease.Close()
	}
	return err
}

// Call runs an RPC method in process, as a trusted caller that sees everything (like the bus),
// and returns its return value as JSON text in OpenTera's style (for example
// ["uuid-1", "uuid-2"] for online_users). Arguments are Go values: bool, integers, floats,
// string or []byte. Errors match [ErrUnknownModule], [ErrUnknownMethod] or [ErrBadArgs] when
// they apply.
//
//	raw, err := gw.Call(ctx, gateway.UserManagerModule, "status_devices")
func (g *Gateway) Call(ctx context.Context, module, method string, args ...any) (json.RawMessage, error) {
	a, err := rpc.ArgsOf(args...)
	if err != nil {
		return nil, err
	}
	v, err := g.rpc.router.Call(ctx, module, method, a)
	if err != nil {
		return nil, err
	}
	return rpc.AppendJSON(nil, v)
}

// Online reports whether the user, participant or device ("user", "participant", "device") with
// the given uuid has at least one open websocket.
func (g *Gateway) Online(kind, uuid string) bool {
	k, ok := directory.ParseKind(kind)
	return ok && g.pres.Online(k, uuid)
}
