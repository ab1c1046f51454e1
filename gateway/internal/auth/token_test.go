package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/auth"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// sign makes an HS256 JWT from raw claims, as another OpenTera server would.
func sign(t *testing.T, key string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
	require.NoError(t, err)
	return s
}

// forge builds a token with any header, signed with HMAC-SHA256 over key (or unsigned when key
// is empty), to try algorithm confusion.
func forge(t *testing.T, header, claims map[string]any, key string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	msg := enc(header) + "." + enc(claims)
	if key == "" {
		return msg + "."
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return msg + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// unverified decodes a JWT's claims without checking it.
func unverified(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(tok, c)
	require.NoError(t, err)
	return c
}

func TestIssueTokenRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		p         auth.Principal
		claim     string
		wantAdmin bool
	}{
		{name: "user", p: auth.Principal{Kind: directory.KindUser, UUID: aliceUUID}, claim: "user_uuid"},
		{name: "superadmin", p: auth.Principal{Kind: directory.KindUser, UUID: rootUUID}, claim: "user_uuid", wantAdmin: true},
		{name: "participant", p: auth.Principal{Kind: directory.KindParticipant, UUID: patUUID}, claim: "participant_uuid"},
		{name: "device", p: auth.Principal{Kind: directory.KindDevice, UUID: robotUUID}, claim: "device_uuid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, auth.Config{})
			tok, err := e.auth.IssueToken(tt.p)
			require.NoError(t, err)

			c := unverified(t, tok)
			require.Equal(t, "TeraServer", c["iss"])
			require.Equal(t, tt.p.UUID, c[tt.claim])
			require.EqualValues(t, e.clock.Now().Unix(), c["iat"])
			require.EqualValues(t, e.clock.Now().Add(time.Hour).Unix(), c["exp"])
			require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, c["jti"])
			if tt.p.Kind == directory.KindUser {
				require.Contains(t, c, "user_fullname")
				require.Equal(t, tt.wantAdmin, c["user_superadmin"])
			} else {
				require.NotContains(t, c, "user_superadmin")
			}

			want := auth.Principal{Kind: tt.p.Kind, UUID: tt.p.UUID, Admin: tt.wantAdmin, TokenID: c["jti"].(string),
				ExpiresAt: e.clock.Now().Add(time.Hour)}
			got, err := e.auth.Token(context.Background(), tt.p.Kind, tok)
			require.NoError(t, err)
			require.Equal(t, want, got)
			got, err = e.auth.Any(context.Background(), tok)
			require.NoError(t, err)
			require.Equal(t, want, got)

			tok2, err := e.auth.IssueToken(tt.p)
			require.NoError(t, err)
			require.NotEqual(t, c["jti"], unverified(t, tok2)["jti"], "jti is random")
		})
	}
}

func TestTokenRejected(t *testing.T) {
	e := newEnv(t, auth.Config{})
	now := e.clock.Now()
	valid := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "iss": "TeraServer", "jti": "j-1", "user_uuid": aliceUUID}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	userTok, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: aliceUUID})
	require.NoError(t, err)
	parts := strings.Split(userTok, ".")

	tests := []struct {
		name    string
		kind    directory.Kind
		token   string
		wantErr error
	}{
		{name: "empty", kind: directory.KindUser, token: "", wantErr: auth.ErrInvalidToken},
		{name: "garbage", kind: directory.KindUser, token: "not.a.jwt", wantErr: auth.ErrInvalidToken},
		{name: "alg none", kind: directory.KindUser, token: forge(t, map[string]any{"alg": "none", "typ": "JWT"}, valid(nil), ""), wantErr: auth.ErrInvalidToken},
		{name: "alg None, signed", kind: directory.KindUser, token: forge(t, map[string]any{"alg": "None"}, valid(nil), testKey), wantErr: auth.ErrInvalidToken},
		{name: "RS256 header, HMAC signature (key confusion)", kind: directory.KindUser, token: forge(t, map[string]any{"alg": "RS256", "typ": "JWT"}, valid(nil), testKey), wantErr: auth.ErrInvalidToken},
		{name: "HS512 with the right key", kind: directory.KindUser, token: func() string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodHS512, valid(nil)).SignedString([]byte(testKey))
			require.NoError(t, err)
			return s
		}(), wantErr: auth.ErrInvalidToken},
		{name: "wrong key", kind: directory.KindUser, token: sign(t, "another-key-0123456789abcdef0123", valid(nil)), wantErr: auth.ErrInvalidToken},
		{name: "tampered payload", kind: directory.KindUser, token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"user_uuid":"`+rootUUID+`","exp":9999999999}`)) + "." + parts[2], wantErr: auth.ErrInvalidToken},
		{name: "expired", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"exp": now.Add(-time.Second).Unix()})), wantErr: auth.ErrExpiredToken},
		{name: "expires now", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"exp": now.Unix()})), wantErr: auth.ErrExpiredToken},
		{name: "no exp", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"exp": nil})), wantErr: auth.ErrInvalidToken},
		{name: "not yet valid", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()})), wantErr: auth.ErrInvalidToken},
		{name: "no iss", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"iss": nil})), wantErr: auth.ErrInvalidToken},
		{name: "another iss", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"iss": "Evil"})), wantErr: auth.ErrInvalidToken},
		{name: "iss differing in case", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"iss": "teraserver"})), wantErr: auth.ErrInvalidToken},
		{name: "no subject", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"user_uuid": nil})), wantErr: auth.ErrInvalidToken},
		{name: "two subjects", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"device_uuid": robotUUID})), wantErr: auth.ErrInvalidToken},
		{name: "subject of the wrong type", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"user_uuid": 12})), wantErr: auth.ErrInvalidToken},
		{name: "unknown entity", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"user_uuid": "ghost"})), wantErr: auth.ErrInvalidToken},
		{name: "uuid of another kind", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"user_uuid": patUUID})), wantErr: auth.ErrInvalidToken},
		{name: "disabled entity", kind: directory.KindUser, token: sign(t, testKey, valid(jwt.MapClaims{"user_uuid": offUserUUID})), wantErr: auth.ErrDisabled},
		{name: "user token presented as device", kind: directory.KindDevice, token: userTok, wantErr: auth.ErrInvalidToken},
		{name: "user token presented as participant", kind: directory.KindParticipant, token: userTok, wantErr: auth.ErrInvalidToken},
		{name: "JWT presented as service", kind: directory.KindService, token: userTok, wantErr: auth.ErrInvalidToken},
		{name: "static device token presented as user", kind: directory.KindUser, token: robotToken, wantErr: auth.ErrInvalidToken},
		{name: "static participant token presented as device", kind: directory.KindDevice, token: patToken, wantErr: auth.ErrInvalidToken},
		{name: "static device token presented as service", kind: directory.KindService, token: robotToken, wantErr: auth.ErrInvalidToken},
		{name: "kind 0", kind: 0, token: userTok, wantErr: auth.ErrKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.auth.Token(context.Background(), tt.kind, tt.token)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, auth.Principal{}, got)
			// Any must refuse the same tokens, except those only refused for being of another kind.
			if tt.kind != 0 && !strings.Contains(tt.name, "presented as") {
				_, err = e.auth.Any(context.Background(), tt.token)
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

// TestTokenClaimTypes checks that time claims must be JSON numbers and iss a string, with an error
// that names the claim.
func TestTokenClaimTypes(t *testing.T) {
	e := newEnv(t, auth.Config{})
	now := e.clock.Now()
	exp := now.Add(time.Hour).Unix()
	tests := []struct {
		name    string
		claims  map[string]any
		wantMsg string // "" means accepted
	}{
		{name: "numbers", claims: map[string]any{"exp": exp, "iat": now.Unix(), "nbf": now.Unix()}},
		{name: "fractional seconds", claims: map[string]any{"exp": float64(exp) + 0.5, "iat": float64(now.Unix()) + 0.25}},
		{name: "null iat", claims: map[string]any{"exp": exp, "iat": nil}},
		{name: "exp as a string", claims: map[string]any{"exp": strconv.FormatInt(exp, 10)}, wantMsg: "exp claim must be a number of seconds, not a string"},
		{name: "exp as a date string", claims: map[string]any{"exp": "2099-01-01T00:00:00Z"}, wantMsg: "exp claim must be a number of seconds, not a string"},
		{name: "exp as a boolean", claims: map[string]any{"exp": true}, wantMsg: "exp claim must be a number of seconds, not a boolean"},
		{name: "exp as an object", claims: map[string]any{"exp": map[string]any{"n": exp}}, wantMsg: "exp claim must be a number of seconds, not an object"},
		{name: "exp as an array", claims: map[string]any{"exp": []int64{exp}}, wantMsg: "exp claim must be a number of seconds, not an array"},
		{name: "nbf as a string", claims: map[string]any{"exp": exp, "nbf": "0"}, wantMsg: "nbf claim must be a number of seconds, not a string"},
		{name: "iat as a string", claims: map[string]any{"exp": exp, "iat": strconv.FormatInt(now.Unix(), 10)}, wantMsg: "iat claim must be a number of seconds, not a string"},
		{name: "iss as a number", claims: map[string]any{"exp": exp, "iss": 1}, wantMsg: "could not JSON decode claim"},
		{name: "jti as an object", claims: map[string]any{"exp": exp, "jti": map[string]any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := map[string]any{"iss": "TeraServer", "user_uuid": aliceUUID}
			for k, v := range tt.claims {
				c[k] = v
			}
			tok := forge(t, map[string]any{"alg": "HS256", "typ": "JWT"}, c, testKey)
			for _, verify := range []func() error{
				func() error { _, err := e.auth.Token(context.Background(), directory.KindUser, tok); return err },
				func() error { _, err := e.auth.Any(context.Background(), tok); return err },
			} {
				err := verify()
				if tt.wantMsg == "" {
					require.NoError(t, err)
					continue
				}
				require.ErrorIs(t, err, auth.ErrInvalidToken)
				require.ErrorContains(t, err, tt.wantMsg)
			}
		})
	}
}

// TestOpenTeraIssuedTokens checks tokens shaped exactly as OpenTera's TeraUser.get_token,
// TeraParticipant.dynamic_token and the device tokens (with exp added, which teragate requires):
// all carry iss "TeraServer", and user and participant tokens a jti that is a per-process counter.
// A numeric jti is accepted; the token is revoked by its content, since the counter repeats.
func TestOpenTeraIssuedTokens(t *testing.T) {
	e := newEnv(t, auth.Config{})
	now := e.clock.Now()
	iat, exp := now.Unix(), now.Unix()+3600
	tests := []struct {
		name   string
		kind   directory.Kind
		claims jwt.MapClaims
		uuid   string
	}{
		{name: "user", kind: directory.KindUser, uuid: aliceUUID, claims: jwt.MapClaims{"iat": iat, "exp": exp, "iss": "TeraServer", "jti": 0,
			"user_uuid": aliceUUID, "id_user": 2, "user_fullname": "Alice A", "user_superadmin": false, "service_access": map[string]any{"service_access": map[string]any{}}}},
		{name: "participant", kind: directory.KindParticipant, uuid: patUUID, claims: jwt.MapClaims{"iat": iat, "exp": exp, "iss": "TeraServer", "jti": 41,
			"participant_uuid": patUUID, "id_participant": 3, "user_fullname": "Pat"}},
		{name: "device", kind: directory.KindDevice, uuid: robotUUID, claims: jwt.MapClaims{"exp": exp, "iss": "TeraServer", "device_uuid": robotUUID, "id_device": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, testKey, tt.claims)
			p, err := e.auth.Token(context.Background(), tt.kind, tok)
			require.NoError(t, err)
			require.Equal(t, tt.uuid, p.UUID)
			require.True(t, strings.HasPrefix(p.TokenID, "sha256:"), p.TokenID)

			// Another token with the same counter value is not revoked with this one.
			other := jwt.MapClaims{}
			for k, v := range tt.claims {
				other[k] = v
			}
			other["iat"] = iat + 1
			otherTok := sign(t, testKey, other)
			require.NoError(t, e.auth.Revoke(context.Background(), p))
			_, err = e.auth.Token(context.Background(), tt.kind, tok)
			require.ErrorIs(t, err, auth.ErrRevokedToken)
			_, err = e.auth.Token(context.Background(), tt.kind, otherTok)
			require.NoError(t, err)
		})
	}
}

// TestOpenTeraToken checks that a token minted by OpenTera with the shared key is accepted, extra
// claims and all, and that the directory (not the token) decides superadmin.
func TestOpenTeraToken(t *testing.T) {
	e := newEnv(t, auth.Config{})
	now := e.clock.Now()
	tok := sign(t, testKey, jwt.MapClaims{
		"iat": float64(now.Unix()) + 0.25, "exp": now.Add(30 * time.Minute).Unix(), "iss": "TeraServer",
		"jti": "6c1f0d1e-1111-4222-8333-444455556666", "user_uuid": aliceUUID, "id_user": 7,
		"user_fullname": "Alice A", "user_superadmin": true, "service_access": map[string]any{"x": []int{1}},
	})
	p, err := e.auth.Token(context.Background(), directory.KindUser, tok)
	require.NoError(t, err)
	require.Equal(t, aliceUUID, p.UUID)
	require.False(t, p.Admin, "user_superadmin in the token is not trusted")
	require.Equal(t, "6c1f0d1e-1111-4222-8333-444455556666", p.TokenID)

	// A token without jti gets a content-derived id, so it can still be revoked.
	tok = sign(t, testKey, jwt.MapClaims{"exp": now.Add(time.Minute).Unix(), "iss": "TeraServer", "device_uuid": robotUUID})
	p, err = e.auth.Token(context.Background(), directory.KindDevice, tok)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(p.TokenID, "sha256:"), p.TokenID)
	require.NoError(t, e.auth.Revoke(context.Background(), p))
	_, err = e.auth.Token(context.Background(), directory.KindDevice, tok)
	require.ErrorIs(t, err, auth.ErrRevokedToken)
}

func TestPerKindKeys(t *testing.T) {
	const userKey = "user-key-0123456789abcdef01234567"
	e := newEnv(t, auth.Config{UserJWTKey: []byte(userKey)})
	now := e.clock.Now()
	claims := jwt.MapClaims{"exp": now.Add(time.Minute).Unix(), "iss": "TeraServer", "user_uuid": aliceUUID}

	_, err := e.auth.Token(context.Background(), directory.KindUser, sign(t, userKey, claims))
	require.NoError(t, err)
	_, err = e.auth.Token(context.Background(), directory.KindUser, sign(t, testKey, claims))
	require.ErrorIs(t, err, auth.ErrInvalidToken, "user tokens need the user key")

	devClaims := jwt.MapClaims{"exp": now.Add(time.Minute).Unix(), "iss": "TeraServer", "device_uuid": robotUUID}
	_, err = e.auth.Token(context.Background(), directory.KindDevice, sign(t, testKey, devClaims))
	require.NoError(t, err, "other kinds keep JWTKey")

	tok, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: aliceUUID})
	require.NoError(t, err)
	_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(userKey), nil }, jwt.WithoutClaimsValidation())
	require.NoError(t, err, "issued with the user key")
}

func TestRevoke(t *testing.T) {
	clock := newClock()
	revs := auth.NewMemoryRevocations(clock.Now)
	e := newEnv(t, auth.Config{Now: clock.Now}, auth.WithRevocations(revs))
	e.clock = clock
	ctx := context.Background()
	tok, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: aliceUUID})
	require.NoError(t, err)
	p, err := e.auth.Token(ctx, directory.KindUser, tok)
	require.NoError(t, err)

	other, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: aliceUUID})
	require.NoError(t, err)

	require.NoError(t, e.auth.Revoke(ctx, p))
	_, err = e.auth.Token(ctx, directory.KindUser, tok)
	require.ErrorIs(t, err, auth.ErrRevokedToken)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	_, err = e.auth.Any(ctx, tok)
	require.ErrorIs(t, err, auth.ErrRevokedToken)
	_, err = e.auth.Token(ctx, directory.KindUser, other)
	require.NoError(t, err, "only the revoked token is refused")
	require.Equal(t, 1, revs.Len())

	// Revoking a principal without a token id is a no-op.
	require.NoError(t, e.auth.Revoke(ctx, auth.Principal{Kind: directory.KindDevice, UUID: robotUUID}))
	require.Equal(t, 1, revs.Len())
}

func TestMemoryRevocationsPrune(t *testing.T) {
	clock := newClock()
	r := auth.NewMemoryRevocations(clock.Now)
	ctx := context.Background()
	for i := range 1000 {
		require.NoError(t, r.Revoke(ctx, "id-"+string(rune('a'+i%26))+strings.Repeat("x", i), clock.Now().Add(time.Hour)))
	}
	require.Equal(t, 1000, r.Len())
	revoked, err := r.Revoked(ctx, "id-a")
	require.NoError(t, err)
	require.True(t, revoked)

	clock.Advance(time.Hour)
	revoked, err = r.Revoked(ctx, "id-a")
	require.NoError(t, err)
	require.False(t, revoked, "forgotten once the token has expired")
	require.NoError(t, r.Revoke(ctx, "fresh", clock.Now().Add(time.Hour)))
	require.Equal(t, 1, r.Len(), "expired ids are pruned")
	require.NoError(t, r.Revoke(ctx, "already-expired", clock.Now()))
	require.Equal(t, 1, r.Len())
}

// TestTokenAfterDirectorySwap checks that removing or disabling an entity invalidates its tokens
// at once, static and JWT alike.
func TestTokenAfterDirectorySwap(t *testing.T) {
	e := newEnv(t, auth.Config{})
	ctx := context.Background()
	userTok, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: aliceUUID})
	require.NoError(t, err)
	devTok, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindDevice, UUID: robotUUID})
	require.NoError(t, err)
	partTok, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindParticipant, UUID: patUUID})
	require.NoError(t, err)

	e.store.Swap(fixtureSnapshot(t, map[string]bool{aliceUUID: true, robotUUID: true}, map[string]bool{patUUID: true}))
	tests := []struct {
		name    string
		kind    directory.Kind
		token   string
		wantErr error
	}{
		{"deleted user's JWT", directory.KindUser, userTok, auth.ErrInvalidToken},
		{"deleted device's JWT", directory.KindDevice, devTok, auth.ErrInvalidToken},
		{"deleted device's static token", directory.KindDevice, robotToken, auth.ErrInvalidToken},
		{"disabled participant's JWT", directory.KindParticipant, partTok, auth.ErrDisabled},
		{"disabled participant's static token", directory.KindParticipant, patToken, auth.ErrDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.auth.Token(ctx, tt.kind, tt.token)
			require.ErrorIs(t, err, tt.wantErr)
			_, err = e.auth.Any(ctx, tt.token)
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
	_, err = e.auth.Password(ctx, directory.KindUser, "alice", "alice-pw", "192.0.2.1:1234")
	require.ErrorIs(t, err, auth.ErrUnknownUser)
}

func TestStaticTokens(t *testing.T) {
	e := newEnv(t, auth.Config{})
	ctx := context.Background()
	tests := []struct {
		name    string
		kind    directory.Kind
		token   string
		want    auth.Principal
		wantErr error
	}{
		{name: "participant", kind: directory.KindParticipant, token: patToken, want: auth.Principal{Kind: directory.KindParticipant, UUID: patUUID, Limited: true}},
		{name: "token-only participant", kind: directory.KindParticipant, token: tokOnlyToken, want: auth.Principal{Kind: directory.KindParticipant, UUID: tokOnlyUUID, Limited: true}},
		{name: "device", kind: directory.KindDevice, token: robotToken, want: auth.Principal{Kind: directory.KindDevice, UUID: robotUUID}},
		{name: "admin service", kind: directory.KindService, token: svcToken, want: auth.Principal{Kind: directory.KindService, UUID: svcUUID, Admin: true}},
		{name: "service", kind: directory.KindService, token: svc2Token, want: auth.Principal{Kind: directory.KindService, UUID: svc2UUID}},
		{name: "disabled participant", kind: directory.KindParticipant, token: offPartToken, wantErr: auth.ErrDisabled},
		{name: "disabled device", kind: directory.KindDevice, token: offRobotToken, wantErr: auth.ErrDisabled},
		{name: "unknown", kind: directory.KindDevice, token: "robot-static-token-0123456789abcdef02", wantErr: auth.ErrInvalidToken},
		{name: "prefix of a token", kind: directory.KindDevice, token: robotToken[:20], wantErr: auth.ErrInvalidToken},
		{name: "service token as participant", kind: directory.KindParticipant, token: svcToken, wantErr: auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.auth.Token(ctx, tt.kind, tt.token)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			got, err = e.auth.Any(ctx, tt.token)
			require.NoError(t, err)
			require.Equal(t, tt.want, got, "Any resolves the same principal")
		})
	}
	_, err := e.auth.Any(ctx, offRobotToken)
	require.ErrorIs(t, err, auth.ErrDisabled)
	_, err = e.auth.Any(ctx, "")
	require.ErrorIs(t, err, auth.ErrInvalidToken)
}

func TestIssueTokenErrors(t *testing.T) {
	e := newEnv(t, auth.Config{})
	tests := []struct {
		name    string
		p       auth.Principal
		wantErr error
	}{
		{"service", auth.Principal{Kind: directory.KindService, UUID: svcUUID}, auth.ErrKind},
		{"kind 0", auth.Principal{UUID: aliceUUID}, auth.ErrKind},
		{"unknown user", auth.Principal{Kind: directory.KindUser, UUID: "ghost"}, auth.ErrUnknownUser},
		{"unknown device", auth.Principal{Kind: directory.KindDevice, UUID: "ghost"}, auth.ErrUnknownUser},
		{"uuid of another kind", auth.Principal{Kind: directory.KindParticipant, UUID: robotUUID}, auth.ErrUnknownUser},
		{"disabled user", auth.Principal{Kind: directory.KindUser, UUID: offUserUUID}, auth.ErrDisabled},
		{"disabled participant", auth.Principal{Kind: directory.KindParticipant, UUID: offPartUUID}, auth.ErrDisabled},
		{"disabled device", auth.Principal{Kind: directory.KindDevice, UUID: offRobotUUID}, auth.ErrDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := e.auth.IssueToken(tt.p)
			require.ErrorIs(t, err, tt.wantErr)
			require.Empty(t, tok)
		})
	}
}

func TestNew(t *testing.T) {
	store := directory.NewStore(directory.Demo())
	tests := []struct {
		name    string
		cfg     auth.Config
		store   *directory.Store
		wantErr error
	}{
		{name: "zero config", store: store},
		{name: "short key", cfg: auth.Config{JWTKey: []byte("short")}, store: store, wantErr: auth.ErrConfig},
		{name: "short device key", cfg: auth.Config{DeviceJWTKey: []byte("short")}, store: store, wantErr: auth.ErrConfig},
		{name: "negative ttl", cfg: auth.Config{TokenTTL: -time.Second}, store: store, wantErr: auth.ErrConfig},
		{name: "negative lockout", cfg: auth.Config{LockoutDuration: -time.Second}, store: store, wantErr: auth.ErrConfig},
		{name: "negative max lockout", cfg: auth.Config{MaxLockoutDuration: -time.Second}, store: store, wantErr: auth.ErrConfig},
		{name: "max lockout below the default lockout", cfg: auth.Config{MaxLockoutDuration: time.Minute}, store: store, wantErr: auth.ErrConfig},
		{name: "max lockout below the lockout", cfg: auth.Config{LockoutDuration: time.Hour, MaxLockoutDuration: time.Minute}, store: store, wantErr: auth.ErrConfig},
		{name: "max lockout equal to the lockout", cfg: auth.Config{LockoutDuration: time.Minute, MaxLockoutDuration: time.Minute}, store: store},
		{name: "negative max login wait", cfg: auth.Config{MaxLoginWait: -time.Second}, store: store, wantErr: auth.ErrConfig},
		{name: "nil store", wantErr: auth.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.New(tt.cfg, tt.store)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Nil(t, a)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, a)
		})
	}

	// Two authenticators with random keys do not accept each other's tokens.
	a1, err := auth.New(auth.Config{}, store)
	require.NoError(t, err)
	a2, err := auth.New(auth.Config{}, store)
	require.NoError(t, err)
	tok, err := a1.IssueToken(auth.Principal{Kind: directory.KindUser, UUID: directory.DemoAliceUUID})
	require.NoError(t, err)
	_, err = a1.Token(context.Background(), directory.KindUser, tok)
	require.NoError(t, err)
	_, err = a2.Token(context.Background(), directory.KindUser, tok)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
}

func TestTokenTTL(t *testing.T) {
	e := newEnv(t, auth.Config{TokenTTL: 30 * time.Minute})
	tok, err := e.auth.IssueToken(auth.Principal{Kind: directory.KindDevice, UUID: robotUUID})
	require.NoError(t, err)
	e.clock.Advance(30*time.Minute - time.Second)
	_, err = e.auth.Token(context.Background(), directory.KindDevice, tok)
	require.NoError(t, err)
	e.clock.Advance(time.Second)
	_, err = e.auth.Token(context.Background(), directory.KindDevice, tok)
	require.ErrorIs(t, err, auth.ErrExpiredToken)
}
