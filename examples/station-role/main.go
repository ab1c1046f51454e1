//go:build wasip1

// Command station-role is an example station role plugin: the role "greeter" greets whoever its
// options name, and counts. Build it for a station with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o greeter.wasm .
//
// and drop greeter.wasm into the gateway's roles directory. README.md walks through it, and
// main_test.go runs the walkthrough end to end.
package main

import (
	"strconv"

	"github.com/teragate/teragate/sdk/pdk"
)

// greeting is what the role says. Change it, rebuild, drop the new greeter.wasm in: every
// station running the role swaps to it without reconnecting. (The test sets it with
// -ldflags "-X main.greeting=bonjour".)
var greeting = "hello"

// Each role uuid runs in its own instance: these variables are that uuid's state.
var (
	name  string
	ticks int
)

func init() {
	pdk.HandleRole(pdk.Role{
		Name:      "greeter",
		Version:   greeting,
		Instances: 2, // a station runs at most two greeters
		Start: func(c *pdk.RoleCall) error {
			name = option(c, "name")
			pdk.Log(pdk.LogInfo, "greeter starting", "uuid", c.UUID, "name", name)
			c.SetStatus(status())
			return nil
		},
		Update: func(c *pdk.RoleCall) error {
			name = option(c, "name")
			c.SetStatus(status())
			return nil
		},
		Tick: func(c *pdk.RoleCall) error {
			ticks++
			if ticks%10 == 0 {
				c.SetStatus(status())
			}
			return nil
		},
	})
}

func option(c *pdk.RoleCall, key string) string {
	v, _ := c.Option(key)
	s, _ := v.(string)
	if s == "" {
		s = "world"
	}
	return s
}

// status is JSON text: it becomes part of the station device's status in presence.
func status() string {
	b, _ := pdk.AppendJSON(nil, greeting+" "+name)
	return `{"greeting": ` + string(b) + `, "ticks": ` + strconv.Itoa(ticks) + `}`
}

// main is empty: a reactor module has no main; the station calls the exports.
func main() {}
