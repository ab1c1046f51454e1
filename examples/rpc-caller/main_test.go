package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/gateway"
	"github.com/teragate/teragate/sdk/client"
)

const (
	serviceToken = "dbY8gNftvqx3C65aRU36iwtMjBsJM68-T2TZfpLn" // demo admin service
	robot1Token  = "0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5"
	robot1       = "00000000-0000-4000-8000-000000000201"
)

func Test_main(t *testing.T) {
	gw, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", Insecure: true, DataDir: t.TempDir(),
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})})
	require.NoError(t, err)
	require.NoError(t, gw.Start(context.Background()))
	t.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
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
