package presence

import (
	"context"
	"fmt"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
)

// Module is the user manager's module name: its RPC channel is module.TeraServer.UserManagerModule.rpc.
const Module = "TeraServer.UserManagerModule"

// The user manager's RPC methods (docs/opentera.md).
const (
	MethodOnlineUsers        = "online_users"
	MethodBusyUsers          = "busy_users"
	MethodStatusUsers        = "status_users"
	MethodOnlineParticipants = "online_participants"
	MethodBusyParticipants   = "busy_participants"
	MethodStatusParticipants = "status_participants"
	MethodOnlineDevices      = "online_devices"
	MethodBusyDevices        = "busy_devices"
	MethodStatusDevices      = "status_devices"
	MethodUpdateDeviceStatus = "update_device_status"
)

// Methods returns the ten RPC methods of the user manager, to register under [Module]:
//
//	online_users, online_participants, online_devices  → ["uuid", ...] in connection order
//	busy_users, busy_participants, busy_devices        → {"uuid": "session uuid", ...} in join order
//	status_users, status_participants                  → {"uuid": {"online": bool, "busy": bool}, ...}
//	status_devices                                     → {"uuid": {"online": bool, "busy": bool, "status": null | {"status": "<json>", "timestamp": n}}, ...}
//	update_device_status(uuid str, status str, timestamp int|float) → {"uuid", "status", "timestamp"} or null when offline
//
// status_* cover the union of online and busy entities: online ones in connection order, then the
// offline busy ones in join order. Extra arguments to the zero-argument methods are ignored.
//
// Calls made over HTTP by a non-admin caller ([rpc.CallerFrom]) only see the uuids the caller may
// access (array elements and object keys are filtered); update_device_status then needs the
// device itself (or an admin). Bus and in-process calls see everything.
func (r *Registry) Methods() rpc.Methods {
	return rpc.Methods{
		MethodOnlineUsers:        r.onlineMethod(directory.KindUser),
		MethodOnlineParticipants: r.onlineMethod(directory.KindParticipant),
		MethodOnlineDevices:      r.onlineMethod(directory.KindDevice),
		MethodBusyUsers:          r.busyMethod(directory.KindUser),
		MethodBusyParticipants:   r.busyMethod(directory.KindParticipant),
		MethodBusyDevices:        r.busyMethod(directory.KindDevice),
		MethodStatusUsers:        r.statusMethod(directory.KindUser),
		MethodStatusParticipants: r.statusMethod(directory.KindParticipant),
		MethodStatusDevices:      r.statusMethod(directory.KindDevice),
		MethodUpdateDeviceStatus: rpc.HandlerFunc(r.updateDeviceStatus),
	}
}

func (r *Registry) onlineMethod(kind directory.Kind) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, _ rpc.Args) (any, error) {
		return r.onlineList(kind, rpc.Visibility(ctx)), nil
	})
}

func (r *Registry) busyMethod(kind directory.Kind) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, _ rpc.Args) (any, error) {
		return r.BusyList(kind, rpc.Visibility(ctx)), nil
	})
}

func (r *Registry) statusMethod(kind directory.Kind) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, _ rpc.Args) (any, error) {
		return r.AppendStatusJSON(nil, kind, rpc.Visibility(ctx)), nil
	})
}

// AppendStatusJSON appends the status_* object of kind (see [Registry.StatusList]) as JSON. It
// encodes straight from the registry under its read lock: over 100k entities that is about twice
// as fast as building a [StatusList] first, and keeps the garbage to one byte slice.
func (r *Registry) AppendStatusJSON(b []byte, kind directory.Kind, visible func(directory.Kind, string) bool) rpc.RawJSON {
	st := r.state(kind)
	if st == nil {
		return append(b, "{}"...)
	}
	devices := kind == directory.KindDevice
	r.mu.RLock()
	defer r.mu.RUnlock()
	if need := (st.online.len() + st.busy.len()) * (36 + 48); cap(b)-len(b) < need {
		nb := make([]byte, len(b), len(b)+need+2)
		copy(nb, b)
		b = nb
	}
	b = append(b, '{')
	first := true
	for n := st.online.head; n != nil; n = n.next {
		if visible != nil && !visible(kind, n.uuid) {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = rpc.AppendString(b, n.uuid)
		if n.val.busy {
			b = append(b, `: {"online": true, "busy": true`...)
		} else {
			b = append(b, `: {"online": true, "busy": false`...)
		}
		if devices {
			if n.val.hasStatus {
				b = append(b, `, "status": `...)
				b = n.val.status.appendJSON(b)
			} else {
				b = append(b, `, "status": null`...)
			}
		}
		b = append(b, '}')
	}
	for n := st.busy.head; n != nil; n = n.next {
		if n.val.online || (visible != nil && !visible(kind, n.uuid)) {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = rpc.AppendString(b, n.uuid)
		if devices {
			b = append(b, `: {"online": false, "busy": true, "status": null}`...)
		} else {
			b = append(b, `: {"online": false, "busy": true}`...)
		}
	}
	return append(b, '}')
}

func (r *Registry) updateDeviceStatus(ctx context.Context, args rpc.Args) (any, error) {
	uuid, err := args.String(0)
	if err != nil {
		return nil, fmt.Errorf("%w (update_device_status(uuid, status, timestamp))", err)
	}
	status, err := args.String(1)
	if err != nil {
		return nil, fmt.Errorf("%w (update_device_status(uuid, status, timestamp))", err)
	}
	ts, err := args.Number(2)
	if err != nil {
		return nil, fmt.Errorf("%w (update_device_status(uuid, status, timestamp))", err)
	}
	if c, ok := rpc.CallerFrom(ctx); ok && !c.Admin && (c.Kind != directory.KindDevice || c.UUID != uuid) {
		return nil, fmt.Errorf("%w: only the device itself or an admin may update its status", rpc.ErrForbidden)
	}
	ds, res := r.UpdateDeviceStatus(ctx, uuid, status, ts)
	if res == StatusOffline {
		return nil, nil
	}
	return rpc.Object{{Key: "uuid", Value: uuid}, {Key: "status", Value: ds.Status}, {Key: "timestamp", Value: ds.Timestamp}}, nil
}

// BusyEntry is one entity of [BusyList]: its uuid and the session it is busy in.
type BusyEntry struct {
	UUID    string
	Session string
}

// BusyList is the result of busy_*: an object uuid → session uuid, in join order.
type BusyList []BusyEntry

// AppendJSON implements [rpc.JSONAppender].
func (l BusyList) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, e := range l {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = rpc.AppendString(b, e.UUID)
		b = append(b, ": "...)
		b = rpc.AppendString(b, e.Session)
	}
	return append(b, '}'), nil
}

// BusyList returns the busy entities of kind that visible accepts (all when nil), in join order.
func (r *Registry) BusyList(kind directory.Kind, visible func(directory.Kind, string) bool) BusyList {
	st := r.state(kind)
	if st == nil {
		return BusyList{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(BusyList, 0, st.busy.len())
	for n := st.busy.head; n != nil; n = n.next {
		if visible == nil || visible(kind, n.uuid) {
			out = append(out, BusyEntry{n.uuid, n.val.session})
		}
	}
	return out
}

// StatusEntry is one entity of a [StatusList].
type StatusEntry struct {
	UUID   string
	Online bool
	Busy   bool
	// HasStatus and Status are a device's status (status_devices only).
	HasStatus bool
	Status    DeviceStatus
}

// StatusList is the result of status_*: an object uuid → {"online", "busy"} (plus "status" for
// devices).
type StatusList struct {
	Devices bool
	Entries []StatusEntry
}

// AppendJSON implements [rpc.JSONAppender].
func (l StatusList) AppendJSON(b []byte) ([]byte, error) {
	if cap(b)-len(b) < len(l.Entries)*64 {
		nb := make([]byte, len(b), len(b)+len(l.Entries)*(64+36)+2)
		copy(nb, b)
		b = nb
	}
	b = append(b, '{')
	for i := range l.Entries {
		e := &l.Entries[i]
		if i > 0 {
			b = append(b, ", "...)
		}
		b = rpc.AppendString(b, e.UUID)
		if e.Online {
			b = append(b, `: {"online": true, "busy": `...)
		} else {
			b = append(b, `: {"online": false, "busy": `...)
		}
		if e.Busy {
			b = append(b, "true"...)
		} else {
			b = append(b, "false"...)
		}
		if l.Devices {
			b = append(b, `, "status": `...)
			if e.HasStatus {
				b = e.Status.appendJSON(b)
			} else {
				b = append(b, "null"...)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// StatusList returns the status of the online and busy entities of kind that visible accepts (all
// when nil): the online ones in connection order, then the offline busy ones in join order.
func (r *Registry) StatusList(kind directory.Kind, visible func(directory.Kind, string) bool) StatusList {
	st := r.state(kind)
	if st == nil {
		return StatusList{}
	}
	out := StatusList{Devices: kind == directory.KindDevice}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out.Entries = make([]StatusEntry, 0, st.online.len()+st.busy.len())
	for n := st.online.head; n != nil; n = n.next {
		if visible != nil && !visible(kind, n.uuid) {
			continue
		}
		out.Entries = append(out.Entries, StatusEntry{
			UUID: n.uuid, Online: true, Busy: n.val.busy,
			HasStatus: n.val.hasStatus, Status: n.val.status,
		})
	}
	for n := st.busy.head; n != nil; n = n.next {
		if n.val.online || (visible != nil && !visible(kind, n.uuid)) {
			continue
		}
		out.Entries = append(out.Entries, StatusEntry{UUID: n.uuid, Busy: true})
	}
	return out
}

var (
	_ rpc.JSONAppender = BusyList(nil)
	_ rpc.JSONAppender = StatusList{}
)
