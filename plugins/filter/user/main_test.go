package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/teragate/teragate/proto/opentera"
	"github.com/teragate/teragate/sdk/pdk"
	"github.com/teragate/teragate/sdk/pdk/pdktest"
)

// TestPlugin runs the plugin's registered handler natively; plugins/openterafilter tests the whole
// table and gateway/pluginfilters_test.go its equivalence with the native filter.
func TestPlugin(t *testing.T) {
	h := pdktest.New(t)
	require.Equal(t, "filter.user", h.Info.GetName())
	require.Equal(t, []string{"user"}, h.Info.GetFilterKinds())
	h.Directory.AddProject("p1", "s1").AddProject("p3", "s2").
		AddUser("admin", true).AddUser("alice", false, "p1").AddUser("bob", false, "p3").
		AddParticipant("pat", "p1").AddParticipant("paula", "p3").
		AddDevice("robot1", []string{"s1"}, "pat").AddDevice("robot2", []string{"s2"}, "paula")
	got := h.Who(t, pdk.KindUser, "module.TeraServer.UserManagerModule.events", &opentera.ParticipantEvent{ParticipantUuid: "pat"}, pdktest.Recipient{UUID: "admin"}, pdktest.Recipient{UUID: "alice"}, pdktest.Recipient{UUID: "bob"})
	require.Equal(t, []string{"admin", "alice"}, got)
	rule, err := h.Rule(pdk.KindUser, "x", &opentera.StopSessionEvent{})
	require.NoError(t, err)
	require.True(t, rule.GetCacheable())
}
