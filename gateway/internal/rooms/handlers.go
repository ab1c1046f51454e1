package rooms

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Loop's messages.
const (
	msgAction          = "action should be one of join, refresh, status, leave, logDomain"
	msgRoomFull        = "The room is full."
	msgClientCapacity  = "Too many participants in the room for you to handle."
	msgExpired         = "Participation has expired."
	msgStatusNotIn     = "Can't update status for a room you aren't in."
	msgLeaveNotIn      = "Unable to leave a room you have not joined."
	msgNotParticipant  = "Authenticated user is neither a participant of the room nor the room owner."
	msgContextShape    = "context should be an object containing `value`, `alg` and `wrappedKey` properties."
	msgNameDeprecated  = "roomName has been deprecated, please store it encrypted inside the context."
	msgAlertDeprecated = "The roomName parameter has been deprecated, you should use context."
	msgDomains         = "Domains must be a list of objects with both a ``domain`` and ``count`` property."
	msgRoomNotFound    = "Room not found."
	maxBulkTokens      = 1000
)

// roomParams are create/patch fields after validation; nil means not given.
type roomParams struct {
	name      *string
	context   json.RawMessage
	owner     *string
	maxSize   *int
	expiresIn *int
	channel   *string
	alert     bool
}

// roomParams is Loop's validateRoomParams (plus the fixes in doc.go).
func (s *Service) roomParams(b body) (roomParams, error) {
	var p roomParams
	if b.set("roomName") {
		n := b.text("roomName")
		p.name, p.alert = &n, true
		if jsLen(n) > s.cfg.MaxRoomNameSize {
			return p, badParam("roomName should be shorter than " + itoa(s.cfg.MaxRoomNameSize) + " characters")
		}
	}
	if b.has("context") {
		if p.name != nil {
			return p, badParam(msgNameDeprecated)
		}
		var obj map[string]json.RawMessage
		if isNull(b["context"]) || json.Unmarshal(b["context"], &obj) != nil || obj == nil ||
			!body(obj).has("value") || !body(obj).has("alg") || !body(obj).has("wrappedKey") {
			return p, badParam(msgContextShape)
		}
		p.context = json.RawMessage(strings.TrimSpace(string(b["context"])))
	}
	if b.set("roomOwner") {
		o := b.text("roomOwner")
		if jsLen(o) > s.cfg.MaxRoomOwnerSize {
			return p, badParam("roomOwner should be shorter than " + itoa(s.cfg.MaxRoomOwnerSize) + " characters")
		}
		p.owner = &o
	}
	if b.has("expiresIn") {
		n, ok := ParseIntJS(b["expiresIn"])
		if !ok {
			return p, badParam("expiresIn should be a valid number")
		}
		if maxH := int64(s.cfg.MaxTTL / time.Hour); n > maxH {
			return p, badParam("expiresIn cannot be greater than " + strconv.FormatInt(maxH, 10))
		}
		e := int(n)
		p.expiresIn = &e
	}
	if b.has("maxSize") {
		n, ok := ParseIntJS(b["maxSize"])
		if !ok {
			return p, badParam("maxSize should be a valid number")
		}
		if n > int64(s.cfg.MaxSize) {
			return p, badParam("maxSize cannot be greater than " + itoa(s.cfg.MaxSize))
		}
		m := int(n)
		p.maxSize = &m
	}
	if b.set("channel") {
		c := b.text("channel")
		if jsLen(c) > s.cfg.MaxFieldSize {
			return p, badParam("channel should be shorter than " + itoa(s.cfg.MaxFieldSize) + " characters")
		}
		p.channel = &c
	}
	return p, nil
}

// POST /rooms
func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	b, raw, err := s.readBody(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	c, err := s.authenticate(r, raw, "", false, false)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if err := acceptsJSON(r); err != nil {
		s.writeErr(w, err)
		return
	}
	if e := b.missingList([]string{"context", "roomName"}, []string{"roomOwner"}, []string{"maxSize"}); e != nil {
		s.writeErr(w, e)
		return
	}
	p, err := s.roomParams(b)
	if p.alert {
		w.Header().Set("Alert", msgAlertDeprecated)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	now := s.now()
	expiresIn := int(s.cfg.DefaultTTL / time.Hour)
	if p.expiresIn != nil {
		expiresIn = *p.expiresIn
	}
	room := Room{
		Context: p.context, OwnerID: c.user, ExpiresIn: expiresIn, CreationTime: now.Unix(), UpdateTime: now.Unix(),
		ExpiresAt: now.Unix() + int64(expiresIn)*3600, Channel: "default", SessionID: uuid4(),
	}
	if p.name != nil {
		room.Name, room.HasName = *p.name, true
	}
	if p.owner != nil {
		room.Owner = *p.owner
	}
	if p.maxSize != nil {
		room.MaxSize = *p.maxSize
	}
	if p.channel != nil {
		room.Channel = *p.channel
	}
	for range 5 {
		room.Token = randomToken(s.cfg.TokenSize)
		if err = s.store.CreateRoom(r.Context(), room, now, s.cfg.MaxRoomsPerOwner); !errors.Is(err, ErrExists) {
			break
		}
	}
	if errors.Is(err, ErrLimit) {
		err = s.refuseCap(RefusedRoomsPerOwner, tooManyRooms(s.cfg.MaxRoomsPerOwner), "owner", c.user)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	s.log.Debug("room created", "room", room.Token)
	s.writeJSON(w, http.StatusCreated, map[string]any{"roomToken": room.Token, "roomUrl": s.roomURL(room.Token), "expiresAt": room.ExpiresAt})
}

// ownedRoom authenticates an owner request (Hawk or token), then validates the room token.
func (s *Service) ownedRoom(r *http.Request, raw []byte) (caller, Room, error) {
	c, err := s.authenticate(r, raw, "", false, false)
	if err != nil {
		return c, Room{}, err
	}
	_, room, err := s.pathRoom(r)
	return c, room, err
}

// pathRoom returns the request's {token} and its room; an unknown or expired token is
// [tokenNotFound].
func (s *Service) pathRoom(r *http.Request) (string, Room, error) {
	token := r.PathValue("token")
	room, err := s.store.Room(r.Context(), token, s.now())
	if errors.Is(err, ErrNotFound) {
		err = tokenNotFound()
	}
	return token, room, err
}

// PATCH /rooms/{token}
func (s *Service) update(w http.ResponseWriter, r *http.Request) {
	b, raw, err := s.readBody(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	c, room, err := s.ownedRoom(r, raw)
	if err == nil {
		err = acceptsJSON(r)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	p, err := s.roomParams(b)
	if p.alert {
		w.Header().Set("Alert", msgAlertDeprecated)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if c.user != room.OwnerID {
		s.writeErr(w, notOwner())
		return
	}
	now := s.now()
	room, err = s.store.UpdateRoom(r.Context(), room.Token, now, func(x *Room) error {
		if x.OwnerID != c.user {
			return notOwner()
		}
		if p.name != nil {
			x.Name, x.HasName = *p.name, true
		}
		if p.context != nil {
			x.Context = p.context
		}
		if p.owner != nil {
			x.Owner = *p.owner
		}
		if p.maxSize != nil {
			x.MaxSize = *p.maxSize
		}
		if p.channel != nil {
			x.Channel = *p.channel
		}
		if p.expiresIn != nil {
			x.ExpiresIn = *p.expiresIn
			x.ExpiresAt = now.Unix() + int64(*p.expiresIn)*3600
		}
		x.UpdateTime = now.Unix()
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		err = tokenNotFound()
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"expiresAt": room.ExpiresAt})
}

// DELETE /rooms/{token}
func (s *Service) delete(w http.ResponseWriter, r *http.Request) {
	c, room, err := s.ownedRoom(r, nil)
	if err == nil && c.user != room.OwnerID {
		err = notOwner()
	}
	if err == nil {
		err = s.deleteRoom(r, room.Token)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	s.writeEmpty(w, http.StatusNoContent)
}

func (s *Service) deleteRoom(r *http.Request, token string) error {
	now := s.now()
	room, ps, err := s.store.DeleteRoom(r.Context(), token, now, now.Add(s.cfg.DeletedTTL))
	if errors.Is(err, ErrNotFound) {
		return tokenNotFound()
	}
	if err != nil {
		return err
	}
	if room.Directory {
		var live []Participant
		for _, p := range ps {
			if !p.Expired(now) {
				live = append(live, p)
			}
		}
		s.presenceStop(r.Context(), room, live)
	}
	s.log.Debug("room deleted", "room", token)
	return nil
}

// GET /rooms/{token}
func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	token, room, err := s.pathRoom(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	c, err := s.authenticate(r, nil, token, true, true)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if c.scheme == schemeNone {
		s.writeJSON(w, http.StatusOK, s.public(room))
		return
	}
	ps, err := s.store.Participants(r.Context(), token, s.now())
	if errors.Is(err, ErrNotFound) {
		err = tokenNotFound()
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	owner := c.user != "" && c.user == room.OwnerID
	if !owner && !slices.ContainsFunc(ps, func(p Participant) bool { return p.ID == c.part }) {
		s.writeErr(w, errf(http.StatusForbidden, ErrnoUndefined, msgNotParticipant))
		return
	}
	s.writeJSON(w, http.StatusOK, s.full(room, ps, owner))
}
