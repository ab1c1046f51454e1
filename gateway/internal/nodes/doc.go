// Package nodes keeps the live node list of the admin page: every node publishes a small stats
// record about itself (its id, advertised address, open connections, start time and cumulative
// connects and deliveries, with the rates it computes from them) once a second, and any node
// lists every node through GET /api/admin/nodes.
//
// # Where the records live
//
// On a single node, in memory: the list is the node itself. With Redis, each record is a key
// (teragate:nodes:stats:<node>, JSON) written with a time to live of three node TTLs
// (redis_node_ttl) and indexed in a sorted set (teragate:nodes:index, scored by expiry), so a node
// that stops publishing leaves the list on its own.
//
// # Liveness
//
// Whether a node is up is not decided here: it is the presence heartbeat's rule (see
// gateway/internal/presence, RedisCluster). A listed node whose heartbeat key expired, or that
// shut down and deleted it, is shown down, with its last record, until its record expires (two
// more node TTLs), then it is gone. The last heartbeat time shown is the heartbeat key's.
//
// # Rates
//
// Each node computes its own rates (connects and deliveries per second) over the samples of the
// last [DefaultRateWindow], from the same counters /metrics exposes, so the figures do not depend
// on who polls the list or how often.
//
// # Concurrency
//
// A [Service]'s methods are safe for concurrent use.
package nodes
