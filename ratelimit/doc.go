// Package ratelimit is a keyed rate limiter with bounded memory: one token
// bucket (golang.org/x/time/rate) per key, such as an API token or a client
// address, so one noisy client is slowed down without touching the others.
//
// Memory is bounded however many keys a client invents: a key whose bucket
// has refilled is forgotten (forgetting it loses nothing, a new bucket
// starts full), and at most MaxKeys keys are tracked; beyond that the least
// recently seen key is forgotten. An attacker who rotates through more keys
// than that (addresses, say) can reset their own bucket, but only by
// spending MaxKeys requests on fresh keys, each of which is limited too.
//
// The package knows nothing of HTTP: the caller chooses the key and turns a
// refusal into its own answer (the API answers 429 with Retry-After). It
// must never block: Allow answers at once.
package ratelimit
