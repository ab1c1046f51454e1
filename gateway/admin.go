package gateway

import (
	"github.com/teragate/teragate/gateway/internal/admin"
)

// AdminPath is the path of the admin web page: live presence, rooms, stations and
// plugins for superadmin users. [Gateway.URL] + AdminPath is its address.
const AdminPath = "/admin"

// initAdmin mounts the admin page (/admin) and its names endpoint (POST /api/admin/names).
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
	return nil
}
