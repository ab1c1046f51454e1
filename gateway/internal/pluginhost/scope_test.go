package pluginhost

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/scope"
	"github.com/teragate/teragate/proto/opentera"
	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
)

// TestScopedHostCalls: during a call for a limited caller, the host refuses presence questions
// about entities the caller may not see and publishes that address or name one, whatever the
// guest does (testdata/scoped.wat passes its arguments straight to the imports); nothing is
// published, the call fails with ErrForbidden. Unscoped calls (the bus) are not limited.
func TestScopedHostCalls(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.r.Load("rpc.scoped", wasmFile(t, "scoped")))
	aliceAcc, ok := directory.Demo().Principal(directory.KindUser, directory.DemoAliceUUID)
	require.True(t, ok)
	alice := WithScope(context.Background(), scope.Of(aliceAcc))

	presence := func(kind, uuid string) []byte {
		b, err := proto.Marshal(&pluginv1.PresenceQuery{Query: "busy", Subject: &pluginv1.Subject{Kind: kind, Uuid: uuid}})
		require.NoError(t, err)
		return append([]byte{0}, b...)
	}
	publish := func(topic string, ev proto.Message) []byte {
		v, err := proto.Marshal(ev)
		require.NoError(t, err)
		b, err := proto.Marshal(&pluginv1.PublishRequest{Topic: topic, Events: []*pluginv1.Event{
			{Type: string(ev.ProtoReflect().Descriptor().FullName()), Value: v}}})
		require.NoError(t, err)
		return append([]byte{1}, b...)
	}
	join := func(users ...string) proto.Message {
		return &opentera.JoinSessionEvent{SessionUuid: "s", SessionUsers: users}
	}
	tests := []struct {
		name      string
		ctx       context.Context
		args      []byte
		want      string // the guest's answer when the call is not forbidden
		forbidden bool
		published int
	}{
		{"presence of pat (visible)", alice, presence("participant", directory.DemoPatUUID), `"ok"`, false, 0},
		{"presence of paula (p3)", alice, presence("participant", directory.DemoPaulaUUID), `"denied"`, true, 0},
		{"presence of bob, trusted", context.Background(), presence("user", directory.DemoBobUUID), `"ok"`, false, 0},
		{"publish to bob's socket", alice, publish("websocket.user."+directory.DemoBobUUID+".events", join(directory.DemoAliceUUID)), `"denied"`, true, 0},
		{"publish naming bob to alice", alice, publish("websocket.user."+directory.DemoAliceUUID+".events", join(directory.DemoBobUUID)), `"denied"`, true, 0},
		{"publish naming bob on a shared topic", alice, publish("module.TeraServer.UserManagerModule.events", join(directory.DemoBobUUID)), `"denied"`, true, 0},
		{"publish to alice about alice", alice, publish("websocket.user."+directory.DemoAliceUUID+".events", join(directory.DemoAliceUUID)), `"ok"`, false, 1},
		{"trusted publish naming bob", context.Background(), publish("websocket.user."+directory.DemoBobUUID+".events", join(directory.DemoBobUUID)), `"ok"`, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.pub.count()
			require.Less(t, len(tt.args), 16000)
			out, err := e.r.CallRPC(tt.ctx, "rpc.scoped", "x", &pluginv1.RPCCall{ArgsJson: tt.args})
			if tt.forbidden {
				// The guest answered "denied" as if all were well; the host still fails the call.
				require.ErrorIs(t, err, ErrForbidden)
				require.Nil(t, out)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.want, string(out))
			}
			require.Equal(t, before+tt.published, e.pub.count())
		})
	}
}

func (p *recordPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.topics)
}
