package rooms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// PresenceSource is the source of the TeraModuleMessages the service sends to the user manager.
const PresenceSource = "module.teragate.rooms"

// Service serves the rooms API. Create it with [New], mount it with [Service.Mount] and run
// its expiry sweep with [Service.Run].
type Service struct {
	cfg   Config
	store Store
	log   hclog.Logger
	now   func() time.Time
	m     *metricsSet
	// capWarned is the Unix second of the last warning that the Hawk session cap was hit.
	capWarned atomic.Int64
}

// New returns a service; cfg's zero fields get their defaults.
func New(cfg Config) *Service {
	cfg = cfg.withDefaults()
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	return &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now,
		m: newMetrics(cfg.Registerer, newGauges(cfg.Store, cfg.Now, cfg.Logger))}
}

// Mount registers the routes with handle (for example (*api.API).Handle), at the root and under
// /v1.
func (s *Service) Mount(handle func(pattern, name string, h http.HandlerFunc)) {
	for _, p := range []string{"", "/v1"} {
		handle("POST "+p+"/rooms", "rooms_create", s.create)
		handle("GET "+p+"/rooms", "rooms_list", s.list)
		handle("PATCH "+p+"/rooms", "rooms_bulk_delete", s.bulkDelete)
		handle("GET "+p+"/rooms/{token}", "rooms_get", s.get)
		handle("PATCH "+p+"/rooms/{token}", "rooms_update", s.update)
		handle("DELETE "+p+"/rooms/{token}", "rooms_delete", s.delete)
		handle("POST "+p+"/rooms/{token}", "rooms_action", s.action)
		handle("POST "+p+"/registration", "rooms_registration", s.registration)
	}
	handle("GET /api/admin/rooms", "rooms_admin", s.admin)
}

// Handler returns an http.Handler with only the rooms routes (tests, embedding).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Mount(func(pattern, _ string, h http.HandlerFunc) { mux.HandleFunc(pattern, h) })
	return mux
}

// Run sweeps expired records every SweepInterval until ctx is done.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("rooms sweep failed", "error", err)
			}
		}
	}
}

// Sweep deletes what has expired and publishes the consequences: a participant's expiry makes it
// leave (room ctime and lifetime extended, LeaveSessionEvent), a room's expiry stops its session.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	for _, l := range []Limiter{s.cfg.RegistrationLimiter, s.cfg.RequestLimiter} {
		if p, ok := l.(interface{ Prune(time.Time) }); ok {
			p.Prune(now)
		}
	}
	exp, err := s.store.Sweep(ctx, now)
	if err != nil {
		return err
	}
	for _, r := range exp.Rooms {
		if r.Room.Directory {
			s.presenceStop(ctx, r.Room, r.Participants)
		}
		s.log.Debug("room expired", "room", r.Room.Token)
	}
	for _, e := range exp.Participants {
		s.m.changes.WithLabelValues("expire").Inc()
		room, err := s.store.UpdateRoom(ctx, e.Token, now, s.touch(now))
		if err != nil {
			continue // the room is gone too
		}
		s.presenceLeave(ctx, room, e.Participant)
	}
	return nil
}

// touch is Loop's emitRoomEvent: ctime = now, lifetime = extendTTL.
func (s *Service) touch(now time.Time) func(*Room) error {
	return func(r *Room) error {
		r.UpdateTime = now.Unix()
		r.ExpiresAt = now.Add(s.cfg.ExtendTTL).Unix()
		return nil
	}
}

// limit takes one token from key's budget in l (nil: no limit). A refusal is counted under
// reason and returned as 429 errno 123 with the wait as Retry-After; a limiter failure is
// returned as is (503: fail closed).
func (s *Service) limit(ctx context.Context, l Limiter, key, reason string) error {
	if l == nil {
		return nil
	}
	wait, err := l.Allow(ctx, key, s.now())
	if err != nil {
		return err
	}
	if wait > 0 {
		s.m.refused.WithLabelValues(reason).Inc()
		s.log.Debug("rooms request refused", "reason", reason, "key", key, "retry_after", wait)
		return tooManyRequests(wait)
	}
	return nil
}

// refuseCap counts and logs a refusal by a cap; the warning is given at most once a minute.
func (s *Service) refuseCap(reason string, e *Error, args ...any) error {
	s.m.refused.WithLabelValues(reason).Inc()
	now := s.now().Unix()
	if last := s.capWarned.Load(); now-last >= 60 && s.capWarned.CompareAndSwap(last, now) {
		s.log.Warn("rooms cap reached; refusing", append([]any{"reason", reason}, args...)...)
	} else {
		s.log.Debug("rooms cap reached; refusing", append([]any{"reason", reason}, args...)...)
	}
	return e
}

// keyed returns the hex HMAC-SHA256 of v under the service secret, domain-separated by purpose.
func (s *Service) keyed(purpose, v string) string {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Service) roomURL(token string) string {
	return strings.ReplaceAll(s.cfg.WebAppURL, "{token}", token)
}

// Authentication schemes of a caller.
const (
	schemeNone = iota
	schemeBasic
	schemeHawk
	schemeToken
)

// caller is the authenticated identity of a request.
type caller struct {
	scheme int
	// user is compared with Room.OwnerID (Loop's req.user); empty for anonymous and Basic.
	user string
	// part is the participant key (Loop's participantHmac).
	part string
	// basicToken is the presented session token (Basic).
	basicToken string
	// principal is the directory principal (schemeToken).
	principal auth.Principal
}

// authenticate resolves the Authorization header. token is the room token (Basic credentials are
// per room); allowBasic and allowNone select the schemes of the route.
func (s *Service) authenticate(r *http.Request, raw []byte, token string, allowBasic, allowNone bool) (caller, error) {
	h := r.Header.Get("Authorization")
	supported := "Hawk"
	if allowBasic {
		supported = "Basic,Hawk"
	}
	if h == "" {
		if allowNone {
			return caller{}, nil
		}
		return caller{}, unauthorized(supported, "Unauthorized")
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "hawk":
		return s.authHawk(r, raw)
	case "opentera", "bearer":
		if s.cfg.Authenticate != nil {
			return s.authToken(r)
		}
	case "basic":
		if allowBasic {
			return s.authBasic(rest, token, r)
		}
	}
	return caller{}, unauthorized(supported+` error="Unsupported"`, "Unsupported")
}

func (s *Service) authToken(r *http.Request) (caller, error) {
	p, err := s.cfg.Authenticate(r)
	if err != nil {
		return caller{}, unauthorized(`Bearer error="Invalid token; it may have expired."`, "Invalid token; it may have expired.")
	}
	id := "tg:" + p.Kind.String() + ":" + p.UUID
	if err := s.limit(r.Context(), s.cfg.RequestLimiter, id, RefusedRequestRate); err != nil {
		return caller{}, err
	}
	return caller{scheme: schemeToken, user: id, part: id, principal: p}, nil
}

func (s *Service) authBasic(rest, token string, r *http.Request) (caller, error) {
	parts := strings.Split(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if len(parts) != 2 {
		return caller{}, unauthorized("Basic", "Unauthorized")
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return caller{}, unauthorized("Basic", "Unauthorized")
	}
	st := strings.TrimSuffix(string(dec), ":")
	id := s.keyed("session-token", st)
	p, err := s.store.Participant(r.Context(), token, id, s.now())
	if err != nil && !errors.Is(err, ErrNotFound) {
		return caller{}, err
	}
	if err != nil || !p.Basic {
		const msg = "Invalid token; it may have expired."
		return caller{}, unauthorized(`Basic error="`+msg+`"`, msg)
	}
	if err := s.limit(r.Context(), s.cfg.RequestLimiter, "basic:"+id, RefusedRequestRate); err != nil {
		return caller{}, err
	}
	return caller{scheme: schemeBasic, part: id, basicToken: st}, nil
}

// authHawk verifies a Hawk request: header, credentials, MAC, payload hash, nonce, timestamp.
func (s *Service) authHawk(r *http.Request, raw []byte) (caller, error) {
	fail := func(err error) (caller, error) {
		m := HawkMessage(err)
		return caller{}, unauthorized(`Hawk error="`+m+`"`, m)
	}
	a, err := ParseHawkHeader(r.Header.Get("Authorization"))
	if err != nil {
		return fail(err)
	}
	ts, err := strconv.ParseInt(a.TS, 10, 64)
	if err != nil {
		return fail(ErrHawkBadAttrValue)
	}
	now := s.now()
	idHash := s.keyed("hawk-id", a.ID)
	key, err := s.store.HawkSession(r.Context(), idHash, now, now.Add(s.cfg.HawkSessionTTL))
	if errors.Is(err, ErrNotFound) {
		return fail(ErrHawkUnknownCreds)
	}
	if err != nil {
		return caller{}, err
	}
	if !hmac.Equal([]byte(HawkMAC(key, HawkRequestOf(r), a)), []byte(a.MAC)) {
		return fail(ErrHawkBadMAC)
	}
	if a.Hash != "" && !hmac.Equal([]byte(HawkPayloadHash(r.Header.Get("Content-Type"), raw)), []byte(a.Hash)) {
		return fail(ErrHawkBadPayload)
	}
	// The limit comes before the nonce is recorded, so a refused flood stores nothing.
	if err := s.limit(r.Context(), s.cfg.RequestLimiter, "hawk:"+idHash, RefusedRequestRate); err != nil {
		return caller{}, err
	}
	fresh, err := s.store.UseNonce(r.Context(), idHash+":"+a.Nonce, now, now.Add(2*s.cfg.HawkSkew))
	if err != nil {
		return caller{}, err
	}
	if !fresh {
		return fail(ErrHawkInvalidNonce)
	}
	if d := time.Duration(now.Unix()-ts) * time.Second; d > s.cfg.HawkSkew || d < -s.cfg.HawkSkew {
		m := HawkMessage(ErrHawkStale)
		e := unauthorized(`Hawk ts="`+strconv.FormatInt(now.Unix(), 10)+`", tsm="`+HawkTimestampMAC(key, now.Unix())+`", error="`+m+`"`, m)
		return caller{}, e
	}
	id := "hawk:" + idHash
	return caller{scheme: schemeHawk, user: id, part: id}, nil
}

// publish sends m to channel, as a TeraModuleMessage to the user manager or as a TeraEvent on a
// websocket topic. Failures are logged: the room operation has happened either way.
func (s *Service) publish(ctx context.Context, channel string, m proto.Message, module bool) {
	if s.cfg.Publish == nil {
		return
	}
	var payload []byte
	var err error
	if module {
		payload, err = presence.EncodeModuleMessage(PresenceSource, channel, m)
	} else {
		payload, err = presence.EncodeEvent(channel, m)
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		err = s.cfg.Publish(ctx, channel, payload)
		cancel()
	}
	if err != nil {
		s.log.Warn("rooms presence event not published", "channel", channel, "error", err)
	}
}

func busyKindOf(p Participant) directory.Kind {
	switch p.Kind {
	case directory.KindUser, directory.KindParticipant, directory.KindDevice:
		return p.Kind
	}
	return 0
}

func (s *Service) presenceJoin(ctx context.Context, room Room, p Participant) {
	k := busyKindOf(p)
	if k == 0 {
		return
	}
	ev := &opentera.JoinSessionEvent{SessionUuid: room.SessionID, SessionUrl: s.roomURL(room.Token), SessionCreatorName: room.Owner}
	switch k {
	case directory.KindUser:
		ev.SessionUsers = []string{p.UUID}
	case directory.KindParticipant:
		ev.SessionParticipants = []string{p.UUID}
	default:
		ev.SessionDevices = []string{p.UUID}
	}
	s.publish(ctx, topic.UserManagerMessages, ev, true)
	s.publish(ctx, topic.Direct(k, p.UUID), ev, false)
}

func (s *Service) presenceLeave(ctx context.Context, room Room, p Participant) {
	k := busyKindOf(p)
	if k == 0 {
		return
	}
	ev := &opentera.LeaveSessionEvent{SessionUuid: room.SessionID}
	switch k {
	case directory.KindUser:
		ev.LeavingUsers = []string{p.UUID}
	case directory.KindParticipant:
		ev.LeavingParticipants = []string{p.UUID}
	default:
		ev.LeavingDevices = []string{p.UUID}
	}
	s.publish(ctx, topic.UserManagerMessages, ev, true)
}

func (s *Service) presenceStop(ctx context.Context, room Room, ps []Participant) {
	ev := &opentera.StopSessionEvent{SessionUuid: room.SessionID}
	s.publish(ctx, topic.UserManagerMessages, ev, true)
	for _, p := range ps {
		if k := busyKindOf(p); k != 0 {
			s.publish(ctx, topic.Direct(k, p.UUID), ev, false)
		}
	}
}

func randomHex(b []byte) string {
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
