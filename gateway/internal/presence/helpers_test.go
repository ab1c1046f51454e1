package presence

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
	"github.com/teragate/teragate/proto/opentera"
)

// testReg is a registry on a memory bus, fed synchronously, recording what it publishes.
type testReg struct {
	t      *testing.T
	r      *Registry
	b      *bus.Memory
	events chan proto.Message
}

func newTestReg(t *testing.T) *testReg {
	t.Helper()
	b := bus.NewMemory(bus.MemoryConfig{})
	tr := &testReg{t: t, b: b, events: make(chan proto.Message, 1024),
		r: New(Config{Bus: b, Directory: directory.NewStore(directory.Demo())})}
	_, err := b.Subscribe(context.Background(), topic.UserManagerEvents, func(m bus.Message) {
		var te opentera.TeraEvent
		if err := proto.Unmarshal(m.Payload, &te); err != nil {
			t.Error(err)
			return
		}
		for _, a := range te.GetEvents() {
			ev, err := a.UnmarshalNew()
			if err != nil {
				t.Error(err)
				return
			}
			tr.events <- ev
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return tr
}

// feed delivers module-message data to the registry as the bus would.
func (tr *testReg) feed(ms ...proto.Message) {
	tr.t.Helper()
	for _, m := range ms {
		payload, err := EncodeModuleMessage("test", topic.UserManagerMessages, m)
		require.NoError(tr.t, err)
		tr.r.onMessage(bus.Message{Pattern: topic.UserManagerMessages, Channel: topic.UserManagerMessages, Payload: payload})
	}
}

// next returns the next published event.
func (tr *testReg) next() proto.Message {
	tr.t.Helper()
	select {
	case ev := <-tr.events:
		return ev
	case <-time.After(5 * time.Second):
		tr.t.Fatal("no event published")
		return nil
	}
}

// none checks that nothing more was published.
func (tr *testReg) none() {
	tr.t.Helper()
	select {
	case ev := <-tr.events:
		tr.t.Fatalf("unexpected event %v", ev)
	case <-time.After(50 * time.Millisecond):
	}
}

func userConn(uuid string, on bool) *opentera.UserEvent {
	t := opentera.UserEvent_USER_DISCONNECTED
	if on {
		t = opentera.UserEvent_USER_CONNECTED
	}
	return &opentera.UserEvent{UserUuid: uuid, Type: t}
}

func partConn(uuid string, on bool) *opentera.ParticipantEvent {
	t := opentera.ParticipantEvent_PARTICIPANT_DISCONNECTED
	if on {
		t = opentera.ParticipantEvent_PARTICIPANT_CONNECTED
	}
	return &opentera.ParticipantEvent{ParticipantUuid: uuid, Type: t}
}

func devConn(uuid string, on bool) *opentera.DeviceEvent {
	t := opentera.DeviceEvent_DEVICE_DISCONNECTED
	if on {
		t = opentera.DeviceEvent_DEVICE_CONNECTED
	}
	return &opentera.DeviceEvent{DeviceUuid: uuid, Type: t}
}
