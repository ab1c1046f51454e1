package presence

import (
	"context"
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// DeviceStatus is a device's last reported status (OpenTera's {"status", "timestamp"}).
type DeviceStatus struct {
	// Status is the JSON text the device sent (a string; OpenTera double-encodes it in events).
	Status string
	// Timestamp is the device's timestamp, an integer or a float as received.
	Timestamp rpc.Number
}

// UpdateResult is the outcome of [Registry.UpdateDeviceStatus].
type UpdateResult int

// DeviceStatus returns the device's last status; false when it is offline or has none.
func (r *Registry) DeviceStatus(uuid string) (DeviceStatus, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.kinds[directory.KindDevice].online.get(uuid); n != nil && n.val.hasStatus {
		return n.val.status, true
	}
	return DeviceStatus{}, false
}

// UpdateDeviceStatus stores an online device's status and publishes DEVICE_STATUS_CHANGED, as
// OpenTera's update_device_status, except that a timestamp older than the stored one is ignored
// (equal timestamps are accepted). It returns the status now in force (the new one, or the kept
// one when stale) and the outcome; an offline device gets [StatusOffline] and nothing is stored.
func (r *Registry) UpdateDeviceStatus(ctx context.Context, uuid, status string, ts rpc.Number) (DeviceStatus, UpdateResult) {
	if r.cfg.Cluster != nil {
		return r.updateClustered(ctx, uuid, status, ts)
	}
	r.mu.Lock()
	n := r.kinds[directory.KindDevice].online.get(uuid)
	if n == nil {
		r.mu.Unlock()
		return DeviceStatus{}, StatusOffline
	}
	if n.val.hasStatus && ts.Less(n.val.status.Timestamp) {
		cur := n.val.status
		r.mu.Unlock()
		return cur, StatusStale
	}
	ds := DeviceStatus{Status: status, Timestamp: ts}
	n.val.status, n.val.hasStatus = ds, true
	r.mu.Unlock()

	ev := &opentera.DeviceEvent{DeviceUuid: uuid, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: EncodeDeviceStatus(ds)}
	if d, ok := r.cfg.Directory.Current().Device(uuid); ok {
		ev.DeviceName = d.Name
	}
	r.publish(ctx, ev)
	return ds, StatusUpdated
}

// updateClustered is UpdateDeviceStatus on a replica: the outcome is decided on the local
// replica for the reply, and the status travels as a DEVICE_STATUS_CHANGED module message on the
// stream, so every replica stores it in the same order (applyStatus) and one publishes the event.
func (r *Registry) updateClustered(ctx context.Context, uuid, status string, ts rpc.Number) (DeviceStatus, UpdateResult) {
	r.mu.RLock()
	n := r.kinds[directory.KindDevice].online.get(uuid)
	var cur DeviceStatus
	stale := false
	if n != nil && n.val.hasStatus && ts.Less(n.val.status.Timestamp) {
		cur, stale = n.val.status, true
	}
	r.mu.RUnlock()
	switch {
	case n == nil:
		return DeviceStatus{}, StatusOffline
	case stale:
		return cur, StatusStale
	}
	ds := DeviceStatus{Status: status, Timestamp: ts}
	ev := &opentera.DeviceEvent{DeviceUuid: uuid, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED, DeviceStatus: EncodeDeviceStatus(ds)}
	if d, ok := r.cfg.Directory.Current().Device(uuid); ok {
		ev.DeviceName = d.Name
	}
	payload, err := EncodeModuleMessage("teragate.presence", topic.UserManagerMessages, ev)
	if err == nil {
		err = r.cfg.Bus.Publish(ctx, topic.UserManagerMessages, payload)
	}
	if err != nil {
		r.log.Error("publishing a device status to the cluster", "uuid", uuid, "error", err)
	}
	return ds, StatusUpdated
}

// applyStatus stores a device status received on the stream (cluster mode), with the same rules
// as UpdateDeviceStatus, and publishes DEVICE_STATUS_CHANGED if this node claims the message.
func (r *Registry) applyStatus(ctx context.Context, c *claim, ev *opentera.DeviceEvent, a *anypb.Any) {
	ds, ok := parseStatusEvent(ev.GetDeviceStatus())
	if !ok {
		r.log.Warn("undecodable device status ignored", "uuid", ev.GetDeviceUuid())
		return
	}
	r.mu.Lock()
	n := r.kinds[directory.KindDevice].online.get(ev.GetDeviceUuid())
	if n == nil || (n.val.hasStatus && ds.Timestamp.Less(n.val.status.Timestamp)) {
		r.mu.Unlock()
		return
	}
	n.val.status, n.val.hasStatus = ds, true
	r.mu.Unlock()
	if c.ok(ctx) {
		r.publishAny(ctx, ev, a)
	}
}

// parseStatusEvent parses the device_status text of a DEVICE_STATUS_CHANGED event (the inverse
// of [EncodeDeviceStatus]).
func parseStatusEvent(s string) (DeviceStatus, bool) {
	var v struct {
		Status    *string     `json:"status"`
		Timestamp json.Number `json:"timestamp"`
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&v); err != nil || v.Status == nil || v.Timestamp == "" {
		return DeviceStatus{}, false
	}
	ds := DeviceStatus{Status: *v.Status}
	if i, err := v.Timestamp.Int64(); err == nil && !strings.ContainsAny(string(v.Timestamp), ".eE") {
		ds.Timestamp = rpc.Int(i)
	} else if f, err := v.Timestamp.Float64(); err == nil {
		ds.Timestamp = rpc.Float(f)
	} else {
		return DeviceStatus{}, false
	}
	return ds, true
}

// EncodeDeviceStatus returns the device_status text of a DEVICE_STATUS_CHANGED event as OpenTera
// writes it: json.dumps({"status": <status string>, "timestamp": <ts>}), so the status, already
// JSON text, is encoded twice:
//
//	{"status": "{\"battery\": 10.4}", "timestamp": 1732145425.5}
func EncodeDeviceStatus(ds DeviceStatus) string {
	b := make([]byte, 0, len(ds.Status)+48)
	b = ds.appendJSON(b)
	return string(b)
}

// appendJSON appends {"status": "<status>", "timestamp": <ts>}.
func (ds DeviceStatus) appendJSON(b []byte) []byte {
	b = append(b, `{"status": `...)
	b = rpc.AppendString(b, ds.Status)
	b = append(b, `, "timestamp": `...)
	b, _ = ds.Timestamp.AppendJSON(b)
	return append(b, '}')
}
