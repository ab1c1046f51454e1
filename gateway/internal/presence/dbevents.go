package presence

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// EncodeDisconnect returns the topic and payload of a CMD_CLIENT_DISCONNECT for uuid from source:
// published, it closes the entity's sockets with 4000 on every node (and OpenTera's).
func EncodeDisconnect(source, uuid string) (channel string, payload []byte, err error) {
	channel = topic.Commands(uuid)
	payload, err = EncodeModuleMessage(source, channel, &opentera.ServerCommand{Type: opentera.ServerCommand_CMD_CLIENT_DISCONNECT})
	return channel, payload, err
}

// onDatabaseEvent is OpenTera's user manager's reaction to database events: a user, participant
// or device updated with <object>_enabled false or a deleted_at (soft delete), or deleted, is
// disconnected everywhere (CMD_CLIENT_DISCONNECT) and blocked — its logins and tokens refused —
// until a later event re-enables or re-creates it, or the identity file's record of it changes.
func (r *Registry) onDatabaseEvent(m bus.Message) {
	object := m.Channel[strings.LastIndexByte(m.Channel, '.')+1:]
	kind, ok := directory.ParseKind(object)
	if !ok || kind == directory.KindService {
		return // another object: not the user manager's business
	}
	var te opentera.TeraEvent
	if err := proto.Unmarshal(m.Payload, &te); err != nil {
		r.log.Warn("undecodable database event", "topic", m.Channel, "error", err)
		return
	}
	ctx := context.Background()
	c := &claim{r: r, payload: m.Payload}
	for _, a := range te.GetEvents() {
		var ev opentera.DatabaseEvent
		if !a.MessageIs(&ev) || a.UnmarshalTo(&ev) != nil {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(ev.GetObjectValue()), &rec); err != nil {
			r.log.Warn("database event with an undecodable object", "topic", m.Channel, "error", err)
			continue
		}
		uuid, _ := rec[object+"_uuid"].(string)
		if uuid == "" {
			continue
		}
		k := key{kind, uuid}
		switch ev.GetType() {
		case opentera.DatabaseEvent_DB_DELETE:
			r.block(ctx, c, k, "deleted")
		case opentera.DatabaseEvent_DB_UPDATE:
			enabled, known := rec[object+"_enabled"].(bool)
			_, deleted := rec["deleted_at"]
			switch {
			case deleted:
				r.block(ctx, c, k, "soft-deleted")
			case known && !enabled:
				r.block(ctx, c, k, "disabled")
			case known && enabled:
				r.unblock(k, "re-enabled")
			}
		case opentera.DatabaseEvent_DB_CREATE:
			r.unblock(k, "created")
		}
	}
}

// block records k as blocked and disconnects it on every node (one node publishes the command).
func (r *Registry) block(ctx context.Context, c *claim, k key, why string) {
	r.blockMu.Lock()
	if r.blocked == nil {
		r.blocked = map[key]any{}
	}
	r.blocked[k] = r.record(r.cfg.Directory.Current(), k)
	r.blockMu.Unlock()
	r.log.Info("entity blocked by a database event: disconnected, logins refused", "kind", k.kind, "uuid", k.uuid, "why", why)
	if !c.ok(ctx) {
		return
	}
	channel, payload, err := EncodeDisconnect(topic.UserManagerModule, k.uuid)
	if err == nil {
		err = r.cfg.Bus.Publish(ctx, channel, payload)
	}
	if err != nil && !errors.Is(err, bus.ErrClosed) {
		r.log.Error("publishing a disconnect command", "uuid", k.uuid, "error", err)
	}
}

func (r *Registry) unblock(k key, why string) {
	r.blockMu.Lock()
	_, was := r.blocked[k]
	delete(r.blocked, k)
	r.blockMu.Unlock()
	if was {
		r.log.Info("entity unblocked", "kind", k.kind, "uuid", k.uuid, "why", why)
	}
}

// Blocked reports whether a database event disabled or deleted the entity (see
// [topic.PatternDatabaseEvents]); the gateway refuses its logins and tokens meanwhile.
func (r *Registry) Blocked(kind directory.Kind, uuid string) bool {
	r.blockMu.Lock()
	defer r.blockMu.Unlock()
	_, ok := r.blocked[key{kind, uuid}]
	return ok
}

// DirectoryChanged lifts the block of every entity whose record in the identity file changed
// (an operator edited it: the file is again the authority on it). Call it after a reload.
func (r *Registry) DirectoryChanged(snap *directory.Snapshot) {
	r.blockMu.Lock()
	defer r.blockMu.Unlock()
	for k, was := range r.blocked {
		if !reflect.DeepEqual(was, r.record(snap, k)) {
			delete(r.blocked, k)
			r.log.Info("entity unblocked", "kind", k.kind, "uuid", k.uuid, "why", "its identity record changed")
		}
	}
}

// record returns a copy of k's record in snap (nil when absent), to notice when it changes.
func (r *Registry) record(snap *directory.Snapshot, k key) any {
	if snap == nil {
		return nil
	}
	switch k.kind {
	case directory.KindUser:
		if u, ok := snap.User(k.uuid); ok {
			return *u
		}
	case directory.KindParticipant:
		if p, ok := snap.Participant(k.uuid); ok {
			return *p
		}
	case directory.KindDevice:
		if d, ok := snap.Device(k.uuid); ok {
			return *d
		}
	}
	return nil
}
