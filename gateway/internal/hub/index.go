package hub

import (
	"cmp"
	"slices"
	"sync"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
)

// index finds connections by what their entity can see, so that an event a filter can narrow
// ([filter.Narrower]) visits only its candidates: per kind, the admins and the viewers of each
// project ([directory.Access.AppendViewProjects]); connections by uuid are the shards' byUUID.
// It also counts the directory snapshots the connections' access handles belong to: after a
// reload some handles may still be older, and a subject's audience is resolved in each of them.
//
// mu orders every change of a connection's access handle (Register, UpdateDirectory) with the
// router's gathering: while the router holds mu.RLock, no handle changes, so the handle it reads
// for a connection is the one that put the connection in the index. Lock order: index.mu before
// shard.mu.
type index struct {
	mu        sync.RWMutex
	admins    [directory.KindService + 1]connSet
	byProject [directory.KindService + 1]map[string]*connSet
	snaps     map[*directory.Snapshot]int
}

// connSet is a set of connections with O(1) removal: each member records its position.
type connSet struct{ conns []*Conn }

// ixSlot is a connection's membership of one connSet.
type ixSlot struct {
	set *connSet
	pos int
}

func (x *index) init() {
	for k := range x.byProject {
		x.byProject[k] = map[string]*connSet{}
	}
	x.snaps = map[*directory.Snapshot]int{}
}

// add puts c in the index with access a (x.mu held for writing). c must not be in it.
func (x *index) add(c *Conn, a directory.Access) {
	c.ixIn = true
	if s := a.Snapshot(); s != nil {
		c.ixSnap = s
		x.snaps[s]++
	}
	if a.Admin() {
		x.put(&x.admins[c.kind], c)
	}
	c.ixProjects = a.AppendViewProjects(c.ixProjects[:0])
	for _, p := range c.ixProjects {
		set := x.byProject[c.kind][p]
		if set == nil {
			set = &connSet{}
			x.byProject[c.kind][p] = set
		}
		x.put(set, c)
	}
}

// remove takes c out of the index (x.mu held for writing); it does nothing when c is not in it.
func (x *index) remove(c *Conn) {
	if !c.ixIn {
		return
	}
	c.ixIn = false
	if s := c.ixSnap; s != nil {
		if x.snaps[s]--; x.snaps[s] <= 0 {
			delete(x.snaps, s)
		}
		c.ixSnap = nil
	}
	for _, sl := range c.ixSlots {
		x.take(sl.set, sl.pos)
	}
	clear(c.ixSlots)
	c.ixSlots = c.ixSlots[:0]
	for _, p := range c.ixProjects {
		if set := x.byProject[c.kind][p]; set != nil && len(set.conns) == 0 {
			delete(x.byProject[c.kind], p)
		}
	}
	clear(c.ixProjects)
	c.ixProjects = c.ixProjects[:0]
}

func (x *index) put(set *connSet, c *Conn) {
	c.ixSlots = append(c.ixSlots, ixSlot{set: set, pos: len(set.conns)})
	set.conns = append(set.conns, c)
}

// take removes the member at pos, moving the last member there.
func (x *index) take(set *connSet, pos int) {
	last := len(set.conns) - 1
	moved := set.conns[last]
	set.conns[pos] = moved
	set.conns[last] = nil
	set.conns = set.conns[:last]
	if pos == last {
		return
	}
	for i := range moved.ixSlots {
		if moved.ixSlots[i].set == set {
			moved.ixSlots[i].pos = pos
			break
		}
	}
}

// gatherScratch is one router worker's scratch for [Hub.appendCandidates].
type gatherScratch struct {
	projects, uuids []string
	sets            []*connSet
	// conns and rs are isCandidate's buffers.
	conns []*Conn
	rs    []filter.Recipient
}

// appendCandidates appends to conns the open connections of kind k that cand describes (cand.All
// excepted: use AppendKind), each once, and to rs their recipients with the access handle under
// which they are indexed. A subject of cand.Visible is resolved in every snapshot the
// connections' handles belong to, so a connection whose handle predates a reload is still found
// when its snapshot lets it see the subject.
// isCandidate reports whether c is among the candidates cand describes for kind k: what
// appendCandidates would gather, for one connection.
func (h *Hub) isCandidate(c *Conn, k directory.Kind, cand *filter.Candidates, g *gatherScratch) bool {
	g.conns, g.rs = h.appendCandidates(g.conns[:0], g.rs[:0], k, cand, g)
	found := slices.Contains(g.conns, c)
	clear(g.conns)
	clear(g.rs)
	return found
}

func (h *Hub) appendCandidates(conns []*Conn, rs []filter.Recipient, k directory.Kind, cand *filter.Candidates, g *gatherScratch) ([]*Conn, []filter.Recipient) {
	if !k.Valid() {
		return conns, rs
	}
	x := &h.ix
	x.mu.RLock()
	defer x.mu.RUnlock()
	start := len(conns)
	sources := 0
	appendSet := func(set []*Conn) {
		if len(set) > 0 {
			conns = append(conns, set...)
			sources++
		}
	}
	appendEntity := func(uuid string) {
		n := len(conns)
		if conns = h.AppendEntity(conns, k, uuid); len(conns) > n {
			sources++
		}
	}
	sets, uuids, _ := h.resolveLocked(k, cand, g)
	for _, set := range sets {
		appendSet(set.conns)
	}
	for _, u := range cand.UUIDs {
		appendEntity(u)
	}
	for _, u := range uuids {
		appendEntity(u)
	}
	clear(g.sets)
	g.sets = g.sets[:0]
	clear(g.projects)
	clear(g.uuids)
	if sources > 1 {
		found := conns[start:]
		slices.SortFunc(found, func(a, b *Conn) int { return cmp.Compare(a.id, b.id) })
		n := len(slices.Compact(found))
		clear(conns[start+n:])
		conns = conns[:start+n]
	}
	for _, c := range conns[start:] {
		rs = append(rs, filter.Recipient{Kind: c.kind, UUID: c.uuid, Access: c.Access()})
	}
	return conns, rs
}

// appendCandidatesAmong is appendCandidates restricted to the connections among (all of kind k,
// each open at most once in it) for which in reports true: a replay routes an event to the
// connections that are replaying it, not to every candidate. It takes whichever way is cheaper:
// testing each of among against the sets cand resolves to, or gathering the candidates and
// keeping those in among.
func (h *Hub) appendCandidatesAmong(conns []*Conn, rs []filter.Recipient, k directory.Kind, cand *filter.Candidates, g *gatherScratch, among []*Conn, in func(*Conn) bool) ([]*Conn, []filter.Recipient) {
	if !k.Valid() || len(among) == 0 {
		return conns, rs
	}
	x := &h.ix
	x.mu.RLock()
	sets, uuids, size := h.resolveLocked(k, cand, g)
	if len(among) > size {
		x.mu.RUnlock()
		start := len(conns)
		conns, rs = h.appendCandidates(conns, rs, k, cand, g)
		n := start
		for i := start; i < len(conns); i++ {
			if in(conns[i]) {
				conns[n], rs[n] = conns[i], rs[i]
				n++
			}
		}
		clear(conns[n:])
		clear(rs[n:])
		return conns[:n], rs[:n]
	}
	for _, c := range among {
		if c.candidateLocked(sets, cand.UUIDs, uuids) {
			conns = append(conns, c)
			rs = append(rs, filter.Recipient{Kind: c.kind, UUID: c.uuid, Access: c.Access()})
		}
	}
	x.mu.RUnlock()
	clear(g.sets)
	g.sets = g.sets[:0]
	clear(g.projects)
	clear(g.uuids)
	return conns, rs
}

// resolveLocked resolves cand for kind k into the index sets and the entity uuids whose
// connections are its candidates (as appendCandidates gathers them; x.mu held), with an upper
// bound of their number of connections. The sets are in g.sets, the uuids are cand.UUIDs and
// the returned slice (g.uuids), valid until g is reused.
func (h *Hub) resolveLocked(k directory.Kind, cand *filter.Candidates, g *gatherScratch) (sets []*connSet, uuids []string, size int) {
	x := &h.ix
	admins := cand.Admins
	g.projects, g.uuids = g.projects[:0], g.uuids[:0]
	for _, e := range cand.Visible {
		for snap := range x.snaps {
			sub, _ := snap.Subject(e.Kind, e.UUID)
			var ok bool
			g.projects, g.uuids, ok = sub.AppendAudience(g.projects, g.uuids)
			admins = admins || ok
		}
	}
	g.sets = g.sets[:0]
	if admins {
		g.sets = append(g.sets, &x.admins[k])
	}
	for i, p := range g.projects {
		if slices.Contains(g.projects[:i], p) {
			continue
		}
		if set := x.byProject[k][p]; set != nil {
			g.sets = append(g.sets, set)
		}
	}
	for _, s := range g.sets {
		size += len(s.conns)
	}
	// An entity rarely has more than a few sockets; the bound only chooses a strategy.
	size += 4 * (len(cand.UUIDs) + len(g.uuids))
	return g.sets, g.uuids, size
}

// candidateLocked reports whether c is in one of sets or its entity in one of the uuid lists
// (the index's read lock held, so its slots are stable).
func (c *Conn) candidateLocked(sets []*connSet, uuids, more []string) bool {
	for _, sl := range c.ixSlots {
		if slices.Contains(sets, sl.set) {
			return true
		}
	}
	return slices.Contains(uuids, c.uuid) || slices.Contains(more, c.uuid)
}
