package rooms

import (
	"encoding/json"
	"errors"
	"net/http"
)

// expiresSeconds is participantTTL in seconds (fractional when configured below a second).
func (s *Service) expiresSeconds() float64 { return s.cfg.ParticipantTTL.Seconds() }

// POST /rooms/{token}
func (s *Service) action(w http.ResponseWriter, r *http.Request) {
	b, raw, err := s.readBody(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	token, room, err := s.pathRoom(r)
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
