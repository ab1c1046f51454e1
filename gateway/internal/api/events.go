package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/scope"
	"github.com/teragate/teragate/proto/opentera"
)

// ContentTypeProtobuf is the content type of a binary protobuf body.
const ContentTypeProtobuf = "application/x-protobuf"

// postEvents serves POST /api/events: a service publishes a TeraEvent (protojson, or binary
// protobuf with Content-Type application/x-protobuf) on its header.topic.
func (a *API) postEvents(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `OpenTera realm="service"`)
		writeError(w, http.StatusUnauthorized, "A service token is required (Authorization: OpenTera <token>).")
		return
	}
	p, err := a.d.Auth.Any(r.Context(), tok)
	if err != nil {
		code, msg, _ := loginResult(err)
		writeError(w, code, msg)
		return
	}
	if p.Kind != directory.KindService {
		writeError(w, http.StatusForbidden, "Only services may publish events.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.d.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Body larger than %d bytes.", a.d.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "Could not read the body: "+err.Error())
		return
	}
	te, err := DecodeTeraEvent(r.Header.Get("Content-Type"), body)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errMediaType) {
			code = http.StatusUnsupportedMediaType
		}
		writeError(w, code, err.Error())
		return
	}
	if err := a.mayPublish(p, te); err != nil {
		a.d.Metrics.Denied("publish")
		a.log.Info("service publish refused", "service", p.UUID, "topic", te.Header.Topic, "reason", err)
		writeError(w, http.StatusForbidden, "Forbidden: "+err.Error())
		return
	}
	if te.Header.Version == 0 {
		te.Header.Version = 1
	}
	if te.Header.Time == 0 {
		te.Header.Time = float64(time.Now().UnixMicro()) / 1e6
	}
	payload, err := proto.Marshal(te)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Could not encode the event: "+err.Error())
		return
	}
	if err := a.publish(r.Context(), "http", te.Header.Topic, payload); err != nil {
		a.log.Error("publishing event", "topic", te.Header.Topic, "error", err)
		writeError(w, http.StatusServiceUnavailable, "Could not publish: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"topic": te.Header.Topic, "events": len(te.Events)})
}

var errMediaType = errors.New("unsupported content type")

// mayPublish applies the publishing rules of package scope to a service: an admin service may
// publish anything; another only on its own topic or to entities it reaches (its projects).
func (a *API) mayPublish(p auth.Principal, te *opentera.TeraEvent) error {
	if p.Admin {
		return nil
	}
	snap := a.d.Directory.Current()
	acc, _ := snap.Principal(directory.KindService, p.UUID)
	name := ""
	if svc, ok := snap.Service(p.UUID); ok {
		name = svc.Name
	}
	return scope.Of(acc).CheckServicePublish(name, te.Header.Topic, te.Events)
}

// DecodeTeraEvent decodes and validates a TeraEvent body of the given content type: it must have
// a header with a topic that is a valid channel name and at least one event.
func DecodeTeraEvent(contentType string, body []byte) (*opentera.TeraEvent, error) {
	mt := "application/json"
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, fmt.Errorf("%w: %q", errMediaType, contentType)
		}
	}
	te := &opentera.TeraEvent{}
	switch mt {
	case ContentTypeProtobuf, "application/protobuf", "application/octet-stream":
		if err := proto.Unmarshal(body, te); err != nil {
			return nil, fmt.Errorf("malformed protobuf TeraEvent: %v", err)
		}
	case "application/json", "text/json":
		if err := protojson.Unmarshal(body, te); err != nil {
			return nil, fmt.Errorf("malformed TeraEvent JSON: %v", err)
		}
	default:
		return nil, fmt.Errorf("%w %q: send application/json or %s", errMediaType, mt, ContentTypeProtobuf)
	}
	topic := te.GetHeader().GetTopic()
	switch {
	case te.Header == nil || topic == "":
		return nil, errors.New("header.topic is required: it is the channel the event is published on")
	case strings.ContainsAny(topic, " \t\r\n") || bus.HasMeta(topic):
		return nil, fmt.Errorf("header.topic %q is not a channel name (no spaces or glob characters)", topic)
	case len(te.Events) == 0:
		return nil, errors.New("events is empty: a TeraEvent carries at least one event")
	}
	for i, ev := range te.Events {
		if ev == nil || ev.TypeUrl == "" {
			return nil, fmt.Errorf("events[%d] has no type", i)
		}
		// The JSON decoder resolves and checks every event already; a binary body carries the
		// events as opaque bytes, which are decoded here so that an unknown type or a malformed
		// event (invalid UTF-8 in a string, bad wire data) is refused now rather than dropped by
		// the router after a 202.
		if _, err := ev.UnmarshalNew(); err != nil {
			return nil, fmt.Errorf("events[%d] (%s) cannot be decoded: %v", i, ev.TypeUrl, err)
		}
	}
	return te, nil
}
