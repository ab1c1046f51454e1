//go:build wasip1

// Command hostile is a test role plugin (role "hostile") that misbehaves on demand, by its
// options: "loop" spins forever in Tick, "panic" panics in Start, "bomb" allocates without
// bound in Tick. Built by gateway/stationagent_test.go.
package main

import "github.com/teragate/teragate/sdk/pdk"

var (
	mode  string
	hoard [][]byte
	spin  int
)

func init() {
	pdk.HandleRole(pdk.Role{Name: "hostile",
		Start: func(c *pdk.RoleCall) error {
			v, _ := c.Option("mode")
			mode, _ = v.(string)
			if mode == "panic" {
				panic("hostile start")
			}
			c.SetStatus(`{"mode": "` + mode + `"}`)
			return nil
		},
		Tick: func(c *pdk.RoleCall) error {
			switch mode {
			case "loop":
				for {
					spin++
				}
			case "bomb":
				for {
					hoard = append(hoard, make([]byte, 1<<20))
				}
			}
			return nil
		},
	})
}

func main() {}
