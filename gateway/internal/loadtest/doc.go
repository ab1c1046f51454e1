// Package loadtest is the load generator behind `teragate bench`: it drives a
// running gateway (or the bare gorilla broadcast baseline, [BareServer]) with
// many real websocket clients and measures throughput, latency, CPU and memory.
//
// # What it does
//
//   - Generates an identity directory ([GenerateDirectory]) with users,
//     participants, devices spread over projects, and one admin service, so a
//     spawned gateway can be logged into cheaply (one shared bcrypt hash of
//     cost 4).
//   - Opens N websocket clients ([Run]) at a controlled rate with a bounded
//     number of logins in flight, each through the real HTTP login endpoints
//     (`/api/user|participant|device/login`), or straight to `/ws` for the bare
//     server.
//   - Publishes TeraEvents over HTTP keep-alive (`POST /api/events`) at a fixed
//     event rate or at the event rate that gives a fixed delivery rate, with the
//     publish time in `header.time`; clients extract that time cheaply (a small
//     byte scanner for JSON frames, protowire for binary frames) and record
//     latency in a sharded log-linear [Histogram].
//   - Samples the server's CPU time and RSS from /proc ([ReadProcStat]) and the
//     bench's own CPU, prints a progress line every second and returns a
//     [Report] (plain aligned text or JSON).
//   - Idle mode: opens N connections, waits, and reports the server's RSS growth
//     per connection.
//   - Storm mode ([StormConfig]): connects N clients, publishes throughout,
//     breaks every connection at once (the clients reset their TCP
//     connections, or the caller restarts the server) and lets each client
//     reconnect with sdk/client's jittered exponential backoff, a fresh login
//     and websocket per attempt; reports when all are back, refusals by
//     status, whether the server's online lists match the open sockets, and
//     deliveries to the sockets that were live ([StormReport]).
//   - Keeps one [Sample] per second ([Report.Series]) and draws it as a PNG
//     ([WritePlot], gonum/plot).
//
// # What it does not do
//
// It never asserts speed: figures are reported, not checked. It does not
// start the gateway process itself; the `teragate bench` command does that
// and passes the pid. It does not validate event contents beyond recognising
// its own events (they carry the marker [Marker]) and their timestamp.
//
// # Concurrency
//
// [Run] owns every goroutine it starts (one reader per client, the
// publishers, the progress ticker) and returns only after they stopped.
// [Histogram] is safe for concurrent use. [BareServer] is safe for concurrent
// use; its Close stops every goroutine it started.
package loadtest
