package presence

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
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
// rewriting its ownership (its registration was lost: Redis restarted, or it was taken for dead):
// every replica then reloads the snapshot ([Registry.ScheduleResync]).
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
				r.publishReconciled(sn.counts, r.loadSnapshot(sn.counts))
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

// transition is an entity whose online state a snapshot changed.
type transition struct {
	k      key
	online bool
}

// loadSnapshot replaces the online counts with a cluster snapshot. Device statuses are kept for
// the devices still online. It returns the entities that the snapshot took online or offline,
// except for the first snapshot (the replica was empty: nothing changed for the clients).
func (r *Registry) loadSnapshot(counts []Count) []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	statuses := map[string]DeviceStatus{}
	var was map[key]bool // online before the snapshot (not on the first one)
	if r.loaded {
		was = map[key]bool{}
	}
	for k := range r.kinds {
		st := &r.kinds[k]
		for n := st.online.head; n != nil; {
			next := n.next
			if was != nil {
				was[key{directory.Kind(k), n.uuid}] = true
			}
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
	if was == nil {
		r.loaded = true
		return nil
	}
	var out []transition
	for k := range r.kinds {
		for n := r.kinds[k].online.head; n != nil; n = n.next {
			kk := key{directory.Kind(k), n.uuid}
			if was[kk] {
				delete(was, kk)
			} else {
				out = append(out, transition{kk, true})
			}
		}
	}
	for kk := range was {
		out = append(out, transition{kk, false})
	}
	slices.SortFunc(out, func(a, b transition) int { return compareEntity(a.k.kind, a.k.uuid, b.k.kind, b.k.uuid) })
	return out
}

// compareEntity orders entities by kind, then uuid.
func compareEntity(ak directory.Kind, au string, bk directory.Kind, bu string) int {
	if c := cmp.Compare(ak, bk); c != 0 {
		return c
	}
	return strings.Compare(au, bu)
}

// reconcileSource prefixes the claims of the events a snapshot publishes ([Registry.publishReconciled]).
const reconcileSource = "teragate.presence.reconcile"

// publishReconciled publishes the CONNECTED or DISCONNECTED event of each entity a snapshot took
// online or offline: the module messages that did so were lost (published while this node's
// subscription was down, or skipped because the snapshot holds them), and without the event the
// clients would keep an entity online that left (or miss one that came). Every replica that
// loads the same cluster state finds the same transitions; the claim, keyed by that state and
// the transition, lets one of them publish each event. A replica whose own messages already
// published the event (it was listening when the others were not) may publish it a second time:
// a duplicate, never a loss.
func (r *Registry) publishReconciled(counts []Count, changed []transition) {
	if len(changed) == 0 {
		return
	}
	state := snapshotDigest(counts)
	ctx := context.Background()
	snap := r.cfg.Directory.Current()
	published := 0
	for _, t := range changed {
		change := Disconnected
		if t.online {
			change = Connected
		}
		ev := EntityEvent(snap, t.k.kind, t.k.uuid, change)
		if ev == nil {
			continue
		}
		c := &claim{r: r, payload: fmt.Appendf(nil, "%s %x %d %s %t", reconcileSource, state, t.k.kind, t.k.uuid, t.online)}
		if c.ok(ctx) {
			r.publishAny(ctx, ev, nil)
			published++
		}
	}
	r.log.Info("cluster snapshot changed who is online; events published for what was missed",
		"changed", len(changed), "published", published)
}

// snapshotDigest hashes a snapshot's counts in a canonical order: two replicas that load the
// same cluster state get the same digest.
func snapshotDigest(counts []Count) [32]byte {
	sorted := slices.Clone(counts)
	slices.SortFunc(sorted, func(a, b Count) int {
		if c := compareEntity(a.Kind, a.UUID, b.Kind, b.UUID); c != 0 {
			return c
		}
		return cmp.Compare(a.N, b.N)
	})
	h := sha256.New()
	for _, c := range sorted {
		fmt.Fprintf(h, "%d %s %d\n", c.Kind, c.UUID, c.N)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ScheduleResync reloads the cluster's snapshot ([Registry.Resync]) after the configured
// ResyncDelay, in the background; calls made while one is waiting join it. The gateway calls it
// when its presence subscription is restored (messages were lost meanwhile), and the registry
// when another node announces that it rewrote its ownership (Redis restarted, or the node had
// been taken for dead): by the delay's end every live node has rewritten its own, and the
// snapshot is whole. Without a cluster it does nothing.
func (r *Registry) ScheduleResync() {
	if r.cfg.Cluster == nil || !r.resyncPending.CompareAndSwap(false, true) {
		return
	}
	r.bgMu.Lock() // Stop cancels bgCtx under it: no Add once its Wait may have begun
	if r.bgCtx.Err() != nil {
		r.bgMu.Unlock()
		r.resyncPending.Store(false)
		return
	}
	r.bg.Add(1)
	r.bgMu.Unlock()
	go func() {
		defer r.bg.Done()
		t := time.NewTimer(r.cfg.ResyncDelay)
		defer t.Stop()
		select {
		case <-r.bgCtx.Done():
			r.resyncPending.Store(false)
			return
		case <-t.C:
		}
		r.resyncPending.Store(false) // a trigger from now on needs a snapshot taken after it
		ctx, cancel := context.WithTimeout(r.bgCtx, 2*r.cfg.ResyncDelay+5*time.Second)
		defer cancel()
		if err := r.Resync(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("presence resync failed", "error", err)
		}
	}()
}
