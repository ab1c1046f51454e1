package presence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/proto/opentera"
)

// Count is an entity's number of open connections in a [Cluster] snapshot.
type Count struct {
	Kind directory.Kind
	UUID string
	N    int
}

// claim decides lazily, once per incoming message, whether this node publishes its events.
type claim struct {
	r       *Registry
	payload []byte
	seq     uint32 // the module message's head.seq
	decided bool
	mine    bool
}

func (c *claim) ok(ctx context.Context) bool {
	if c == nil || c.r.cfg.Cluster == nil {
		return true
	}
	if !c.decided {
		c.decided, c.mine = true, c.r.cfg.Cluster.Claim(ctx, c.payload)
	}
	return c.mine
}

// Resync replaces the replica's online counts with the cluster's snapshot (Redis mode; a no-op on
// a single node). The gateway calls it when its presence subscription was restored (messages were
// lost meanwhile), once every node has had a heartbeat to rewrite its ownership. It returns once
// the snapshot is applied. It must not be called from a bus handler.
func (r *Registry) Resync(ctx context.Context) error {
	if r.cfg.Cluster == nil {
		return nil
	}
	r.resyncMu.Lock()
	defer r.resyncMu.Unlock()
	marker, err := snapshotMarker()
	if err != nil {
		return err
	}
	// The marker is awaited before the snapshot is taken: every message delivered until the marker
	// was published before it, hence is in the snapshot, and is skipped.
	r.syncMu.Lock()
	r.syncMarker = marker
	r.syncMu.Unlock()
	counts, err := r.cfg.Cluster.Snapshot(ctx, marker)
	if err != nil {
		r.syncMu.Lock()
		r.syncMarker = nil
		r.syncMu.Unlock()
		return fmt.Errorf("presence: cluster snapshot: %w", err)
	}
	r.syncCounts <- snapshot{marker, counts}
	// Wait until the delivery goroutine has passed the marker and applied the snapshot.
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		r.syncMu.Lock()
		synced := r.syncMarker == nil
		r.syncMu.Unlock()
		if synced {
			return nil
		}
		select {
		case <-ctx.Done():
			// The marker was lost (the subscription dropped meanwhile): stop skipping messages.
			r.syncMu.Lock()
			if bytes.Equal(r.syncMarker, marker) {
				r.syncMarker = nil
				select {
				case <-r.syncCounts:
				default:
				}
			}
			r.syncMu.Unlock()
			return fmt.Errorf("presence: cluster snapshot not applied: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// ResyncSource is the source of the module message (without data) a node publishes after
// rewriting its ownership (its registration was lost: Redis restarted, or it was taken for dead),
// for the record; replicas do nothing with it.
const ResyncSource = "teragate.presence.resync"

// snapshotMarker returns a TeraModuleMessage without data, unique to this start, that tells the
// snapshot's place in the message stream (other replicas find nothing to do in it).
func snapshotMarker() ([]byte, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	return proto.Marshal(&opentera.TeraModuleMessage{Head: &opentera.TeraModuleMessage_Header{
		Version: 1, Time: float64(time.Now().UnixMicro()) / 1e6, Source: "teragate.presence.snapshot", Dest: hex.EncodeToString(nonce[:])}})
}

// syncing handles a message that arrives before the registry has applied its snapshot: it
// reports true while the message must be skipped (it is already counted in the snapshot).
func (r *Registry) syncing(payload []byte) bool {
	r.syncMu.Lock()
	marker := r.syncMarker
	r.syncMu.Unlock()
	if marker == nil {
		return false
	}
	if !bytes.Equal(payload, marker) {
		return true
	}
	// Resync hands the snapshot over once its script returns; it never comes if the call failed
	// after the script ran (then the messages go on unapplied-snapshot, and the next resync fixes).
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for waiting := true; waiting; {
		select {
		case sn := <-r.syncCounts:
			if bytes.Equal(sn.marker, marker) {
				r.loadSnapshot(sn.counts)
				waiting = false
			}
		case <-timeout.C:
			r.log.Warn("cluster snapshot not received; going on without it")
			waiting = false
		}
	}
	r.syncMu.Lock()
	r.syncMarker = nil
	r.syncMu.Unlock()
	return true
}

// snapshot is a cluster snapshot and the marker that places it in the stream.
type snapshot struct {
	marker []byte
	counts []Count
}

// loadSnapshot replaces the online counts with a cluster snapshot. Device statuses are kept for
// the devices still online.
func (r *Registry) loadSnapshot(counts []Count) {
	r.mu.Lock()
	defer r.mu.Unlock()
	statuses := map[string]DeviceStatus{}
	for k := range r.kinds {
		st := &r.kinds[k]
		for n := st.online.head; n != nil; {
			next := n.next
			if n.val.hasStatus {
				statuses[n.uuid] = n.val.status
			}
			if b := st.busy.get(n.uuid); b != nil {
				b.val.online = false
			}
			st.online.remove(n)
			n = next
		}
	}
	defer func() {
		for uuid, ds := range statuses {
			if n := r.kinds[directory.KindDevice].online.get(uuid); n != nil {
				n.val.status, n.val.hasStatus = ds, true
			}
		}
	}()
	for _, c := range counts {
		st := r.state(c.Kind)
		if st == nil || c.UUID == "" || c.N <= 0 {
			continue
		}
		if n := st.online.get(c.UUID); n != nil {
			n.val.conns += int32(c.N)
			continue
		}
		v := onlineVal{conns: int32(c.N)}
		if b := st.busy.get(c.UUID); b != nil {
			b.val.online, v.busy = true, true
		}
		st.online.add(c.UUID, v)
	}
	r.log.Debug("cluster snapshot loaded", "entities", len(counts))
}
