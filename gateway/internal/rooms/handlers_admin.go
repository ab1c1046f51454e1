package rooms

import (
	"net/http"
	"slices"
	"strings"
)

// GET /api/admin/rooms
func (s *Service) admin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Authenticate == nil {
		s.writeErr(w, errf(http.StatusNotFound, ErrnoUndefined, "Resource not found."))
		return
	}
	p, err := s.cfg.Authenticate(r)
	if err != nil {
		s.writeErr(w, unauthorized("Bearer", "Unauthorized"))
		return
	}
	if !p.Admin {
		s.writeErr(w, errf(http.StatusForbidden, ErrnoUndefined, "Admin privileges required."))
		return
	}
	now := s.now()
	rooms, err := s.store.AllRooms(r.Context(), now)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	slices.SortFunc(rooms, func(a, b Room) int { return strings.Compare(a.Token, b.Token) })
	type adminRoom = fullView
	out := struct {
		Rooms        []adminRoom    `json:"rooms"`
		Participants int            `json:"participants"`
		States       map[string]int `json:"states"`
	}{Rooms: make([]adminRoom, 0, len(rooms)), States: map[string]int{}}
	for _, room := range rooms {
		ps, err := s.store.Participants(r.Context(), room.Token, now)
		if err != nil {
			continue
		}
		v := s.full(room, ps, true)
		out.Participants += len(ps)
		for k, n := range v.SessionState.States {
			out.States[k] += n
		}
		out.Rooms = append(out.Rooms, v)
	}
	s.writeJSON(w, http.StatusOK, out)
}
