package gateway

import "github.com/teragate/teragate/gateway/internal/directory"

// RoomsBusy exposes the presence registry's Busy to the rooms integration tests.
func (g *Gateway) RoomsBusy(kind directory.Kind, uuid string) (string, bool) {
	return g.pres.Busy(kind, uuid)
}
