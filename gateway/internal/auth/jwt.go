package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/teragate/teragate/gateway/internal/directory"
)

// claims are OpenTera's token claims (TeraUser.get_token, TeraParticipant dynamic tokens,
// TeraDevice tokens). Exactly one of the three uuid claims says whose token it is. Claims OpenTera
// adds that teragate does not use (id_user, service_access, …) are ignored when verifying.
//
// Decoding is strict where the jwt library is lenient: exp, nbf and iat must be JSON numbers (the
// library also takes numeric strings such as "9999999999"), iss must be a string. jti may be a
// string or, as OpenTera's per-process counter, a number; a number is not a usable revocation id
// (every OpenTera process counts from 0), so such a token is revoked by its content instead.
type claims struct {
	Issuer          string           `json:"iss,omitempty"`
	ExpiresAt       *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore       *jwt.NumericDate `json:"nbf,omitempty"`
	IssuedAt        *jwt.NumericDate `json:"iat,omitempty"`
	ID              string           `json:"jti,omitempty"`
	UserUUID        string           `json:"user_uuid,omitempty"`
	UserFullname    string           `json:"user_fullname,omitempty"`
	UserSuperadmin  *bool            `json:"user_superadmin,omitempty"`
	ParticipantUUID string           `json:"participant_uuid,omitempty"`
	DeviceUUID      string           `json:"device_uuid,omitempty"`
}

// UnmarshalJSON decodes the claims, refusing time claims that are not JSON numbers.
func (c *claims) UnmarshalJSON(b []byte) error {
	type plain claims // without this method
	var w struct {
		*plain
		// These shadow plain's fields of the same names.
		ExpiresAt json.RawMessage `json:"exp"`
		NotBefore json.RawMessage `json:"nbf"`
		IssuedAt  json.RawMessage `json:"iat"`
		ID        json.RawMessage `json:"jti"`
	}
	w.plain = (*plain)(c)
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **jwt.NumericDate
	}{{"exp", w.ExpiresAt, &c.ExpiresAt}, {"nbf", w.NotBefore, &c.NotBefore}, {"iat", w.IssuedAt, &c.IssuedAt}} {
		d, err := numericDate(f.name, f.raw)
		if err != nil {
			return err
		}
		*f.dst = d
	}
	c.ID = ""
	if len(w.ID) > 0 && w.ID[0] == '"' {
		if err := json.Unmarshal(w.ID, &c.ID); err != nil {
			return fmt.Errorf("jti: %w", err)
		}
	}
	return nil
}

// numericDate decodes a time claim: absent or null gives nil; anything but a JSON number is an
// error naming the claim.
func numericDate(name string, raw json.RawMessage) (*jwt.NumericDate, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return nil, fmt.Errorf("%s claim must be a number of seconds, not %s", name, jsonKind(raw[0]))
	}
	var d jwt.NumericDate
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%s claim: %w", name, err)
	}
	return &d, nil
}

// jsonKind names the JSON type a value starting with c has.
func jsonKind(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	default:
		return "malformed"
	}
}

// The jwt.Claims methods.

func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *claims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *claims) GetSubject() (string, error)                  { return "", nil }
func (c *claims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// subject returns the kind and uuid the claims name, or false unless exactly one is set.
func (c *claims) subject() (directory.Kind, string, bool) {
	var (
		kind directory.Kind
		uuid string
		n    int
	)
	if c.UserUUID != "" {
		kind, uuid, n = directory.KindUser, c.UserUUID, n+1
	}
	if c.ParticipantUUID != "" {
		kind, uuid, n = directory.KindParticipant, c.ParticipantUUID, n+1
	}
	if c.DeviceUUID != "" {
		kind, uuid, n = directory.KindDevice, c.DeviceUUID, n+1
	}
	return kind, uuid, n == 1
}

var errNoSubject = errors.New("no single user_uuid, participant_uuid or device_uuid claim")

// keyFor picks the verification key from the (not yet verified) claims.
func (a *Authenticator) keyFor(t *jwt.Token) (any, error) {
	c, ok := t.Claims.(*claims)
	if !ok {
		return nil, errNoSubject
	}
	kind, _, ok := c.subject()
	if !ok {
		return nil, errNoSubject
	}
	return a.keys[kind], nil
}

// IssueToken signs an HS256 JWT for a user, participant or device with OpenTera's claims: iat,
// exp (now + TokenTTL), iss "TeraServer", a random jti (uuid4 format), and user_uuid,
// user_fullname and user_superadmin for a user, participant_uuid for a participant, device_uuid for
// a device. The entity must exist and be enabled in the current directory ([ErrUnknownUser],
// [ErrDisabled]); services get [ErrKind] (they use static tokens).
func (a *Authenticator) IssueToken(p Principal) (string, error) {
	if _, err := a.gate(p, nil); err != nil {
		return "", err
	}
	snap := a.dir.Current()
	now := a.now()
	c := claims{
		Issuer:    Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(a.ttl)),
		ID:        newUUID(),
	}
	switch p.Kind {
	case directory.KindUser:
		u, ok := snap.User(p.UUID)
		if !ok {
			return "", fmt.Errorf("%w: user %s", ErrUnknownUser, p.UUID)
		}
		if !u.Enabled {
			return "", ErrDisabled
		}
		super := u.Superadmin
		c.UserUUID, c.UserFullname, c.UserSuperadmin = u.UUID, u.Fullname, &super
	case directory.KindParticipant:
		if !snap.Enabled(p.Kind, p.UUID) {
			return "", a.issueErr(snap, p)
		}
		c.ParticipantUUID = p.UUID
	case directory.KindDevice:
		if !snap.Enabled(p.Kind, p.UUID) {
			return "", a.issueErr(snap, p)
		}
		c.DeviceUUID = p.UUID
	default:
		return "", fmt.Errorf("%w: no JWT for %s", ErrKind, p.Kind)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, &c).SignedString(a.keys[p.Kind])
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}

func (a *Authenticator) issueErr(snap *directory.Snapshot, p Principal) error {
	if _, ok := snap.Entity(p.Kind, p.UUID); ok {
		return ErrDisabled
	}
	return fmt.Errorf("%w: %s %s", ErrUnknownUser, p.Kind, p.UUID)
}

// verifyJWT checks signature (HS256 only, with the key of the kind the claims name), iss ("TeraServer",
// what teragate and OpenTera both set), expiry and not-before, revocation, and that the entity is
// still in snap and enabled.
func (a *Authenticator) verifyJWT(ctx context.Context, snap *directory.Snapshot, raw string) (Principal, error) {
	var c claims
	if _, err := a.parser.ParseWithClaims(raw, &c, a.keyFor); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Principal{}, ErrExpiredToken
		}
		// The jwt error text says what was wrong (signature, algorithm, format) without the token.
		return Principal{}, fmt.Errorf("%w: %s", ErrInvalidToken, err.Error())
	}
	kind, uuid, _ := c.subject() // keyFor already required exactly one
	id := c.ID
	if id == "" {
		// OpenTera tokens always carry a jti; for others, revoke by content.
		sum := sha256.Sum256([]byte(raw))
		id = "sha256:" + hex.EncodeToString(sum[:16])
	}
	revoked, err := a.revoked.Revoked(ctx, id)
	if err != nil {
		return Principal{}, fmt.Errorf("auth: revocation check: %w", err) // fail closed
	}
	if revoked {
		return Principal{}, ErrRevokedToken
	}
	if _, ok := snap.Entity(kind, uuid); !ok {
		return Principal{}, fmt.Errorf("%w: %s %s is not in the directory", ErrInvalidToken, kind, uuid)
	}
	if !snap.Enabled(kind, uuid) {
		return Principal{}, ErrDisabled
	}
	p := Principal{Kind: kind, UUID: uuid, TokenID: id, ExpiresAt: c.ExpiresAt.UTC()}
	if kind == directory.KindUser {
		u, _ := snap.User(uuid)
		p.Admin = u.Superadmin // the directory decides, not the token's user_superadmin claim
	}
	return p, nil
}

// newUUID returns a random version-4 uuid, the jti format OpenTera uses.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

var _ jwt.Claims = (*claims)(nil)
