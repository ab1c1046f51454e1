package rooms

import (
	"errors"
	"net/http"
	"strings"
)

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
