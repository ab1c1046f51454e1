package gateway_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/gateway/internal/directory"
)

// TestSlowFilterHoldsUpOnlyItsKind: the user kind's filter plugin loops on bulk memory
// (bulkfill: each call runs until the router's one-second filter deadline stops it), with a user
// socket connected so that every event costs the user kind a full second. A participant must
// still receive the 40 events published meanwhile, in order, well within 25 s: routed kind after
// kind on one goroutine they took 40 s, a second behind each user batch.
func TestSlowFilterHoldsUpOnlyItsKind(t *testing.T) {
	hostile, err := os.ReadFile("internal/pluginhost/testdata/bulkfill.wasm")
	require.NoError(t, err)
	dir := t.TempDir()
	writeRename(t, dir, "filter.user.wasm", hostile)
	e := startGateway(t, func(c *gateway.Config) {
		c.Plugins = dir
		c.PluginConfig = map[string]gateway.PluginConfig{"filter.user": {Timeout: gateway.Duration(time.Minute), MaxFailures: 1 << 20, PoolSize: 1}}
	})
	<-e.gw.PluginsReady()
	p := e.connect(directory.KindParticipant, demoToken(directory.KindParticipant, pat))
	e.dial(e.wsURL(directory.KindUser, "alice:alice-demo")) // its events fail closed: never read

	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.marker("slow-" + string(rune('a'+i%26)))
	}
	require.NoError(t, p.ws.SetReadDeadline(time.Now().Add(25*time.Second))) // serial routing: 40 s
	next := 0
	for next < n {
		_, data, err := p.ws.ReadMessage()
		require.NoError(t, err, "the participant received %d of %d events", next, n)
		if !strings.Contains(string(data), "marker-") {
			continue // presence events
		}
		var m struct {
			Message struct {
				Events []struct {
					SessionUUID string `json:"sessionUuid"`
				} `json:"events"`
			} `json:"message"`
		}
		require.NoError(t, json.Unmarshal(data, &m))
		require.Len(t, m.Message.Events, 1)
		require.Equal(t, ids[next], m.Message.Events[0].SessionUUID, "event %d in order", next)
		next++
	}
}
