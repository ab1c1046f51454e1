// Package api is teragate's HTTP surface, compatible with OpenTera's: the login and logout
// endpoints of users, participants and devices, the websocket endpoints /wss/<kind>, the service
// event endpoint POST /api/events, and /healthz, /readyz and /metrics.
//
// Errors are answered as OpenTera's Flask API does: a JSON string body with the message (for
// example "User already logged in.") and the status code. Every request is counted in metrics.
//
// The handlers hold no state of their own beyond their dependencies ([Deps]); all are safe for
// concurrent use.
package api
