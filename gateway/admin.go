package gateway

import (
	"context"
	"os"
	"time"

	"github.com/teragate/teragate/gateway/internal/admin"
	"github.com/teragate/teragate/gateway/internal/nodes"
)

// AdminPath is the path of the admin web page: live presence, rooms, stations and
// plugins for superadmin users. [Gateway.URL] + AdminPath is its address.
const AdminPath = "/admin"

// initAdmin mounts the admin page (/admin), its names endpoint (POST /api/admin/names) and the
// node list (GET /api/admin/nodes).
func (g *Gateway) initAdmin() error {
	h, err := admin.New(admin.Config{
		Authenticate: g.api.Authenticate,
		Directory:    g.dir,
		PublicHost:   g.cfg.PublicHost,
		Logger:       g.log.Named("admin"),
	})
	if err != nil {
		return err
	}
	h.Mount(g.api.Handle)
	if err := g.initNodes(); err != nil {
		return err
	}
	g.nodes.Mount(g.api.Handle, g.api.Authenticate)
	return nil
}

// initNodes prepares the node's stats record: in Redis (every node lists every node) under its
// presence node id, with the presence heartbeat as liveness; else in memory, under its host name.
func (g *Gateway) initNodes() error {
	cfg := nodes.Config{
		NodeID: g.NodeID(),
		Addr:   g.advertisedAddr,
		Sample: g.metrics.NodeTotals,
		Logger: g.log.Named("nodes"),
	}
	if g.cluster != nil {
		cfg.Redis = g.redis
		cfg.Heartbeats = g.cluster.Heartbeats
		// Up while the heartbeat lives, then shown down for two more node TTLs, then gone.
		cfg.TTL = 3 * time.Duration(g.cfg.RedisNodeTTL)
	} else if h, err := os.Hostname(); err == nil && h != "" {
		cfg.NodeID = h
	} else {
		cfg.NodeID = "local"
	}
	s, err := nodes.New(cfg)
	if err != nil {
		return err
	}
	g.nodes = s
	return nil
}

// advertisedAddr is the address the node list shows for this node: the public host when one is
// configured, else the listening address.
func (g *Gateway) advertisedAddr() string {
	if g.cfg.PublicHost != "" {
		return g.cfg.PublicHost
	}
	if a := g.Addr(); a != nil {
		return a.String()
	}
	return g.cfg.Listen
}

// startNodes starts publishing the node's record, once it listens (the record has its address).
func (g *Gateway) startNodes(ctx context.Context) error { g.nodes.Start(ctx); return nil }

func (g *Gateway) stopNodes(ctx context.Context) error { return g.nodes.Stop(ctx) }
