// Command filter.participant is the default event filter of participant connections: OpenTera's table
// (plugins/openterafilter) as delivery rules. Build it with `make plugins`
// (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared); see README.md.
package main

import (
	"github.com/teragate/teragate/plugins/openterafilter"
	"github.com/teragate/teragate/sdk/pdk"
)

func init() { openterafilter.Register("filter.participant", pdk.KindParticipant) }

// main is empty: a reactor module has no main; the host calls the exports.
func main() {}
