package margen

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// JobLedgerCheck runs `ledger check` for one organisation (Job.OrgID) and
// stores its report (payload: LedgerCheckJob).
const JobLedgerCheck = "ledger.check"

// LedgerCheckJob is the payload of a JobLedgerCheck job.
type LedgerCheckJob struct {
	// FromLatest starts the audit check from the signed checkpoint of the
	// latest clean report, when there is one and its signature verifies:
	// only the history written since is re-walked (see
	// Store.CheckAuditFrom). Otherwise the whole trail is checked.
	FromLatest bool `json:"from_latest,omitempty"`
}

// LedgerCheck is the stored report of one run of `ledger check`: the
// ledger re-derived and the audit trail verified.
type LedgerCheck struct {
	ID         string       `json:"id"`
	OrgID      string       `json:"-"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt time.Time    `json:"finished_at"`
	OK         bool         `json:"ok"`
	Ledger     LedgerReport `json:"ledger"`
	Audit      AuditReport  `json:"audit"`
	// Checkpoint is the head of the trail the check verified, signed with
	// the audit key; set only when the audit verified. A later check may
	// start from it (LedgerCheckJob.FromLatest).
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// LedgerCheckStore runs the checks and keeps their latest reports.
type LedgerCheckStore interface {
	// CheckLedger re-derives every account of the organisation from its
	// ledger entries and from the decisions and approvals that caused them,
	// streaming (its memory does not grow with the organisation).
	CheckLedger(ctx context.Context, orgID string) (LedgerReport, error)
	// CheckAudit verifies the chain and every row it seals (see
	// AuditReport), streaming.
	CheckAudit(ctx context.Context, orgID string) (AuditReport, error)
	// CheckAuditFrom is CheckAudit from a checkpoint whose signature the
	// caller verified (nil: the whole trail).
	CheckAuditFrom(ctx context.Context, orgID string, from *Checkpoint) (AuditReport, error)
	// SaveLedgerCheck stores a report (filling its id), keeping the newest
	// few of the organisation.
	SaveLedgerCheck(ctx context.Context, c *LedgerCheck) error
	// LatestLedgerCheck returns the organisation's newest report, or with
	// ok the newest that found nothing wrong (ENOTFOUND: none yet).
	LatestLedgerCheck(ctx context.Context, orgID string, ok bool) (*LedgerCheck, error)
	// LedgerCheckQueued reports whether a JobLedgerCheck job of the
	// organisation is waiting or running.
	LedgerCheckQueued(ctx context.Context, orgID string) (bool, error)
}

// LedgerCheckQueuer is what QueueLedgerCheck asks of a store (Store has it).
type LedgerCheckQueuer interface {
	LedgerCheckQueued(ctx context.Context, orgID string) (bool, error)
	EnqueueJob(ctx context.Context, j *Job) (bool, error)
}

// QueueLedgerCheck queues a JobLedgerCheck of the organisation to run now,
// unless one is already waiting or running; it reports whether it queued
// one. Both doors ask for a check through it (POST /api/v1/ledger/check
// and the desk's "check the chain"): the check streams every row of the
// organisation, so it never runs inside a request.
func QueueLedgerCheck(ctx context.Context, st LedgerCheckQueuer, orgID string, p LedgerCheckJob, now time.Time) (bool, error) {
	queued, err := st.LedgerCheckQueued(ctx, orgID)
	if err != nil || queued {
		return false, err
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("ledger check payload: %w", err)
	}
	return st.EnqueueJob(ctx, &Job{Kind: JobLedgerCheck, OrgID: orgID, Payload: payload, RunAt: now, CreatedAt: now})
}
