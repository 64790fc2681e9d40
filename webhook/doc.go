// Package webhook signs and delivers webhooks.
//
// Signatures follow the Standard Webhooks scheme
// (https://www.standardwebhooks.com): a secret "whsec_" + base64(key); each
// request carries webhook-id (the delivery id, stable across retries),
// webhook-timestamp (Unix seconds) and webhook-signature
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
// Verify is the receiver's side, used by the tests and offered to Go
// receivers.
//
// The Worker turns committed audit entries into deliveries
// (WebhookStore.DispatchWebhooks: only committed changes are ever sent)
// and delivers them: it leases due deliveries (so several processes never
// send the same attempt at once), POSTs them with a client timeout, and
// records every attempt with its status, the first KiB of the answer and
// its duration. A 2xx answer delivers; anything else is retried with
// exponential backoff and full jitter until MaxAttempts, then the delivery
// is marked failed (it can still be replayed).
//
// The package never logs or records a secret, and reads the time for
// signatures and schedules only through the injected margen.Clock (attempt
// durations are measured with the monotonic clock).
package webhook
