// Package httpapi is margen's JSON API under /api/v1, over the standard
// library's net/http: one route table, linear handlers (decode, validate,
// call the store or the decision engine, respond), errors mapped to HTTP
// status and RFC 9457 problem documents in exactly one place (problem.go).
//
// It authenticates API tokens, scopes what frontline members may see, makes
// state-changing calls idempotent with the Idempotency-Key header and serves
// its own OpenAPI 3.1 description at /api/v1/openapi.json.
//
// It must never hold SQL, evaluate policy itself, or send internal error
// text to a client: internal errors are logged with the request id and
// answered with a generic, translated message.
package httpapi
