package gateway

import (
	"context"
	"path/filepath"
	"time"

	"github.com/teragate/teragate/gateway/internal/directory"
	"github.com/teragate/teragate/gateway/internal/presence"
	"github.com/teragate/teragate/gateway/internal/rpc"
	"github.com/teragate/teragate/gateway/internal/stations"
)

// initStations builds the conference manager (docs/stations.md) and mounts /wss/station and
// /api/stations. Station configs are kept in <data>/stations, or in Redis with --redis; role
// plugins are read from Config.Roles (default <data>/roles).
func (g *Gateway) initStations() error {
	roles := g.cfg.Roles
	if roles == "" {
		roles = filepath.Join(g.cfg.DataDir, "roles")
	}
	var cluster *stations.ClusterConfig
	if g.cluster != nil {
		// Several nodes: the stations' state is in Redis, their changes go to the node holding
		// the connection, and a dead node (the presence heartbeat) has its stations offline.
		cluster = &stations.ClusterConfig{Client: g.redis, NodeID: g.cluster.NodeID(), Alive: g.cluster.NodeAlive}
	}
	m, err := stations.New(stations.Config{
		StateDir:     filepath.Join(g.cfg.DataDir, "stations"),
		RolesDir:     roles,
		Directory:    g.dir,
		Tickets:      g.tickets,
		Authenticate: g.api.Authenticate,
		Bus:          g.bus,
		// A station's device is announced as every socket is (cluster-wide count included).
		Announce: func(uuid string, connected bool) {
			if err := g.pres.Announce(context.Background(), directory.KindDevice, uuid, connected, nil); err != nil {
				g.log.Error("announcing station", "uuid", uuid, "connected", connected, "error", err)
			}
		},
		SetStatus: func(ctx context.Context, uuid, status string, tsMS int64) bool {
			_, res := g.pres.UpdateDeviceStatus(ctx, uuid, status, rpc.Float(float64(tsMS)/1000))
			return res != presence.StatusOffline
		},
		PushTimeout:  time.Duration(g.cfg.StationPushTimeout),
		PingInterval: time.Duration(g.cfg.PingInterval),
		PongTimeout:  time.Duration(g.cfg.PongTimeout),
		Cluster:      cluster,
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

// startStations runs the manager (it watches the roles directory) in the background until
// stopStations.
func (g *Gateway) startStations(ctx context.Context) error {
	ctx, g.stopStationsRun = context.WithCancel(ctx)
	return g.background(g.stations.Run)(ctx)
}

// stopStations stops the manager and waits, until ctx is done, for it to close the stations'
// connections and record their disconnections: before presence stops and Redis closes.
func (g *Gateway) stopStations(ctx context.Context) error {
	g.stopStationsRun()
	select {
	case <-g.stations.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RolesDir returns the directory of station role plugins (<role>.wasm) the gateway watches.
func (g *Gateway) RolesDir() string { return g.stations.RolesDir() }
