package presence

import (
	"context"
	"errors"
	"fmt"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// Announce tells the user manager that a connection of the entity opened (connected) or closed,
// as OpenTera's websocket protocols do: a TeraModuleMessage from websocket.<kind>.<uuid> with the
// entity's CONNECTED or DISCONNECTED event, on [TopicMessages]. With a [Cluster] it goes through
// the cluster, which also records the connection as this node's (so other nodes count it, and
// reap it if this node dies). Every kind of connection — client websockets and station
// websockets alike — is announced here. An entity unknown to the directory is not announced.
func (r *Registry) Announce(ctx context.Context, kind directory.Kind, uuid string, connected bool) error {
	change := Disconnected
	if connected {
		change = Connected
	}
	ev := EntityEvent(r.cfg.Directory.Current(), kind, uuid, change)
	if ev == nil {
		return nil
	}
	payload, err := EncodeModuleMessage("websocket."+kind.String()+"."+uuid, TopicMessages, ev)
	if err != nil {
		return err
	}
	if r.cfg.Cluster != nil {
		err = r.cfg.Cluster.Announce(ctx, kind, uuid, connected, payload)
	} else {
		err = r.cfg.Bus.Publish(ctx, TopicMessages, payload)
	}
	if errors.Is(err, bus.ErrClosed) {
		return nil // shutting down: nobody is left to tell
	}
	if err != nil {
		return fmt.Errorf("presence: announcing %s %s: %w", kind, uuid, err)
	}
	return nil
}
