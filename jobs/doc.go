// Package jobs runs the background work of the durable job queue
// (margen.JobStore): it claims due jobs with a lease, dispatches each by
// kind to the handler registered for it, and records the outcome (done,
// retried with exponential backoff and full jitter, or dead-lettered after
// its last attempt). Several runners, in one process or many, share one
// queue: a job is run by one claim at a time, and a job whose worker died
// is claimed again when its lease runs out.
//
// Periodic kinds (Kind.Every) are enqueued once per period slot with a
// unique key, so any number of runners schedule each slot once.
//
// The package knows no SQL and no business rule: handlers do the work
// through the services and the store; what a job means is theirs.
package jobs
