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
// (WebhookStore.DispatchWebhooks: only committed changes are ever sent;
// each body is margen.WebhookBody of one event's typed payload, see
// margen.EventVocabulary),
// each with a job of the durable queue (margen.JobWebhookDelivery) in the
// same transaction. Deliver, the job's handler (registered on a jobs.Runner
// with Kind), POSTs the delivery with a client timeout and records the
// attempt, with its status, the first KiB of the answer and its duration,
// together with the job's result. A 2xx answer delivers; anything else is
// retried by the queue with exponential backoff and full jitter until
// MaxAttempts, then the delivery is marked failed (it can still be
// replayed). The queue's leases keep several processes from sending the
// same attempt at once.
//
// The package never logs or records a secret, and reads the time for
// signatures and schedules only through the injected margen.Clock (attempt
// durations are measured with the monotonic clock).
package webhook
