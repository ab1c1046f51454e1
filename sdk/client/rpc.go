package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/teragate/teragate/proto/opentera"
)

// Reply is a decoded RPC reply.
type Reply struct {
	// Method, ID, Pattern and Status are OpenTera's reply keys; Status is "OK" or "Error".
	Method  string `json:"method"`
	ID      uint64 `json:"id"`
	Pattern string `json:"pattern"`
	Status  string `json:"status"`
	// ReturnValue is the method's return value as JSON text.
	ReturnValue json.RawMessage `json:"return_value"`
	// Reason explains an Error reply (teragate's extra key).
	Reason string `json:"reason,omitempty"`
	// Raw is the whole reply as received.
	Raw json.RawMessage `json:"-"`
}

// Call calls module.method with positional args over HTTP (POST /api/rpc/<module>) and returns
// the reply's return_value. An Error reply returns an [*RPCError]; other refusals an
// [*HTTPError].
func (c *Client) Call(ctx context.Context, module, method string, args ...any) (json.RawMessage, error) {
	r, err := c.CallReply(ctx, module, method, args...)
	if err != nil {
		return nil, err
	}
	return r.ReturnValue, nil
}

// CallReply is [Client.Call] returning the whole reply.
func (c *Client) CallReply(ctx context.Context, module, method string, args ...any) (*Reply, error) {
	body, err := EncodeRequest(method, args...)
	if err != nil {
		return nil, err
	}
	token := c.Token()
	if token == "" {
		return nil, fmt.Errorf("%w: RPC needs a token (Login or WithToken)", ErrNoCredentials)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/rpc/"+url.PathEscape(module), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "OpenTera "+token)
	req.Header.Set("Content-Type", "application/json")
	raw, err := c.do(req)
	var rep Reply
	if jerr := json.Unmarshal(raw, &rep); jerr != nil || rep.Status == "" {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("client: RPC reply is not JSON: %q", raw)
	}
	rep.Raw = raw
	if rep.Status != "OK" {
		code := http.StatusOK
		if he, ok := err.(*HTTPError); ok {
			code = he.StatusCode
		}
		return &rep, &RPCError{StatusCode: code, Method: method, Reason: rep.Reason}
	}
	return &rep, nil
}

// EncodeRequest returns the JSON body of an RPC call. Arguments may be bool, the integer and
// float types, string and json.Number; a float is always written as a float (1.0, not 1) so that
// the gateway passes it on as a double.
func EncodeRequest(method string, args ...any) ([]byte, error) {
	b := []byte(`{"method": `)
	m, _ := json.Marshal(method)
	b = append(b, m...)
	b = append(b, `, "args": [`...)
	for i, a := range args {
		if i > 0 {
			b = append(b, ", "...)
		}
		var err error
		if b, err = appendArg(b, a); err != nil {
			return nil, fmt.Errorf("%w: argument %d: %w", ErrBadArgument, i+1, err)
		}
	}
	return append(b, "]}"...), nil
}

func appendArg(b []byte, a any) ([]byte, error) {
	switch v := a.(type) {
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		s, _ := json.Marshal(v)
		return append(b, s...), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float32:
		return appendFloat(b, float64(v))
	case float64:
		return appendFloat(b, v)
	case json.Number:
		if _, err := v.Float64(); err != nil {
			return nil, err
		}
		return append(b, v...), nil
	}
	return nil, fmt.Errorf("type %T (want bool, number or string)", a)
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%v is not valid JSON", f)
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[n:], ".e") {
		b = append(b, ".0"...)
	}
	return b, nil
}

// PublishEvent publishes ev through POST /api/events (service tokens only). ev.Header.Topic is the
// channel, for example websocket.user.<uuid>.events or module.TeraServer.UserManagerModule.events.
func (c *Client) PublishEvent(ctx context.Context, ev *opentera.TeraEvent) error {
	body, err := protojson.Marshal(ev)
	if err != nil {
		return fmt.Errorf("client: encode event: %w", err)
	}
	token := c.Token()
	if token == "" {
		return fmt.Errorf("%w: publishing needs a service token", ErrNoCredentials)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "OpenTera "+token)
	req.Header.Set("Content-Type", "application/json")
	_, err = c.do(req)
	return err
}

// UpdateDeviceStatus posts a device's status (POST /api/device/status, device tokens): status is
// any JSON-encodable value, timestamp a number (an int stays an int, a float a float). It returns
// the gateway's {"uuid", "status", "timestamp"}; an offline device gets an [*HTTPError] 403.
func (c *Client) UpdateDeviceStatus(ctx context.Context, status any, timestamp any) (json.RawMessage, error) {
	st, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("client: encode status: %w", err)
	}
	ts, err := appendArg(nil, timestamp)
	if err != nil || ts[0] == '"' || ts[0] == 't' || ts[0] == 'f' {
		return nil, fmt.Errorf("%w: timestamp must be a number", ErrBadArgument)
	}
	body := append(append(append(append([]byte(`{"status": `), st...), `, "timestamp": `...), ts...), '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/device/status", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "OpenTera "+c.Token())
	req.Header.Set("Content-Type", "application/json")
	return c.do(req)
}
