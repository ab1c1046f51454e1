package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway/gatewaytest"
	"github.com/teragate/teragate/sdk/client"
)

const (
	serviceToken = gatewaytest.ServiceToken // demo admin service
	robot1Token  = gatewaytest.Robot1Token
	robot1       = gatewaytest.Robot1UUID
)

func Test_main(t *testing.T) {
	gw := gatewaytest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	robot, err := client.Login(ctx, gw.URL(), client.KindDevice, client.Token(robot1Token))
	require.NoError(t, err)
	conn, err := robot.Dial(ctx)
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool { return gw.Online("device", robot1) }, 10*time.Second, 10*time.Millisecond)
	_, err = robot.UpdateDeviceStatus(ctx, map[string]any{"battery": 80}, 100)
	require.NoError(t, err)

	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"--url", gw.URL(), "--token", serviceToken}, &out))
	require.Equal(t, `online_users: []
online_participants: []
online_devices: ["`+robot1+`"]
busy_users: {}
busy_participants: {}
busy_devices: {}
status_users: {}
status_participants: {}
status_devices: {"`+robot1+`": {"online": true, "busy": false, "status": {"status": "{\"battery\": 80}", "timestamp": 100}}}
`, out.String())

	out.Reset()
	err = run(ctx, []string{"--url", gw.URL(), "--token", serviceToken, "no_such_method"}, &out)
	var re *client.RPCError
	require.ErrorAs(t, err, &re)
	require.Contains(t, re.Reason, "unknown method")
}
