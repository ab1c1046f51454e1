package presence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// Announce tells the user manager that a connection of the entity opened (connected) or closed,
// as OpenTera's websocket protocols do: a TeraModuleMessage from websocket.<kind>.<uuid> with the
// entity's CONNECTED or DISCONNECTED event, on [topic.UserManagerMessages]. With a [Cluster] it goes through
// the cluster, which also records the connection as this node's (so other nodes count it, and
// reap it if this node dies). Every kind of connection — client websockets and station
// websockets alike — is announced here. An entity unknown to the directory is not announced.
//
// The entity's CONNECTED event is published to everyone who may see it only when the entity
// goes from no connection to one (cluster-wide), and DISCONNECTED when its last one closes. A
// connection opened while the entity is already online is greeted instead: when its announce is
// processed, greet (if not nil) is called with the CONNECTED event, for the caller to send to
// that connection alone (OpenTera's clients expect their own CONNECTED as their first frame).
func (r *Registry) Announce(ctx context.Context, kind directory.Kind, uuid string, connected bool, greet func(ev proto.Message)) error {
	change := Disconnected
	if connected {
		change = Connected
	}
	ev := EntityEvent(r.cfg.Directory.Current(), kind, uuid, change)
	if ev == nil {
		return nil
	}
	payload, err := EncodeModuleMessage(topic.Socket(kind, uuid), topic.UserManagerMessages, ev)
	if err != nil {
		return err
	}
	seq := r.seq.Add(1)
	payload = stamp(payload, seq)
	if connected && greet != nil {
		r.addGreet(seq, key{kind, uuid}, func() { greet(ev) })
	}
	if r.cfg.Cluster != nil {
		err = r.cfg.Cluster.Announce(ctx, kind, uuid, connected, payload)
	} else {
		err = r.cfg.Bus.Publish(ctx, topic.UserManagerMessages, payload)
	}
	if errors.Is(err, bus.ErrClosed) {
		return nil // shutting down: nobody is left to tell
	}
	if err != nil {
		r.takeGreet(seq, key{kind, uuid})
		return fmt.Errorf("presence: announcing %s %s: %w", kind, uuid, err)
	}
	return nil
}

// stamp returns payload, a TeraModuleMessage, with seq in its header. The registry numbers its
// announces (from a random start) so that two announces with otherwise identical bytes (one
// entity, one microsecond) stay two messages for the cluster's claims keyed by their hash, and so
// that it recognises its own announces when it processes them (greetings). Protobuf merges a
// repeated embedded message field, so appending head{seq} to the encoding sets head.seq without
// decoding the rest.
func stamp(payload []byte, seq uint32) []byte {
	var head []byte
	head = protowire.AppendTag(head, 3, protowire.VarintType)
	head = protowire.AppendVarint(head, uint64(seq))
	out := make([]byte, 0, len(payload)+len(head)+2)
	out = append(out, payload...)
	out = protowire.AppendTag(out, 1, protowire.BytesType)
	return protowire.AppendBytes(out, head)
}

// greetTTL bounds how long a greeting waits for its announce to come back (a message lost with
// the bus, or skipped while the registry was loading a snapshot, leaves its greeting behind).
const greetTTL = time.Minute

type greeting struct {
	k  key
	fn func()
	at time.Time
}

func (r *Registry) addGreet(seq uint32, k key, fn func()) {
	now := time.Now()
	r.greetMu.Lock()
	defer r.greetMu.Unlock()
	if r.greets == nil {
		r.greets = map[uint32]greeting{}
	}
	if len(r.greets) > 1024 && now.Sub(r.greetSwept) > greetTTL/4 {
		for s, g := range r.greets {
			if now.Sub(g.at) > greetTTL {
				delete(r.greets, s)
			}
		}
		r.greetSwept = now
	}
	r.greets[seq] = greeting{k: k, fn: fn, at: now}
}

// takeGreet removes and returns the greeting of this registry's announce seq of k, if any.
func (r *Registry) takeGreet(seq uint32, k key) func() {
	r.greetMu.Lock()
	defer r.greetMu.Unlock()
	g, ok := r.greets[seq]
	if !ok || g.k != k {
		return nil
	}
	delete(r.greets, seq)
	return g.fn
}
