// Package metrics holds teragate's Prometheus metrics: one [Metrics] value per gateway, registered
// on its own registry (never the global one), served on /metrics.
//
// Labels are low-cardinality (connection kind, reason, family), never a uuid. Counters used on the
// event path are resolved to label values once, at construction, so hot paths only do atomic adds.
//
// All methods are safe for concurrent use. A nil *Metrics is not valid; use [New].
package metrics
