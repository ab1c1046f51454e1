package pluginhost

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/filter"
	"github.com/teragate/teragate/gateway/internal/pluginhost/wasmbuild"
	"github.com/teragate/teragate/proto/opentera"
)

// TestDeadlinePath: modules run instrumented (reported as such); with instrumentation off they
// run under wazero's checks; a module importing the guard's module itself is refused either way.
func TestDeadlinePath(t *testing.T) {
	wasm, cfg := goodEcho(t)
	for _, off := range []bool{false, true} {
		e := newEnv(t, map[string]Settings{"filter.user": {Config: cfg}})
		e.r.noInstrument = off
		require.NoError(t, e.r.Load("filter.user", wasm))
		in, _ := e.r.Info("filter.user")
		want := DeadlineInstrumented
		if off {
			want = DeadlineChecks
		}
		require.Equal(t, want, in.Deadline)
		got, err := decide(t, e.r.Filter(directory.KindUser, nil, nil), participantEvent(directory.DemoPatUUID), e.recipients(3))
		require.NoError(t, err)
		require.Equal(t, []filter.Verdict{1, 0, 1}, verdicts(got))

		err = e.r.Load("filter.device", wasmFile(t, "guardimport"))
		require.ErrorIs(t, err, ErrInvalid)
		in, _ = e.r.Info("filter.device")
		require.Contains(t, in.LastRejection, `imports module "teragate_guard"`)
	}
}

// TestLoopingGuestDoesNotBlockGC: a guest looping forever (or on bulk memory instructions, each
// filling or copying tens of MiB) is stopped by its deadline while another goroutine runs the
// garbage collector over and over, instrumented and under wazero's checks. Compiled guest code
// cannot be preempted; without a return to Go inside the loop the first stop-the-world would wait
// for the guest and, with it, the timer that ends the call: the test would hang, or the bulk
// guests would return on their own after minutes without the deadline error (the package's test
// timeout is the bound, nothing here measures time).
func TestLoopingGuestDoesNotBlockGC(t *testing.T) {
	tests := []struct {
		guest  string
		checks bool // wazero's checks instead of the instrumentation
	}{
		{"loop", false},
		{"bulkfill", false},
		{"bulkcopy", false},
		{"bulkfill", true},
	}
	for _, tt := range tests {
		name := tt.guest
		if tt.checks {
			name += "/wazero-checks"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, map[string]Settings{"filter.participant": {Timeout: 300 * time.Millisecond, PoolSize: 1, MaxFailures: 100}})
			e.r.noInstrument = tt.checks
			require.NoError(t, e.r.Load("filter.participant", wasmFile(t, tt.guest)))
			in, _ := e.r.Info("filter.participant")
			require.Equal(t, map[bool]string{false: DeadlineInstrumented, true: DeadlineChecks}[tt.checks], in.Deadline)
			bad := e.r.Filter(directory.KindParticipant, nil, nil)

			var (
				stop     atomic.Bool
				inCall   atomic.Bool
				gcs      atomic.Int64
				gcInCall atomic.Int64
				wg       sync.WaitGroup
				started  = make(chan struct{})
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					runtime.GC()
					gcs.Add(1)
					if inCall.Load() {
						gcInCall.Add(1)
					}
					if i == 0 {
						close(started)
					}
				}
			}()
			<-started
			for i := 0; i < 2; i++ {
				inCall.Store(true)
				err := bad.Decide(context.Background(), participantEvent(directory.DemoPatUUID), directory.KindParticipant, e.recipients(3), make([]filter.Decision, 3))
				inCall.Store(false)
				require.ErrorIs(t, err, ErrTimeout)
			}
			stop.Store(true)
			wg.Wait()
			t.Logf("%d collections, %d completed while the guest was looping", gcs.Load(), gcInCall.Load())
			in, _ = e.r.Info("filter.participant")
			require.Equal(t, uint64(2), in.Failures)
		})
	}
}

// TestGoPluginsSameDecisions: the first-party Go filter plugins decide exactly the same,
// rewrites included, instrumented and under wazero's checks.
func TestGoPluginsSameDecisions(t *testing.T) {
	kinds := []directory.Kind{directory.KindUser, directory.KindParticipant, directory.KindDevice}
	var envs [2]*testEnv
	for i := range envs {
		e := newEnv(t, nil)
		e.r.noInstrument = i == 1
		e.pres.sessions["s-1"] = []string{directory.DemoAliceUUID, directory.DemoPatUUID, directory.DemoRobot2UUID}
		for _, k := range kinds {
			data, err := os.ReadFile(wasmbuild.Build(t, "./plugins/filter/"+k.String()))
			require.NoError(t, err)
			id := "filter." + k.String()
			require.NoError(t, e.r.Load(id, data))
			in, _ := e.r.Info(id)
			require.Equal(t, map[bool]string{false: DeadlineInstrumented, true: DeadlineChecks}[e.r.noInstrument], in.Deadline, id)
		}
		envs[i] = e
	}
	recipients := map[directory.Kind][]string{
		directory.KindUser:        {directory.DemoAdminUUID, directory.DemoAliceUUID, directory.DemoBobUUID, "unknown-user"},
		directory.KindParticipant: {directory.DemoPatUUID, directory.DemoPaulaUUID, "unknown-participant"},
		directory.KindDevice:      {directory.DemoRobot1UUID, directory.DemoRobot2UUID, "unknown-device"},
	}
	events := []proto.Message{
		&opentera.UserEvent{UserUuid: directory.DemoAliceUUID}, &opentera.UserEvent{UserUuid: directory.DemoBobUUID}, &opentera.UserEvent{},
		&opentera.ParticipantEvent{ParticipantUuid: directory.DemoPatUUID, Type: opentera.ParticipantEvent_PARTICIPANT_CONNECTED},
		&opentera.ParticipantEvent{ParticipantUuid: directory.DemoPaulaUUID}, &opentera.ParticipantEvent{ParticipantUuid: "nobody"},
		&opentera.DeviceEvent{DeviceUuid: directory.DemoRobot1UUID, Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED}, &opentera.DeviceEvent{DeviceUuid: directory.DemoRobot2UUID},
		&opentera.JoinSessionEvent{SessionUuid: "s-1", SessionUsers: []string{directory.DemoAliceUUID, directory.DemoBobUUID}, SessionParticipants: []string{directory.DemoPatUUID}, SessionDevices: []string{directory.DemoRobot2UUID}},
		&opentera.LeaveSessionEvent{SessionUuid: "s-1"}, &opentera.LeaveSessionEvent{SessionUuid: "s-2"},
		&opentera.JoinSessionReplyEvent{SessionUuid: "s-1", UserUuid: directory.DemoAliceUUID}, &opentera.JoinSessionReplyEvent{SessionUuid: "s-1", ParticipantUuid: directory.DemoPatUUID},
		&opentera.StopSessionEvent{SessionUuid: "s-1"}, &opentera.StopSessionEvent{},
		&opentera.ArchiveEvent{OwnerUuid: directory.DemoAliceUUID}, &opentera.ArchiveEvent{OwnerUuid: directory.DemoPatUUID},
		&opentera.DatabaseEvent{Type: opentera.DatabaseEvent_DB_UPDATE, ObjectType: "user"},
		&opentera.LogEvent{Message: "not an event clients get"},
	}
	snap := envs[0].dir.Current()
	ctx := context.Background()
	delivered := 0
	for _, k := range kinds {
		var rs []filter.Recipient
		for _, uuid := range recipients[k] {
			a, _ := snap.Principal(k, uuid)
			rs = append(rs, filter.Recipient{Kind: k, UUID: uuid, Access: a})
		}
		for _, m := range events {
			a, err := opentera.NewAny(m)
			require.NoError(t, err)
			var got [2][]filter.Decision
			for i, e := range envs {
				got[i] = make([]filter.Decision, len(rs))
				err := e.r.Filter(k, nil, e.pres).Decide(ctx, filter.DecodeEvent("module.TeraServer.UserManagerModule.events", a), k, rs, got[i])
				require.NoError(t, err, "%s %T", k, m)
			}
			for j := range rs {
				require.Equal(t, got[1][j].Verdict, got[0][j].Verdict, "%s %T %v → %s", k, m, m, rs[j].UUID)
				require.True(t, proto.Equal(got[1][j].Rewrite, got[0][j].Rewrite), "%s %T → %s: rewrite", k, m, rs[j].UUID)
				if got[0][j].Verdict != filter.Drop {
					delivered++
				}
			}
		}
	}
	require.Positive(t, delivered)
	for _, k := range kinds {
		in, _ := envs[0].r.Info("filter." + k.String())
		require.Positive(t, in.Calls)
		require.Zero(t, in.Failures)
	}
}
