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

// expiresSeconds is participantTTL in seconds (fractional when configured below a second).
func (s *Service) expiresSeconds() float64 { return s.cfg.ParticipantTTL.Seconds() }

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
	room, err := s.store.Room(r.Context(), r.PathValue("token"), s.now())
	if errors.Is(err, ErrNotFound) {
		return c, room, tokenNotFound()
	}
	return c, room, err
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
	token := r.PathValue("token")
	room, err := s.store.Room(r.Context(), token, s.now())
	if errors.Is(err, ErrNotFound) {
		err = tokenNotFound()
	}
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

// POST /registration
func (s *Service) registration(w http.ResponseWriter, r *http.Request) {
	_, raw, err := s.readBody(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, _, _ := strings.Cut(h, " "); !strings.EqualFold(scheme, "hawk") {
			s.writeErr(w, unauthorized(`Hawk error="Unsupported"`, "Unsupported"))
			return
		}
		if _, err := s.authHawk(r, raw); err != nil {
			s.writeErr(w, err)
			return
		}
		s.writeEmpty(w, http.StatusOK)
		return
	}
	if err := s.limit(r.Context(), s.cfg.RegistrationLimiter, sourceKey(r), RefusedRegistrationRate); err != nil {
		s.writeErr(w, err)
		return
	}
	raw32 := make([]byte, 32)
	tok := randomHex(raw32)
	id, key, err := DeriveHawkCredentials(tok)
	if err == nil {
		now := s.now()
		err = s.store.PutHawkSession(r.Context(), s.keyed("hawk-id", id), key, now, now.Add(s.cfg.HawkUnusedSessionTTL), s.cfg.MaxHawkSessions)
	}
	if errors.Is(err, ErrLimit) {
		err = s.refuseCap(RefusedHawkSessions, tooManySessions(), "max", s.cfg.MaxHawkSessions)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	w.Header().Set("Hawk-Session-Token", tok)
	w.Header().Set("Access-Control-Expose-Headers", "Hawk-Session-Token")
	s.writeEmpty(w, http.StatusOK)
}

// POST /rooms/{token}
func (s *Service) action(w http.ResponseWriter, r *http.Request) {
	b, raw, err := s.readBody(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	token := r.PathValue("token")
	room, err := s.store.Room(r.Context(), token, s.now())
	if errors.Is(err, ErrNotFound) {
		err = tokenNotFound()
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	c, err := s.authenticate(r, raw, token, true, true)
	if err == nil {
		err = acceptsJSON(r)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if !b.has("action") {
		s.writeErr(w, missing(msgAction))
		return
	}
	act := b.text("action")
	switch act {
	case "join", "refresh", "status", "leave", "logDomain":
	default:
		s.writeErr(w, badParam(msgAction))
		return
	}
	if act != "join" && c.scheme == schemeNone {
		s.writeErr(w, unauthorized("Basic,Hawk", "Unauthorized"))
		return
	}
	if c.scheme == schemeNone { // an anonymous join creates a participant and a credential
		if err := s.limit(r.Context(), s.cfg.RequestLimiter, sourceKey(r), RefusedRequestRate); err != nil {
			s.writeErr(w, err)
			return
		}
	}
	switch act {
	case "join":
		err = s.join(w, r, c, b, room)
	case "refresh":
		err = s.refresh(w, r, c, room)
	case "status":
		err = s.status(w, r, c, b, room)
	case "leave":
		err = s.leave(w, r, c, room)
	case "logDomain":
		err = s.logDomain(w, r, c, b, room)
	}
	if err != nil {
		s.writeErr(w, err)
	}
}

func (s *Service) join(w http.ResponseWriter, r *http.Request, c caller, b body, room Room) error {
	if e := b.missingList([]string{"displayName"}, []string{"clientMaxSize"}); e != nil {
		return e
	}
	cms, ok := ParseIntJS(b["clientMaxSize"])
	if !ok {
		return badParam("clientMaxSize should be a number.")
	}
	name := b.text("displayName")
	if jsLen(name) > s.cfg.MaxDisplayNameSize {
		return badParam("displayName should be shorter than " + itoa(s.cfg.MaxDisplayNameSize) + " characters")
	}
	var sessionToken string
	part := Participant{
		ConnectionID: uuid4(), DisplayName: name, ClientMaxSize: int(min(max(cms, -1<<31), 1<<31-1)), UserID: c.user,
		ID: c.part,
	}
	switch c.scheme {
	case schemeNone:
		sessionToken = randomToken(32)
		part.ID, part.Basic = s.keyed("session-token", sessionToken), true
	case schemeBasic:
		sessionToken, part.Basic = c.basicToken, true
	default:
		sessionToken = randomToken(32)
	}
	if c.scheme == schemeToken {
		part.Kind, part.UUID = c.principal.Kind, c.principal.UUID
	}
	isOwner := c.user != "" && c.user == room.OwnerID
	now := s.now()
	part.JoinedAt, part.ExpiresAt = now, now.Add(s.cfg.ParticipantTTL)
	stored, _, err := s.store.Join(r.Context(), room.Token, now, func(x *Room, ps []Participant) (Participant, error) {
		others := make([]Participant, 0, len(ps))
		ownerIn := false
		for _, p := range ps {
			if p.ID == part.ID || (c.user != "" && p.UserID == c.user) {
				continue // a rejoin does not count against capacity
			}
			others = append(others, p)
			ownerIn = ownerIn || (p.UserID != "" && p.UserID == x.OwnerID)
		}
		limit := x.MaxSize
		for _, o := range others {
			limit = min(limit, o.ClientMaxSize)
		}
		spare := limit - len(others)
		if !ownerIn && !isOwner {
			spare-- // a seat is kept for the owner
		}
		if spare <= 0 {
			return Participant{}, errf(http.StatusBadRequest, ErrnoRoomFull, msgRoomFull)
		}
		if cms <= int64(len(others)) {
			return Participant{}, errf(http.StatusBadRequest, ErrnoClientReachedCapacity, msgClientCapacity)
		}
		_ = s.touch(now)(x)
		if busyKindOf(part) != 0 {
			x.Directory = true
		}
		return part, nil
	})
	if errors.Is(err, ErrNotFound) {
		err = tokenNotFound()
	}
	if err != nil {
		return err
	}
	s.m.changes.WithLabelValues("join").Inc()
	s.presenceJoin(r.Context(), stored, part)
	s.writeJSON(w, http.StatusOK, map[string]any{
		"apiKey": s.cfg.APIKey, "sessionId": stored.SessionID, "sessionToken": sessionToken, "expires": s.expiresSeconds(),
	})
	return nil
}

func (s *Service) refresh(w http.ResponseWriter, r *http.Request, c caller, room Room) error {
	now := s.now()
	_, err := s.store.UpdateParticipant(r.Context(), room.Token, c.part, now, func(p *Participant) error {
		p.ExpiresAt = now.Add(s.cfg.ParticipantTTL)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusGone, ErrnoExpired, msgExpired)
	}
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"expires": s.expiresSeconds()})
	return nil
}

func (s *Service) status(w http.ResponseWriter, r *http.Request, c caller, b body, room Room) error {
	u, e := parseStatus(b, s.cfg.MaxFieldSize)
	if e != nil {
		s.m.rejected.WithLabelValues("invalid").Inc()
		return e
	}
	if s.cfg.Strict && !known(States, u.State) {
		s.m.rejected.WithLabelValues("strict").Inc()
		return badParam("Unknown state '" + u.State + "'.")
	}
	now := s.now()
	_, err := s.store.UpdateParticipant(r.Context(), room.Token, c.part, now, func(p *Participant) error {
		if s.cfg.Strict {
			if e := checkStrict(p.Status.State, u); e != nil {
				return e
			}
		}
		p.Status = Status{State: u.State, Event: u.Event, Connections: u.Connections, SendStreams: u.SendStreams,
			RecvStreams: u.RecvStreams, Updates: p.Status.Updates + 1, UpdatedAt: now}
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		s.m.rejected.WithLabelValues("not_participant").Inc()
		return errf(http.StatusBadRequest, ErrnoNotRoomParticipant, msgStatusNotIn)
	case err != nil:
		var e *Error
		if errors.As(err, &e) {
			s.m.rejected.WithLabelValues("strict").Inc()
		}
		return err
	}
	s.m.updates.WithLabelValues(eventLabel(u.Event)).Inc()
	s.writeEmpty(w, http.StatusNoContent)
	return nil
}

func (s *Service) leave(w http.ResponseWriter, r *http.Request, c caller, room Room) error {
	now := s.now()
	p, err := s.store.DeleteParticipant(r.Context(), room.Token, c.part, now)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusBadRequest, ErrnoNotRoomParticipant, msgLeaveNotIn)
	}
	if err != nil {
		return err
	}
	s.m.changes.WithLabelValues("leave").Inc()
	if updated, err := s.store.UpdateRoom(r.Context(), room.Token, now, s.touch(now)); err == nil {
		room = updated
	}
	s.presenceLeave(r.Context(), room, p)
	s.writeEmpty(w, http.StatusNoContent)
	return nil
}

func (s *Service) logDomain(w http.ResponseWriter, r *http.Request, c caller, b body, room Room) error {
	if e := b.missingList([]string{"domains"}); e != nil {
		return e
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(b["domains"], &list) != nil {
		return badParam(msgDomains)
	}
	if len(list) > s.cfg.MaxDomains {
		return badParam("domains should contain at most " + itoa(s.cfg.MaxDomains) + " entries.")
	}
	var total int64
	for _, d := range list {
		if d == nil || !body(d).has("domain") || !body(d).has("count") {
			return badParam(msgDomains)
		}
		if jsLen(body(d).text("domain")) > s.cfg.MaxFieldSize {
			return badParam("domain should be shorter than " + itoa(s.cfg.MaxFieldSize) + " characters")
		}
		if n, ok := ParseIntJS(d["count"]); ok && n > 0 {
			total += n
		}
	}
	if _, err := s.store.Participant(r.Context(), room.Token, c.part, s.now()); err != nil {
		if errors.Is(err, ErrNotFound) {
			return errf(http.StatusBadRequest, ErrnoNotRoomParticipant, msgStatusNotIn)
		}
		return err
	}
	for _, d := range list {
		s.log.Debug("room shared domain", "room", room.Token, "domain", body(d).text("domain"), "count", body(d).text("count"))
	}
	s.m.domains.Add(float64(total))
	s.writeEmpty(w, http.StatusNoContent)
	return nil
}

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
