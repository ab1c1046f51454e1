package pdk_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/teragate/teragate/proto/plugin/v1"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/internal/hook"
)

// TestRoleDispatch runs the role exports' bodies natively with real RoleCall bytes and decodes
// the RoleResult bytes with the protobuf runtime: what a station host sends and reads.
func TestRoleDispatch(t *testing.T) {
	saved := pdk.Registered()
	t.Cleanup(func() { pdk.Restore(saved) })

	var seen []string
	pdk.HandleRole(pdk.Role{Name: "encode", Version: "1.2", Instances: 2,
		Start: func(c *pdk.RoleCall) error {
			seen = append(seen, "start "+c.UUID)
			v, _ := c.Option("room")
			c.SetStatus(`{"room": "` + v.(string) + `"}`)
			c.Run("j1", "ffmpeg", "-i", "in.dv")
			return nil
		},
		Tick: func(c *pdk.RoleCall) error {
			for _, e := range c.Exits {
				seen = append(seen, "exit "+e.Job+" "+e.Program)
				if e.ExitCode != -1 || e.Signal != 9 || e.Completed {
					return errors.New("exit decoded wrong")
				}
			}
			return nil
		},
		Stop: func(*pdk.RoleCall) error { return errors.New("cannot stop") },
		Offer: func(c *pdk.RoleCall) (bool, error) {
			if string(c.JobConfig) != `{"file": "a.dv"}` {
				return false, nil
			}
			c.Run(c.Job, "encode", string(c.JobConfig))
			return true, nil
		},
	})

	res, failed := hook.RoleInfo(nil)
	require.False(t, failed, string(res))
	var info pluginv1.RoleInfo
	require.NoError(t, proto.Unmarshal(res, &info))
	require.Equal(t, "encode", info.Name)
	require.EqualValues(t, 2, info.Instances)
	require.Equal(t, "1.2", info.Version)

	call := func(fn hook.Entry, c *pluginv1.RoleCall) (*pluginv1.RoleResult, string) {
		t.Helper()
		b, err := proto.Marshal(c)
		require.NoError(t, err)
		res, failed := fn(b)
		if failed {
			return nil, string(res)
		}
		var r pluginv1.RoleResult
		require.NoError(t, proto.Unmarshal(res, &r))
		return &r, ""
	}
	r, msg := call(hook.RoleStart, &pluginv1.RoleCall{Role: "encode", Uuid: "u1", Options: []byte(`{"room": "A"}`), NowMs: 5})
	require.Empty(t, msg)
	require.True(t, r.HasStatus)
	require.Equal(t, `{"room": "A"}`, r.Status)
	require.Len(t, r.Run, 1)
	require.Equal(t, "ffmpeg", r.Run[0].Program)
	require.Equal(t, []string{"-i", "in.dv"}, r.Run[0].Args)

	r, msg = call(hook.RoleTick, &pluginv1.RoleCall{Role: "encode", Uuid: "u1",
		Exits: []*pluginv1.ProgramExit{{Job: "j1", Program: "ffmpeg", ExitCode: -1, Signal: 9}}})
	require.Empty(t, msg)
	require.False(t, r.HasStatus)
	require.Empty(t, r.Run, "requests of an earlier call are not repeated")

	_, msg = call(hook.RoleStop, &pluginv1.RoleCall{Role: "encode", Uuid: "u1"})
	require.Equal(t, "cannot stop", msg)

	// No Update handler: Stop then Start, and Stop's error fails the update.
	_, msg = call(hook.RoleUpdate, &pluginv1.RoleCall{Role: "encode", Uuid: "u1"})
	require.Equal(t, "cannot stop", msg)
	require.Equal(t, []string{"start u1", "exit j1 ffmpeg"}, seen)

	r, msg = call(hook.RoleOffer, &pluginv1.RoleCall{Role: "encode", Uuid: "u1", Job: "job-9", JobConfig: []byte(`{"file": "a.dv"}`)})
	require.Empty(t, msg)
	require.True(t, r.Accepted)
	require.Equal(t, "job-9", r.Run[0].Job)
	r, msg = call(hook.RoleOffer, &pluginv1.RoleCall{Role: "encode", Uuid: "u1", Job: "job-10", JobConfig: []byte(`{}`)})
	require.Empty(t, msg)
	require.False(t, r.Accepted)

	_, failed = hook.RoleStart([]byte{0xff})
	require.True(t, failed, "a malformed request is an error result, not a panic")
}
