package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/margenhq/margen"
)

// LedgerChecker is what the ledger check job asks of the store
// (margen.Store has it).
type LedgerChecker interface {
	OrgByID(ctx context.Context, id string) (*margen.Org, error)
	CheckLedger(ctx context.Context, orgID string) (margen.LedgerReport, error)
	CheckAuditFrom(ctx context.Context, orgID string, from *margen.Checkpoint) (margen.AuditReport, error)
	ListAudit(ctx context.Context, orgID string, afterSeq int64, limit int) ([]margen.AuditEntry, error)
	SaveLedgerCheck(ctx context.Context, c *margen.LedgerCheck) error
	LatestLedgerCheck(ctx context.Context, orgID string, ok bool) (*margen.LedgerCheck, error)
}

// LedgerCheckLease is the lease a runner of ledger checks needs: a check of
// a large organisation streams every row for minutes, so it runs on a
// runner of its own (one check at a time, so their memory does not add
// up) with this lease, and the kind's timeout is half of it.
const LedgerCheckLease = 2 * time.Hour

// LedgerCheck is the kind (margen.JobLedgerCheck) that runs `ledger check`
// for the job's organisation and stores the report: the ledger re-derived
// and the audit trail verified, and, when the trail verified, a checkpoint
// of its head signed with key, from which a later check may start
// (margen.LedgerCheckJob.FromLatest) if the signature still verifies.
func LedgerCheck(st LedgerChecker, key margen.AuditKey, clock margen.Clock) Kind {
	if clock == nil {
		clock = margen.SystemClock{}
	}
	return Kind{MaxAttempts: 3, Timeout: LedgerCheckLease / 2, Handler: func(ctx context.Context, a *Attempt) error {
		var p margen.LedgerCheckJob
		if len(a.Job.Payload) > 0 {
			if err := json.Unmarshal(a.Job.Payload, &p); err != nil {
				return Permanent(fmt.Errorf("ledger check payload: %w", err))
			}
		}
		org, err := st.OrgByID(ctx, a.Job.OrgID)
		if margen.IsCode(err, margen.ENOTFOUND) {
			return Permanent(err)
		}
		if err != nil {
			return err
		}
		c := margen.LedgerCheck{OrgID: org.ID, StartedAt: clock.Now()}
		var from *margen.Checkpoint
		if p.FromLatest {
			last, err := st.LatestLedgerCheck(ctx, org.ID, true)
			switch {
			case margen.IsCode(err, margen.ENOTFOUND):
			case err != nil:
				return err
			case last.OK && last.Checkpoint != nil && last.Checkpoint.OrgID == org.ID &&
				margen.VerifyCheckpoint(last.Checkpoint, key.PublicKey()) == nil:
				from = last.Checkpoint
			}
		}
		if c.Ledger, err = st.CheckLedger(ctx, org.ID); err != nil {
			return err
		}
		if c.Audit, err = st.CheckAuditFrom(ctx, org.ID, from); err != nil {
			return err
		}
		if c.Audit.Problems == nil {
			c.Audit.Problems = []margen.AuditProblem{}
		}
		c.OK = c.Ledger.OK() && c.Audit.OK()
		if c.Audit.OK() && c.Audit.Entries > 0 {
			head, err := st.ListAudit(ctx, org.ID, c.Audit.Entries-1, 1)
			if err != nil {
				return err
			}
			if len(head) != 1 || head[0].Seq != c.Audit.Entries {
				return errors.New("ledger check: the verified head is gone")
			}
			cp := margen.Checkpoint{Org: org.Slug, OrgID: org.ID, Seq: head[0].Seq, Hash: head[0].Hash,
				At: clock.Now().UTC().Truncate(time.Microsecond)}
			key.SignCheckpoint(&cp)
			c.Checkpoint = &cp
		}
		c.FinishedAt = clock.Now()
		return st.SaveLedgerCheck(ctx, &c)
	}}
}
