package hub

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// checkIndex requires the index to hold exactly what a rebuild from the open connections' access
// handles would: admins, view projects, snapshot counts, and consistent positions.
func checkIndex(t *testing.T, h *Hub) {
	t.Helper()
	h.ix.mu.RLock()
	defer h.ix.mu.RUnlock()
	snaps := map[*directory.Snapshot]int{}
	members := 0
	for _, k := range socketKinds {
		for _, c := range h.AppendKind(nil, k) {
			require.True(t, c.ixIn, "open connection %d not indexed", c.id)
			a := c.Access()
			if s := a.Snapshot(); s != nil {
				snaps[s]++
			}
			want := 0
			if a.Admin() {
				want++
				require.Contains(t, h.ix.admins[k].conns, c)
			}
			for _, p := range a.AppendViewProjects(nil) {
				want++
				require.Contains(t, h.ix.byProject[k][p].conns, c, "project %s", p)
			}
			require.Len(t, c.ixSlots, want)
			for _, sl := range c.ixSlots {
				require.Same(t, c, sl.set.conns[sl.pos])
			}
			members += want
		}
	}
	total := 0
	for k := range h.ix.admins {
		total += len(h.ix.admins[k].conns)
		for p, set := range h.ix.byProject[k] {
			require.NotEmpty(t, set.conns, "empty bucket %s kept", p)
			total += len(set.conns)
		}
	}
	require.Equal(t, members, total, "the index holds closed connections")
	require.Equal(t, snaps, h.ix.snaps)
}

// TestIndexHammer connects and disconnects sockets, reloads the directory back and forth and
// routes narrowed events, all at once (run it with -race); then the index must match the open
// connections exactly and narrowed routing must still equal routing over every socket.
func TestIndexHammer(t *testing.T) {
	docA := genDoc(dirShape{random: true, seed: 21, users: 60, participants: 40, devices: 40, projects: 12, superadmins: 4})
	docB := genDoc(dirShape{random: true, seed: 22, users: 60, participants: 40, devices: 40, projects: 12, superadmins: 2})
	a, b := docA.parse(t), docB.parse(t)
	ents := docA.entities()
	h := newTestHub(t, Config{MaxQueueFrames: 1 << 20, MaxQueueBytes: 1 << 30})
	r := NewRouter(h, bus.NewMemory(bus.MemoryConfig{}), RouterConfig{})
	native := &filter.Native{}
	for _, k := range socketKinds {
		r.SetFilter(k, native)
	}
	var cur atomic.Pointer[directory.Snapshot]
	cur.Store(a)
	iters := 2000
	if testing.Short() {
		iters = 300
	}
	var wg, others sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 { // connect / disconnect
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var mine []*Conn
			for range iters {
				if len(mine) > 0 && rng.IntN(3) == 0 {
					i := rng.IntN(len(mine))
					h.Remove(mine[i])
					mine[i] = mine[len(mine)-1]
					mine = mine[:len(mine)-1]
					continue
				}
				e := ents[rng.IntN(len(ents))]
				acc, _ := cur.Load().Principal(e.kind, e.uuid)
				mine = append(mine, h.Register(&discardConn{}, e.kind, e.uuid, FormatProto, acc))
			}
		}()
	}
	others.Add(2)
	go func() { // reloads
		defer others.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s := []*directory.Snapshot{a, b}[i%2]
			cur.Store(s)
			h.UpdateDirectory(s)
		}
	}()
	go func() { // routing
		defer others.Done()
		w := &worker{}
		rng := rand.New(rand.NewPCG(9, 9))
		for {
			select {
			case <-stop:
				return
			default:
			}
			e := ents[rng.IntN(len(ents))]
			var p []byte
			switch e.kind {
			case directory.KindUser:
				p = userEvent(t, e.uuid)
			default:
				p = participantEvent(t, e.uuid)
			}
			r.routeEvents(w, bus.Message{Channel: topic.UserManagerEvents, Payload: p}, 0, "")
		}
	}()
	wg.Wait() // the connect/disconnect goroutines finish on their own
	close(stop)
	others.Wait()
	checkIndex(t, h)

	wd := &narrowWorld{name: "after hammer", hub: h, router: r}
	for _, e := range ents[:20] {
		for _, m := range []proto.Message{&opentera.UserEvent{UserUuid: e.uuid}, &opentera.ParticipantEvent{ParticipantUuid: e.uuid}, &opentera.DeviceEvent{DeviceUuid: e.uuid}} {
			an, err := opentera.NewAny(m)
			require.NoError(t, err)
			wd.events = append(wd.events, filter.DecodeEvent(topic.UserManagerEvents, an))
		}
	}
	checkNarrowing(t, []*narrowWorld{wd}, func(*narrowWorld, directory.Kind) filter.Filter { return native })
	require.Positive(t, h.Count(0))
}
