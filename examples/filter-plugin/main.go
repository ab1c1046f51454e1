// Command filter-plugin is an example teragate filter plugin: user connections get OpenTera's
// default filtering, except that DEVICE_STATUS_CHANGED events reach superadmins only. Build it as
// filter.user.wasm and drop it into the gateway's plugin directory to replace the default user
// filter live; see README.md.
package main

import (
	"github.com/teragate/teragate/plugins/openterafilter"
	"github.com/teragate/teragate/sdk/pdk"
)

func init() {
	pdk.Info("filter.user (quiet device status)", "1.0.0")
	pdk.HandleFilter(quietDeviceStatus, pdk.KindUser)
}

// quietDeviceStatus hides device status changes from non-admin users and otherwise applies
// OpenTera's table.
func quietDeviceStatus(ev *pdk.Event) pdk.Result {
	if d, ok := ev.DeviceEvent(); ok && d.Type == pdk.DeviceStatusChanged {
		// Not cacheable: the host caches DeviceEvent rules per device, whatever their type.
		return pdk.Deliver(pdk.Visible(pdk.KindDevice, d.DeviceUUID).AdminsOnly())
	}
	return openterafilter.Rule(ev)
}

// main is empty: a reactor module has no main; the host calls the exports.
func main() {}
