package margen

import (
	"context"
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
