// Package metrics exposes margen's Prometheus metrics: decisions by
// outcome, the time to answer an approval request, the requests still
// pending, the webhook job queue depth and webhook failures, beside the Go
// runtime and process collectors.
//
// Everything lives in a private registry owned by one *Metrics: no global
// state, so tests and several servers in one process do not collide. The
// package knows the counting hooks and the two store counts it asks for,
// never SQL, HTTP routing or policy.
package metrics
