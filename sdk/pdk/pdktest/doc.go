// Package pdktest runs a plugin's sdk/pdk handlers natively, in a plain `go test`, with recording
// fakes behind the host functions. The handlers are called through the same request and result
// bytes as the Wasm exports (requests built with the generated teragate.plugin.v1 types, results
// decoded with them), so a test also checks the kit's wire encoding.
//
//	func TestQuietDevices(t *testing.T) {
//		h := pdktest.New(t) // the handlers the plugin registered in init
//		h.Directory.AddProject("p1", "s1").AddUser("admin", true).AddUser("alice", false, "p1").
//			AddDevice("robot", []string{"s1"})
//		ev := &opentera.DeviceEvent{DeviceUuid: "robot", Type: opentera.DeviceEvent_DEVICE_STATUS_CHANGED}
//		got := h.Who(t, pdk.KindUser, "module.TeraServer.UserManagerModule.events", ev,
//			pdktest.Recipient{UUID: "admin"}, pdktest.Recipient{UUID: "alice"})
//		require.Equal(t, []string{"admin"}, got)
//	}
//
// [Harness.Who] and [Harness.Deliver] play the host's part of the filter protocol: the first call,
// the evaluation of the returned rule for every recipient (Visible clauses by the fake
// [Directory]'s access rules or [Harness.CanSee], InSession clauses by the fake [Presence] or
// [Harness.InSession]), and the second call with the recipients when the plugin asks for them.
// [Harness.Call] calls an RPC method. [Harness.Published] and [Harness.Logs] return what the plugin
// published and logged; FailDirectory, FailPublish … inject host errors.
//
// It does not run Wasm: to run a built .wasm under the real host, start a gateway with
// gateway.Config{Plugins: dir} (see examples/filter-plugin).
//
// # Concurrency
//
// A plugin's handlers are process-wide (as in a Wasm instance), so one [Harness] is live at a time:
// [New] blocks until the previous harness's test has ended. The fakes are safe for concurrent use.
package pdktest
