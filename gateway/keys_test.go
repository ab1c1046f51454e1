package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestPerKindJWTKeys: with OpenTera's separate token keys configured, a token an OpenTera server
// signed with its participant (device, user) key logs that entity in; a token of one kind signed
// with another kind's key does not.
func TestPerKindJWTKeys(t *testing.T) {
	const (
		userKey        = "opentera-user-token-key-0123456789"
		participantKey = "opentera-participant-token-key-0123"
		deviceKey      = "opentera-device-token-key-012345678"
	)
	e := startGateway(t, func(c *gateway.Config) {
		c.JWTKey = "teragate-default-key-0123456789"
		c.UserJWTKey, c.ParticipantJWTKey, c.DeviceJWTKey = userKey, participantKey, deviceKey
	})
	sign := func(key string, claims jwt.MapClaims) string {
		claims["iss"] = "TeraServer"
		claims["exp"] = time.Now().Add(time.Hour).Unix()
		claims["iat"] = time.Now().Unix()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
		require.NoError(t, err)
		return s
	}
	tests := []struct {
		name string
		kind directory.Kind
		tok  string
		code int
	}{
		{"participant token, participant key", directory.KindParticipant, sign(participantKey, jwt.MapClaims{"participant_uuid": pat}), http.StatusOK},
		{"participant token, user key", directory.KindParticipant, sign(userKey, jwt.MapClaims{"participant_uuid": pat}), http.StatusUnauthorized},
		{"participant token, default key", directory.KindParticipant, sign("teragate-default-key-0123456789", jwt.MapClaims{"participant_uuid": pat}), http.StatusUnauthorized},
		{"user token, user key", directory.KindUser, sign(userKey, jwt.MapClaims{"user_uuid": alice}), http.StatusOK},
		{"user token, device key", directory.KindUser, sign(deviceKey, jwt.MapClaims{"user_uuid": alice}), http.StatusUnauthorized},
		{"device token, device key", directory.KindDevice, sign(deviceKey, jwt.MapClaims{"device_uuid": directory.DemoRobot1UUID}), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.login(tt.kind, tt.tok, "")
			require.Equal(t, tt.code, code, "%v", out)
		})
	}
	// Too short a key is refused at load, with its name.
	_, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", DeviceJWTKey: "short"})
	require.ErrorIs(t, err, gateway.ErrInvalidConfig)
	require.ErrorContains(t, err, "device_jwt_key")
}
