package margen

import (
	"context"
	"encoding/json"
	"time"
)

// Job statuses. A pending job waits for its run time, or runs under a
// lease; done, dead (given up after its last attempt) and cancelled are
// final.
const (
	JobPending   = "pending"
	JobDone      = "done"
	JobDead      = "dead"
	JobCancelled = "cancelled"
)

// Job kinds run by margen serve.
const (
	// JobWebhookDelivery sends one webhook delivery (payload: the
	// delivery's id); its unique key is the delivery id.
	JobWebhookDelivery = "webhook.delivery"
	// JobPurge deletes expired idempotency records and old finished jobs.
	JobPurge = "purge"
)

// Job is one piece of background work in the durable queue. The queue is
// infrastructure, not tenant data: OrgID names the organisation a job works
// for ("" for work of the whole installation) but jobs are never shown to
// an organisation as such.
type Job struct {
	ID      string
	Kind    string
	OrgID   string
	Payload json.RawMessage
	// UniqueKey, when set, makes the job unique per kind: enqueuing a job
	// whose (kind, unique key) already exists changes nothing.
	UniqueKey string
	Status    string
	// Attempts counts the claims so far (the running attempt included).
	Attempts int
	// MaxAttempts bounds the attempts (0: the runner's default for the
	// kind).
	MaxAttempts int
	RunAt       time.Time
	// LeaseOwner names the claim that holds the job until LeaseUntil; only
	// that claim may finish it.
	LeaseOwner string
	LeaseUntil time.Time
	LastError  string
	CreatedAt  time.Time
	FinishedAt time.Time
}

// JobResult is how an attempt ended: done when Error is empty; otherwise
// retried at RetryAt, or dead-lettered when RetryAt is nil.
type JobResult struct {
	At      time.Time
	Error   string
	RetryAt *time.Time
}

// JobClaim asks for due jobs: pending, of one of Kinds, RunAt at or before
// Now, not leased (or with an expired lease). They are leased to Owner
// until Now+Lease and their attempt is counted.
type JobClaim struct {
	Kinds []string
	Owner string
	Now   time.Time
	Lease time.Duration
	Limit int
}

// JobStore is the durable job queue. Every write of the store may enqueue
// jobs in its own transaction (the transactional outbox), so a job exists
// if and only if the change that asked for it committed.
type JobStore interface {
	// EnqueueJob adds a job on its own. It reports false, changing
	// nothing, when the job's unique key is already taken.
	EnqueueJob(ctx context.Context, j *Job) (bool, error)
	// ClaimJobs leases due jobs, oldest due first; claimers in any number
	// of processes never get the same job while its lease runs (on
	// PostgreSQL with FOR UPDATE SKIP LOCKED; on SQLite the write
	// transaction owns the database).
	ClaimJobs(ctx context.Context, c JobClaim) ([]Job, error)
	// FinishJob records a claimed attempt's result. It reports false,
	// changing nothing, when j's claim no longer holds the job (its lease
	// ran out and another claim took it, or it was re-armed meanwhile).
	FinishJob(ctx context.Context, j *Job, r JobResult) (bool, error)
	// GetJob returns a job by id.
	GetJob(ctx context.Context, id string) (*Job, error)
	// PendingJobs counts the jobs not yet finished that are due at now
	// (the queue's backlog: jobs scheduled later, or waiting for a retry,
	// do not count).
	PendingJobs(ctx context.Context, now time.Time) (int, error)
	// PurgeJobs deletes done and cancelled jobs finished before before
	// (dead jobs stay, for inspection), at most limit of them.
	PurgeJobs(ctx context.Context, before time.Time, limit int) (int, error)
}
