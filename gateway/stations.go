package gateway

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/teragate/teragate/gateway/internal/bus"
	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/stations"
)

// initStations builds the conference manager (SPEC §7) and mounts /wss/station and
// /api/stations. Station configs are kept in <data>/stations; role plugins are read from
// Config.Roles (default <data>/roles).
func (g *Gateway) initStations() error {
	roles := g.cfg.Roles
	if roles == "" {
		roles = filepath.Join(g.cfg.DataDir, "roles")
	}
	m, err := stations.New(stations.Config{
		StateDir:     filepath.Join(g.cfg.DataDir, "stations"),
		RolesDir:     roles,
		Directory:    g.dir,
		Tickets:      g.tickets,
		Authenticate: g.api.Authenticate,
		Bus:          g.bus,
		Announce:     g.announceStation,
		SetStatus: func(ctx context.Context, uuid, status string, tsMS int64) bool {
			_, res := g.pres.UpdateDeviceStatus(ctx, uuid, status, rpc.Float(float64(tsMS)/1000))
			return res != presence.StatusOffline
		},
		PingInterval: time.Duration(g.cfg.PingInterval),
		PongTimeout:  time.Duration(g.cfg.PongTimeout),
		Registerer:   g.metrics.Registry(),
		Logger:       g.log.Named("stations"),
	})
	if err != nil {
		return err
	}
	g.stations = m
	m.Mount(g.api.Handle)
	return nil
}

// startStations watches the roles directory until the gateway stops.
func (g *Gateway) startStations(ctx context.Context) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.stations.Run(ctx); err != nil {
			g.log.Error("roles directory watch stopped", "error", err)
		}
	}()
}

// StationsReady is closed once the roles directory has been loaded.
func (g *Gateway) StationsReady() <-chan struct{} { return g.stations.Ready() }

// announceStation publishes a station device's CONNECTED or DISCONNECTED event to presence, as
// the device websocket does.
func (g *Gateway) announceStation(uuid string, connected bool) {
	change := presence.Disconnected
	if connected {
		change = presence.Connected
	}
	ev := presence.EntityEvent(g.dir.Current(), directory.KindDevice, uuid, change)
	if ev == nil {
		return
	}
	payload, err := presence.EncodeModuleMessage("websocket.device."+uuid, presence.TopicMessages, ev)
	if err == nil {
		err = g.bus.Publish(context.Background(), presence.TopicMessages, payload)
	}
	if err != nil && !errors.Is(err, bus.ErrClosed) {
		g.log.Error("announcing station", "uuid", uuid, "connected", connected, "error", err)
	}
}

// RolesDir returns the directory of station role plugins (<role>.wasm) the gateway watches.
func (g *Gateway) RolesDir() string { return g.stations.RolesDir() }
