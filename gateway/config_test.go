package gateway_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
)

// TestConfigValidate: every invalid field is reported, wrapped in ErrInvalidConfig, and the
// same one every time (several bad fields: the first in a fixed order).
func TestConfigValidate(t *testing.T) {
	base := func() gateway.Config { return gateway.Config{Listen: "127.0.0.1:0"}.WithDefaults() }
	tests := []struct {
		name   string
		mutate func(*gateway.Config)
		want   string // in the error; "" means valid
	}{
		{"defaults", func(*gateway.Config) {}, ""},
		{"short jwt_key", func(c *gateway.Config) { c.JWTKey = "change-me" }, "jwt_key is 9 bytes, need at least 16"},
		{"good jwt_key", func(c *gateway.Config) { c.JWTKey = "0123456789abcdef" }, ""},
		{"bad listen", func(c *gateway.Config) { c.Listen = "nope" }, "listen"},
		{"negative durations: the first in order", func(c *gateway.Config) {
			c.ShutdownTimeout = gateway.Duration(-time.Second)
			c.TokenTTL = gateway.Duration(-time.Second)
			c.RedisNodeTTL = gateway.Duration(-time.Second)
		}, "token_ttl must not be negative"},
		{"rooms checked at load", func(c *gateway.Config) { c.Rooms.MaxSize = -1 }, "rooms: max_size"},
		{"rooms durations: the first in order", func(c *gateway.Config) {
			c.Rooms.HawkSkew = gateway.Duration(-1)
			c.Rooms.MaxTTL = gateway.Duration(-1)
		}, "rooms.max_ttl must be positive"},
		{"plugin configs: the first id in order", func(c *gateway.Config) {
			c.PluginConfig = map[string]gateway.PluginConfig{"z.b": {PoolSize: -1}, "a.b": {PoolSize: -1}, "m.b": {PoolSize: -1}}
		}, "plugin_config.a.b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // map order would show within a few tries
				c := base()
				tt.mutate(&c)
				err := c.Validate()
				if tt.want == "" {
					require.NoError(t, err)
					continue
				}
				require.ErrorIs(t, err, gateway.ErrInvalidConfig)
				require.ErrorContains(t, err, tt.want)
			}
		})
	}
}
