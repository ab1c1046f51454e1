package rooms

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// GET /rooms[?version=N]
func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	c, err := s.authenticate(r, nil, "", false, false)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	var version int64
	hasVersion := r.URL.Query().Has("version")
	if hasVersion {
		v, ok := ParseIntJS(json.RawMessage(strconv.Quote(r.URL.Query().Get("version"))))
		if !ok {
			s.writeErr(w, badParam("version should be a valid number"))
			return
		}
		version = v
	}
	now := s.now()
	rooms, err := s.store.OwnerRooms(r.Context(), c.user, now)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	slices.SortFunc(rooms, func(a, b Room) int {
		if a.UpdateTime != b.UpdateTime {
			return int(a.UpdateTime - b.UpdateTime)
		}
		return strings.Compare(a.Token, b.Token)
	})
	out := make([]any, 0, len(rooms))
	for _, room := range rooms {
		if hasVersion && room.UpdateTime < version {
			continue
		}
		ps, err := s.store.Participants(r.Context(), room.Token, now)
		if err != nil {
			continue // expired meanwhile
		}
		out = append(out, s.full(room, ps, true))
	}
	if hasVersion && version > 0 {
		ts, err := s.store.Tombstones(r.Context(), c.user, now)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		slices.SortFunc(ts, func(a, b Tombstone) int { return int(a.DeletedAt - b.DeletedAt) })
		for _, t := range ts {
			if t.DeletedAt >= version {
				out = append(out, map[string]any{"roomToken": t.Token, "deleted": true})
			}
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

// PATCH /rooms (bulk delete)
func (s *Service) bulkDelete(w http.ResponseWriter, r *http.Request) {
	b, raw, err := s.readBody(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	c, err := s.authenticate(r, raw, "", false, false)
	if err == nil {
		err = acceptsJSON(r)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if e := b.missingList([]string{"deleteRoomTokens"}); e != nil {
		s.writeErr(w, e)
		return
	}
	var tokens []string
	if json.Unmarshal(b["deleteRoomTokens"], &tokens) != nil {
		s.writeErr(w, badParam("deleteRoomTokens should be a list of room tokens."))
		return
	}
	if len(tokens) == 0 {
		s.writeErr(w, badParam("deleteRoomTokens should not be empty."))
		return
	}
	if len(tokens) > maxBulkTokens {
		s.writeErr(w, badParam("deleteRoomTokens should not contain more than "+itoa(maxBulkTokens)+" tokens."))
		return
	}
	type result struct {
		Code  int    `json:"code"`
		Errno int    `json:"errno,omitempty"`
		Error string `json:"error,omitempty"`
	}
	res := make(map[string]result, len(tokens))
	found := false
	for _, tok := range tokens {
		room, err := s.store.Room(r.Context(), tok, s.now())
		if err == nil && room.OwnerID == c.user {
			err = s.deleteRoom(r, tok)
		} else if err == nil || errors.Is(err, ErrNotFound) {
			err = tokenNotFound()
		}
		var e *Error
		switch {
		case err == nil:
			res[tok] = result{Code: http.StatusOK}
			found = true
		case errors.As(err, &e) && e.Code == http.StatusNotFound:
			res[tok] = result{Code: http.StatusNotFound, Errno: ErrnoInvalidToken, Error: msgRoomNotFound}
		default:
			s.writeErr(w, err)
			return
		}
	}
	code := http.StatusNotFound
	if found {
		code = http.StatusMultiStatus
	}
	s.writeJSON(w, code, map[string]any{"responses": res})
}
