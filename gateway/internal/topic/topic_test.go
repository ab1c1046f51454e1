package topic_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/topic"
)

func TestNames(t *testing.T) {
	require.Equal(t, "module.TeraServer.UserManagerModule.events", topic.UserManagerEvents)
	require.Equal(t, "module.TeraServer.UserManagerModule.messages", topic.UserManagerMessages)
	require.Equal(t, "module.TeraServer.TwistedModule.events.u1", topic.Commands("u1"))
	require.Equal(t, "u1", topic.CommandTarget(topic.Commands("u1")))
	require.Equal(t, "module.TeraServer.TwistedModule.events.*", topic.PatternCommands)
	require.Equal(t, "websocket.user.u1", topic.Socket(directory.KindUser, "u1"))
	require.Equal(t, "websocket.device.u1.events", topic.Direct(directory.KindDevice, "u1"))
	require.Equal(t, "service.FileTransferService.events", topic.Service("FileTransferService"))
	require.Equal(t, "module.TeraServer.UserManagerModule.rpc", topic.RPC("TeraServer.UserManagerModule"))
}

func TestParseDirect(t *testing.T) {
	tests := []struct {
		in   string
		kind directory.Kind
		uuid string
		ok   bool
	}{
		{"websocket.user.u1.events", directory.KindUser, "u1", true},
		{"websocket.participant.p.1.events", directory.KindParticipant, "p.1", true},
		{"websocket.device.d1.events", directory.KindDevice, "d1", true},
		{"websocket.service.s1.events", 0, "", false},
		{"websocket.user..events", 0, "", false},
		{"websocket.user.u1", 0, "", false},
		{"websocket.robot.u1.events", 0, "", false},
		{"module.TeraServer.UserManagerModule.events", 0, "", false},
		{"websocket.user.events", 0, "", false},
	}
	for _, tt := range tests {
		k, uuid, ok := topic.ParseDirect(tt.in)
		require.Equal(t, tt.ok, ok, tt.in)
		require.Equal(t, tt.kind, k, tt.in)
		require.Equal(t, tt.uuid, uuid, tt.in)
		if ok {
			require.Equal(t, tt.in, topic.Direct(k, uuid))
		}
	}
}
