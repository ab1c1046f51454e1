package hub

import (
	"testing"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/metrics"
	"github.com/teragate/teragate/gateway/internal/topic"
)

// FuzzRouteBusPayload feeds arbitrary bus payloads to every topic family of the router: undecodable
// bytes are counted and dropped, never a panic, and sockets keep working.
func FuzzRouteBusPayload(f *testing.F) {
	f.Add(topic.UserManagerEvents, stopEvent(f))
	f.Add("websocket.user."+directory.DemoAliceUUID+".events", participantEvent(f, directory.DemoPatUUID))
	f.Add(topic.CommandsPrefix+directory.DemoAliceUUID, []byte{0x12, 0x04, 0x0a, 0x02, 0x08, 0x02})
	f.Add("service.x.events", []byte{0xff, 0xff})
	snap := directory.Demo()
	native := &filter.Native{}
	met := metrics.New()
	b := bus.NewMemory(bus.MemoryConfig{})
	// A fresh hub per input keeps executions independent (a disconnect command closes sockets).
	setup := func() (*Router, *worker) {
		h := New(Config{Metrics: met, MaxQueueFrames: 1 << 20, MaxQueueBytes: 1 << 30})
		r := NewRouter(h, b, RouterConfig{})
		for _, k := range socketKinds {
			r.SetFilter(k, native)
		}
		for _, who := range []struct {
			k    directory.Kind
			uuid string
		}{{directory.KindUser, directory.DemoAliceUUID}, {directory.KindParticipant, directory.DemoPatUUID}, {directory.KindDevice, directory.DemoRobot1UUID}} {
			a, _ := snap.Principal(who.k, who.uuid)
			h.Register(&discardConn{}, who.k, who.uuid, FormatJSON, a)
		}
		return r, &worker{}
	}
	f.Fuzz(func(t *testing.T, channel string, payload []byte) {
		r, w := setup()
		m := bus.Message{Channel: channel, Payload: payload}
		switch {
		case len(channel) > len(topic.CommandsPrefix) && channel[:len(topic.CommandsPrefix)] == topic.CommandsPrefix:
			r.routeCommand(w, m)
		case len(channel) > 10 && channel[:10] == "websocket.":
			r.routeDirect(w, m)
		default:
			r.routeEvents(w, m, 0, "")
		}
	})
}
