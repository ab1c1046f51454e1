package presence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/proto/opentera"
)

// DeviceStatusConfig configures [DeviceStatusHandler].
type DeviceStatusConfig struct {
	// Router serves update_device_status (the call goes through it, as in OpenTera). Required.
	Router *rpc.Router
	// Authenticate resolves the caller from its token ("Authorization: OpenTera <token>" or
	// ?token=). Required.
	Authenticate func(r *http.Request) (rpc.Caller, error)
	// MaxBodyBytes bounds the body. Zero value means 64 KiB.
	MaxBodyBytes int64
}

// DeviceStatusHandler serves POST /api/device/status as OpenTera's DeviceQueryStatus: a device
// posts {"status": <any JSON>, "timestamp": <number>}; the gateway calls
// update_device_status(device_uuid, json.dumps(status), timestamp) and answers 200 with the call's
// return object, 403 "Status update forbidden on offline device." when the device is offline,
// 400 "Missing arguments" when status or a numeric timestamp is missing, and 401 without a valid
// device token.
func DeviceStatusHandler(cfg DeviceStatusConfig) http.HandlerFunc {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := cfg.Authenticate(r)
		if err != nil || caller.Kind != directory.KindDevice {
			w.Header().Set("WWW-Authenticate", `OpenTera realm="device"`)
			writeText(w, http.StatusUnauthorized, rpc.AppendString(nil, "Unauthorized"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
		if err != nil {
			writeText(w, http.StatusRequestEntityTooLarge, rpc.AppendString(nil, "Body too large."))
			return
		}
		status, ts, err := DecodeDeviceStatus(body)
		if err != nil {
			writeText(w, http.StatusBadRequest, rpc.AppendString(nil, "Missing arguments"))
			return
		}
		args := rpc.Args{
			mustValue(caller.UUID), mustValue(status), ts,
		}
		ctx, cancel := context.WithTimeout(rpc.WithCaller(r.Context(), caller), 10*time.Second)
		defer cancel()
		v, err := cfg.Router.Call(ctx, Module, MethodUpdateDeviceStatus, args)
		if err != nil {
			writeText(w, rpc.HTTPStatus(err), rpc.AppendString(nil, err.Error()))
			return
		}
		if v == nil {
			writeText(w, http.StatusForbidden, rpc.AppendString(nil, "Status update forbidden on offline device."))
			return
		}
		out, err := rpc.AppendJSON(nil, v)
		if err != nil {
			writeText(w, http.StatusInternalServerError, rpc.AppendString(nil, err.Error()))
			return
		}
		writeText(w, http.StatusOK, out)
	}
}

var errMissing = errors.New("presence: missing arguments")

// DecodeDeviceStatus decodes the body of POST /api/device/status: a JSON object with "status"
// (any JSON value, returned as Python's json.dumps of it) and "timestamp" (a JSON number,
// returned as int_value or double_value as written).
func DecodeDeviceStatus(body []byte) (status string, ts *opentera.Value, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return "", nil, errMissing
	}
	rawStatus, ok1 := m["status"]
	rawTS, ok2 := m["timestamp"]
	if !ok1 || !ok2 {
		return "", nil, errMissing
	}
	rawTS = bytes.TrimSpace(rawTS)
	if len(rawTS) == 0 || !(rawTS[0] == '-' || rawTS[0] >= '0' && rawTS[0] <= '9') {
		return "", nil, errMissing
	}
	if ts, err = rpc.JSONArg(rawTS); err != nil {
		return "", nil, errMissing
	}
	st, err := rpc.PythonJSON(rawStatus)
	if err != nil {
		return "", nil, errMissing
	}
	return string(st), ts, nil
}

func mustValue(s string) *opentera.Value {
	v, _ := rpc.ValueOf(s)
	return v
}

func writeText(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
