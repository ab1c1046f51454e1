package rooms

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryStore is the in-memory [Store]: one mutex, lazy expiry on reads, deletion by Sweep.
// Its zero value is not usable; call [NewMemoryStore].
type MemoryStore struct {
	mu     sync.Mutex
	rooms  map[string]*memRoom
	owners map[string]map[string]struct{}
	tombs  map[string]map[string]memTomb
	hawk   map[string]memHawk
	nonces map[string]time.Time
	// hawkPurged is when PutHawkSession last dropped expired sessions to make room.
	hawkPurged time.Time
}

type memRoom struct {
	room  Room
	parts map[string]*Participant
}

type memTomb struct {
	at    int64
	until time.Time
}

type memHawk struct {
	key   string
	until time.Time
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		rooms: map[string]*memRoom{}, owners: map[string]map[string]struct{}{},
		tombs: map[string]map[string]memTomb{}, hawk: map[string]memHawk{}, nonces: map[string]time.Time{},
	}
}

// live returns the room if it exists and has not expired. Callers hold mu.
func (m *MemoryStore) live(token string, now time.Time) (*memRoom, error) {
	r, ok := m.rooms[token]
	if !ok || r.room.Expired(now) {
		return nil, ErrNotFound
	}
	return r, nil
}

// CreateRoom implements [Store].
func (m *MemoryStore) CreateRoom(_ context.Context, r Room, now time.Time, maxPerOwner int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rooms[r.Token]; ok {
		return ErrExists
	}
	set := m.owners[r.OwnerID]
	if maxPerOwner > 0 && len(set) >= maxPerOwner { // the set may hold expired rooms not yet swept
		n := 0
		for tok := range set {
			if _, err := m.live(tok, now); err == nil {
				n++
			}
		}
		if n >= maxPerOwner {
			return ErrLimit
		}
	}
	m.rooms[r.Token] = &memRoom{room: r}
	if set == nil {
		set = map[string]struct{}{}
		m.owners[r.OwnerID] = set
	}
	set[r.Token] = struct{}{}
	return nil
}

// Room implements [Store].
func (m *MemoryStore) Room(_ context.Context, token string, now time.Time) (Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.live(token, now)
	if err != nil {
		return Room{}, err
	}
	return r.room, nil
}

// UpdateRoom implements [Store].
func (m *MemoryStore) UpdateRoom(_ context.Context, token string, now time.Time, fn func(*Room) error) (Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.live(token, now)
	if err != nil {
		return Room{}, err
	}
	c := r.room
	if err := fn(&c); err != nil {
		return Room{}, err
	}
	c.Token, c.OwnerID = r.room.Token, r.room.OwnerID // identity fields never change
	r.room = c
	return c, nil
}

// remove deletes a room and returns all its participant records, expired ones included (their
// state gauges still count them). Callers hold mu.
func (m *MemoryStore) remove(r *memRoom) []Participant {
	delete(m.rooms, r.room.Token)
	if set := m.owners[r.room.OwnerID]; set != nil {
		delete(set, r.room.Token)
		if len(set) == 0 {
			delete(m.owners, r.room.OwnerID)
		}
	}
	out := make([]Participant, 0, len(r.parts))
	for _, p := range r.parts {
		out = append(out, *p)
	}
	return out
}

// DeleteRoom implements [Store].
func (m *MemoryStore) DeleteRoom(_ context.Context, token string, now, tombUntil time.Time) (Room, []Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.live(token, now)
	if err != nil {
		return Room{}, nil, err
	}
	ps := m.remove(r)
	t := m.tombs[r.room.OwnerID]
	if t == nil {
		t = map[string]memTomb{}
		m.tombs[r.room.OwnerID] = t
	}
	if old, ok := t[token]; !ok || !now.Before(old.until) { // hsetnx: the first deletion time wins
		t[token] = memTomb{at: now.Unix(), until: tombUntil}
	}
	return r.room, ps, nil
}

// OwnerRooms implements [Store].
func (m *MemoryStore) OwnerRooms(_ context.Context, owner string, now time.Time) ([]Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Room
	for tok := range m.owners[owner] {
		if r, err := m.live(tok, now); err == nil {
			out = append(out, r.room)
		}
	}
	return out, nil
}

// AllRooms implements [Store].
func (m *MemoryStore) AllRooms(_ context.Context, now time.Time) ([]Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		if !r.room.Expired(now) {
			out = append(out, r.room)
		}
	}
	return out, nil
}

// Tombstones implements [Store].
func (m *MemoryStore) Tombstones(_ context.Context, owner string, now time.Time) ([]Tombstone, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Tombstone
	for tok, t := range m.tombs[owner] {
		if now.Before(t.until) {
			out = append(out, Tombstone{Token: tok, DeletedAt: t.at})
		}
	}
	return out, nil
}

// Join implements [Store].
func (m *MemoryStore) Join(_ context.Context, token string, now time.Time, decide func(*Room, []Participant) (Participant, error)) (Room, *Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.live(token, now)
	if err != nil {
		return Room{}, nil, err
	}
	ps := liveParts(r, now)
	c := r.room
	p, err := decide(&c, ps)
	if err != nil {
		return Room{}, nil, err
	}
	c.Token, c.OwnerID = r.room.Token, r.room.OwnerID
	r.room = c
	if r.parts == nil {
		r.parts = make(map[string]*Participant, 2)
	}
	prev := r.parts[p.ID]
	r.parts[p.ID] = &p
	if prev != nil {
		cp := *prev
		return c, &cp, nil
	}
	return c, nil, nil
}

func liveParts(r *memRoom, now time.Time) []Participant {
	out := make([]Participant, 0, len(r.parts))
	for _, p := range r.parts {
		if !p.Expired(now) {
			out = append(out, *p)
		}
	}
	sortParts(out)
	return out
}

// sortParts puts participants in a stable order (join time, then id) so listings do not shuffle.
func sortParts(out []Participant) {
	slices.SortFunc(out, func(a, b Participant) int {
		if c := a.JoinedAt.Compare(b.JoinedAt); c != 0 {
			return c
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}

// Participants implements [Store].
func (m *MemoryStore) Participants(_ context.Context, token string, now time.Time) ([]Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.live(token, now)
	if err != nil {
		return nil, err
	}
	return liveParts(r, now), nil
}

func (m *MemoryStore) part(token, id string, now time.Time) (*memRoom, *Participant, error) {
	r, err := m.live(token, now)
	if err != nil {
		return nil, nil, err
	}
	p, ok := r.parts[id]
	if !ok || p.Expired(now) {
		return r, nil, ErrNotFound
	}
	return r, p, nil
}

// Participant implements [Store].
func (m *MemoryStore) Participant(_ context.Context, token, id string, now time.Time) (Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, p, err := m.part(token, id, now)
	if err != nil {
		return Participant{}, err
	}
	return *p, nil
}

// UpdateParticipant implements [Store].
func (m *MemoryStore) UpdateParticipant(_ context.Context, token, id string, now time.Time, fn func(*Participant) error) (Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, p, err := m.part(token, id, now)
	if err != nil {
		return Participant{}, err
	}
	c := *p
	if err := fn(&c); err != nil {
		return Participant{}, err
	}
	c.ID = p.ID
	*p = c
	return c, nil
}

// DeleteParticipant implements [Store].
func (m *MemoryStore) DeleteParticipant(_ context.Context, token, id string, now time.Time) (Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, p, err := m.part(token, id, now)
	if err != nil {
		return Participant{}, err
	}
	delete(r.parts, id)
	return *p, nil
}

// PutHawkSession implements [Store].
func (m *MemoryStore) PutHawkSession(_ context.Context, idHash, key string, now, until time.Time, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.hawk[idHash]; !ok && max > 0 && len(m.hawk) >= max {
		// The map may hold expired sessions not yet swept; drop them, at most once a second so
		// that a flood at the cap does not scan the whole map per request.
		if now.Sub(m.hawkPurged) >= time.Second {
			m.hawkPurged = now
			for id, h := range m.hawk {
				if !now.Before(h.until) {
					delete(m.hawk, id)
				}
			}
		}
		if len(m.hawk) >= max {
			return ErrLimit
		}
	}
	m.hawk[idHash] = memHawk{key: key, until: until}
	return nil
}

// HawkSession implements [Store].
func (m *MemoryStore) HawkSession(_ context.Context, idHash string, now, until time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.hawk[idHash]
	if !ok || !now.Before(h.until) {
		return "", ErrNotFound
	}
	h.until = until
	m.hawk[idHash] = h
	return h.key, nil
}

// UseNonce implements [Store].
func (m *MemoryStore) UseNonce(_ context.Context, nonce string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.nonces[nonce]; ok && now.Before(t) {
		return false, nil
	}
	m.nonces[nonce] = until
	return true, nil
}

// Sweep implements [Store].
func (m *MemoryStore) Sweep(_ context.Context, now time.Time) (Expired, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out Expired
	for _, r := range m.rooms {
		if r.room.Expired(now) {
			out.Rooms = append(out.Rooms, ExpiredRoom{Room: r.room, Participants: m.remove(r)})
			continue
		}
		for id, p := range r.parts {
			if p.Expired(now) {
				delete(r.parts, id)
				out.Participants = append(out.Participants, ExpiredParticipant{Token: r.room.Token, Participant: *p})
			}
		}
	}
	for owner, ts := range m.tombs {
		for tok, t := range ts {
			if !now.Before(t.until) {
				delete(ts, tok)
			}
		}
		if len(ts) == 0 {
			delete(m.tombs, owner)
		}
	}
	for id, h := range m.hawk {
		if !now.Before(h.until) {
			delete(m.hawk, id)
		}
	}
	for n, t := range m.nonces {
		if !now.Before(t) {
			delete(m.nonces, n)
		}
	}
	return out, nil
}

// Counts implements [Store].
func (m *MemoryStore) Counts(_ context.Context, now time.Time) (Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := Counts{Participants: map[string]int{}}
	for _, r := range m.rooms {
		if r.room.Expired(now) {
			continue
		}
		c.Rooms++
		for _, p := range r.parts {
			if !p.Expired(now) {
				c.Participants[stateLabel(p.Status)]++
			}
		}
	}
	return c, nil
}

var _ Store = (*MemoryStore)(nil)
