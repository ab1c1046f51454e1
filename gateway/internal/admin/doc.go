// Package admin serves the admin web page at /admin: live presence, rooms, stations and
// plugins for superadmin users, as static HTML, CSS and JavaScript embedded in the binary, plus the
// one read the page needs that no other API has, POST /api/admin/names (display names of uuids).
//
// # What the page uses
//
// The page is a client of the gateway's public APIs and holds no privilege of its own: it signs in
// through GET /api/user/login (HTTP Basic), keeps the user token in sessionStorage and sends it as
// "Authorization: OpenTera <token>". It reads presence with the user manager's RPC methods
// (POST /api/rpc/TeraServer.UserManagerModule), follows changes on the admin's own websocket (the
// login's websocket_url, OpenTera's JSON frames), and reads GET /api/admin/rooms, GET /api/plugins
// and GET /api/stations (shown as absent when that answers 404). It polls GET /api/admin/nodes
// (gateway/internal/nodes) every second for the node table and keeps the last five minutes of it
// in the tab for the live graphs, drawn as SVG by the page's own chart module (static/chart.js). The one thing it changes is a
// station's role config, through PUT /api/stations/{uuid}/roles (the admin API and the
// dashboard edit it). Every one of these answers 403 to a principal that is not an admin, and so
// the page tells a non-admin that it is for admins only.
//
// # What it does not do
//
// No kick, no identity edit, no plugin upload. It has no session of its own (no cookie), so it
// needs no CSRF defence: a request without the token in its header is refused.
//
// # Security headers
//
// Every response of /admin carries a Content-Security-Policy that allows scripts, styles and
// fetches from the gateway's own origin only (plus its websocket origin), no inline script or
// style, no framing, and no form submission; and X-Content-Type-Options, Referrer-Policy and
// Cache-Control: no-cache with a content ETag.
//
// # Concurrency
//
// [Handler] is immutable after [New]; its methods are safe for concurrent use.
package admin
