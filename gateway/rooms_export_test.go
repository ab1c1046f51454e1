package gateway

import "github.com/teragate/teragate/gateway/internal/directory"

// RoomsBusy exposes the presence registry's Busy to the rooms integration tests.
func (g *Gateway) RoomsBusy(kind directory.Kind, uuid string) (string, bool) {
	return g.pres.Busy(kind, uuid)
}

// StationsReady is closed once the station manager has loaded the roles directory (for the
// station tests).
func (g *Gateway) StationsReady() <-chan struct{} { return g.stations.Ready() }
