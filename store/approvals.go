package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/ledger"
)

var _ margen.ApprovalStore = (*DB)(nil)

// errAlreadyDecided is the answer to a resolution that came too late: the
// request is no longer pending at the level the resolver saw.
func errAlreadyDecided() error {
	return margen.Errorf(margen.ECONFLICT, "error.approval_already_decided")
}

// --- reading ---

var approvalEventCols = []string{"org_id", "id", "approval_id", "kind", "actor", "from_role", "to_role", "comment", "at"}

const approvalEventSelect = "SELECT id, approval_id, kind, actor, from_role, to_role, comment, at FROM approval_events"

func scanApprovalEvent(s scanner) (margen.ApprovalEvent, error) {
	var e margen.ApprovalEvent
	err := s.Scan(&e.ID, &e.ApprovalID, &e.Kind, &e.Actor, &e.FromRole, &e.ToRole, &e.Comment, tsCol{&e.At})
	return e, err
}

// ListApprovals pages through the organisation's requests, newest first.
func (db *DB) ListApprovals(ctx context.Context, orgID string, f margen.ApprovalFilter) ([]margen.Approval, error) {
	var w where
	w.add("org_id = ?", orgID)
	w.eq("status", f.Status)
	w.eq("member_id", f.MemberID)
	if len(f.ApproverRoles) > 0 {
		args := make([]any, len(f.ApproverRoles))
		for i, r := range f.ApproverRoles {
			args[i] = r
		}
		w.add("approver_role IN (?"+strings.Repeat(", ?", len(args)-1)+")", args...)
	}
	w.page(f.Page)
	return getMany(ctx, db, scanApproval, approvalSelect+w.sql()+" ORDER BY id DESC LIMIT ?", w.argsLimit(f.Page)...)
}

// GetApprovalWithHistory returns a request with its history, oldest first.
func (db *DB) GetApprovalWithHistory(ctx context.Context, orgID, id string) (*margen.Approval, error) {
	// One snapshot for the request and its events.
	var opts *sql.TxOptions
	if db.d.pg {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	defer release()
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		return nil, dbErr("get approval", err)
	}
	defer tx.Rollback()
	a, err := scanApproval(tx.QueryRowContext(ctx, db.d.rebind(approvalSelect+" WHERE org_id = ? AND id = ?"), orgID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound("approval")
	}
	if err != nil {
		return nil, dbErr("get approval", err)
	}
	if err := attachHistory(ctx, tx, db.d, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// attachHistory reads a request's events into a.History.
func attachHistory(ctx context.Context, q querier, d dialect, a *margen.Approval) error {
	rows, err := q.QueryContext(ctx, d.rebind(approvalEventSelect+" WHERE org_id = ? AND approval_id = ? ORDER BY at, id"), a.OrgID, a.ID)
	if err != nil {
		return dbErr("approval history", err)
	}
	evs, err := collect(rows, scanApprovalEvent)
	if err != nil {
		return err
	}
	a.History = completeHistory(a, evs)
	return nil
}

// completeHistory puts the "requested" event first. Requests opened by the
// decision engine (through DecideBatch) store no event of their own: theirs
// is derived from the request itself (the member asked, routed to the first
// approver role, at creation), with an id derived from the request's.
func completeHistory(a *margen.Approval, evs []margen.ApprovalEvent) []margen.ApprovalEvent {
	for _, e := range evs {
		if e.Kind == margen.EventRequested {
			return evs
		}
	}
	role := a.ApproverRole
	for _, e := range evs {
		if e.Kind == margen.EventEscalated {
			role = e.FromRole
			break
		}
	}
	id := a.ID
	if i := strings.IndexByte(id, '_'); i >= 0 {
		id = id[i+1:]
	}
	req := margen.ApprovalEvent{ID: "ape_" + id, ApprovalID: a.ID, Kind: margen.EventRequested, Actor: a.MemberID,
		ToRole: role, At: a.CreatedAt}
	return append([]margen.ApprovalEvent{req}, evs...)
}

// DueApprovals lists pending requests of every organisation due at or
// before now, oldest due first (the partial index approvals_due).
func (db *DB) DueApprovals(ctx context.Context, now time.Time, limit int) ([]margen.Approval, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	return getMany(ctx, db, scanApproval, approvalSelect+" WHERE status = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?",
		db.d.ts(now), limit)
}

// PendingApprovals counts the open requests of every organisation.
func (db *DB) PendingApprovals(ctx context.Context) (int, error) {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return 0, err
	}
	defer release()
	var n int
	err = c.QueryRowContext(ctx, "SELECT COUNT(*) FROM approvals WHERE status = 'pending'").Scan(&n)
	return n, dbErr("count pending approvals", err)
}

// --- exceptions ---

// approvalAllCols is every approval column, for requests inserted here.
var approvalAllCols = approvalReadCols

func approvalAllArgs(d dialect, x *margen.Approval, a []any) []any {
	a = approvalArgs(d, x, a)
	return append(a, x.Kind, x.Description, x.Level, x.DecidedBy, d.tsPtr(x.DecidedAt), x.Comment, x.ActID)
}

// RequestException records a request that no grant covers: the decision
// (outcome needs_approval, no budget held), its approval request of kind
// "exception", the "requested" history event, the audit entry (action
// "exception.request", data margen.EventData) and the idempotency record,
// in one transaction.
//
// The decision names its member and customer by id: the member must exist,
// and so must the customer when d.CustomerID is set, unless cus brings it:
// a new customer is created in the same transaction. Zero ids and times are filled in; the
// approval takes the decision's member, customer, action and amount when it
// names none, and DueAt defaults to CreatedAt + SLA.
func (db *DB) RequestException(ctx context.Context, dec *margen.Decision, apr *margen.Approval, cus *margen.Customer, idem *margen.Idempotency) error {
	d, a := *dec, *apr
	if d.ID == "" {
		d.ID = margen.NewID("dec")
	}
	if a.ID == "" {
		a.ID = margen.NewID("apr")
	}
	stamp(&d.CreatedAt)
	d.Outcome = margen.OutcomeNeedsApproval
	d.ApprovalID = a.ID
	d.ActID, d.RefusalID = "", ""
	d.Budgets = nil // an exception holds no budget
	a.OrgID, a.DecisionID = d.OrgID, d.ID
	a.Kind = margen.ApprovalKindException
	a.Status = margen.ApprovalPending
	a.Level = 0
	a.DecidedBy, a.DecidedAt, a.Comment, a.ActID = "", nil, "", ""
	if a.MemberID == "" {
		a.MemberID = d.MemberID
	}
	if a.CustomerID == "" {
		a.CustomerID = d.CustomerID
	}
	if a.Action == "" {
		a.Action = d.Action
	}
	if a.Amount == 0 {
		a.Amount = d.Amount
	}
	stampAt(&a.CreatedAt, d.CreatedAt)
	stampAt(&a.DueAt, a.CreatedAt.Add(a.SLA))
	ev := margen.ApprovalEvent{ID: margen.NewID("ape"), ApprovalID: a.ID, Kind: margen.EventRequested,
		Actor: a.MemberID, ToRole: a.ApproverRole, Comment: a.Description, At: a.CreatedAt}

	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(d.OrgID)
		if err != nil {
			return err
		}
		if err := t.insertIdem(idem); err != nil {
			return err
		}
		team, err := t.memberTeam(d.OrgID, d.MemberID)
		if err != nil {
			return err
		}
		d.Team = team // as it is now: the decision keeps it
		if err := t.firstSight(cus, d.CreatedAt); err != nil {
			return err
		}
		if d.CustomerID != "" {
			if err := t.exists("customer", "SELECT 1 FROM customers WHERE org_id = ? AND id = ?", d.OrgID, d.CustomerID); err != nil {
				return err
			}
		}
		var encErr error
		err = t.insertMany("decisions", decisionCols, "", 1, func(_ int, args []any) []any {
			args, encErr = decisionArgs(db.d, &d, args)
			return args
		})
		if encErr != nil {
			return encErr
		}
		if err != nil {
			return conflictOr("insert decision", err, "error.decision_exists")
		}
		err = t.insertMany("approvals", approvalAllCols, "", 1, func(_ int, args []any) []any {
			return approvalAllArgs(db.d, &a, args)
		})
		if err != nil {
			return conflictOr("insert approval", err, "error.approval_exists")
		}
		if err := t.insertApprovalEvent(a.OrgID, &ev); err != nil {
			return err
		}
		t.touch("decisions", d.OrgID, "id", d.ID)
		t.touch("approvals", d.OrgID, "id", a.ID)
		t.touch("approval_events", d.OrgID, "id", ev.ID)
		data, err := json.Marshal(margen.EventData{Outcome: d.Outcome, Action: a.Action, Amount: a.Amount,
			Customer: a.CustomerID, Version: d.PolicyVersion, Member: a.MemberID, Team: team, DecisionID: d.ID,
			ApprovalID: a.ID, ApproverRole: a.ApproverRole, DueAt: a.DueAt.Format(time.RFC3339)})
		if err != nil {
			return err
		}
		return t.audit(c, margen.AuditEntry{OrgID: d.OrgID, At: d.CreatedAt, Actor: d.MemberID,
			Action: "exception.request", Subject: a.ID, Data: data})
	})
	if err != nil {
		return err
	}
	d.Budgets = []margen.BudgetView{}
	a.History = []margen.ApprovalEvent{ev}
	*dec, *apr = d, a
	return nil
}

// memberTeam returns a member's team slug; an unknown member is not found.
func (t *wtx) memberTeam(orgID, memberID string) (string, error) {
	var team string
	err := t.queryRow("SELECT team FROM members WHERE org_id = ? AND id = ?", orgID, memberID).Scan(&team)
	if errors.Is(err, sql.ErrNoRows) {
		return "", margen.NotFound("member")
	}
	return team, dbErr("read member", err)
}

func (t *wtx) insertApprovalEvent(orgID string, e *margen.ApprovalEvent) error {
	err := t.insertMany("approval_events", approvalEventCols, "", 1, func(_ int, args []any) []any {
		return append(args, orgID, e.ID, e.ApprovalID, e.Kind, e.Actor, e.FromRole, e.ToRole, e.Comment, t.db.d.ts(e.At))
	})
	return dbErr("insert approval event", err)
}

// --- resolution ---

// approvalLockSelect reads a request with its requester's team and what
// the act of an approval copies from the decision.
var approvalLockSelect = func() string {
	cols := make([]string, len(approvalReadCols))
	for i, c := range approvalReadCols {
		cols[i] = "a." + c
	}
	return "SELECT " + strings.Join(cols, ", ") + `, COALESCE(m.team, ''), COALESCE(d.currency, ''), COALESCE(d.reason, ''),
		COALESCE(d.flagged, FALSE)
	FROM approvals a
	LEFT JOIN members m ON m.org_id = a.org_id AND m.id = a.member_id
	LEFT JOIN decisions d ON d.org_id = a.org_id AND d.id = a.decision_id
	WHERE a.org_id = ? AND a.id = ?`
}()

// holdUpsert moves amounts on existing budget accounts (the accounts of a
// held request always exist); a scope-less row never changes the account's
// scope, period kind or limit.
const holdUpsert = ` ON CONFLICT (org_id, budget_id, subject, period) DO UPDATE SET
	posted     = budget_accounts.posted + excluded.posted,
	pending    = budget_accounts.pending + excluded.pending,
	updated_at = excluded.updated_at`

var holdAccountCols = []string{"org_id", "budget_id", "subject", "period", "posted", "pending", "updated_at"}

var holdLedgerCols = []string{"org_id", "id", "budget_id", "subject", "period", "decision_id", "kind", "amount", "created_at"}

// ResolveApproval answers a pending request, or escalates it, exactly once:
// see margen.ApprovalStore. In one transaction: the request's row is locked
// and re-read, and updated only if it is still pending at r.Level (the
// UPDATE repeats the condition); the ledger entries, the act, the history
// event are written; then the organisation row is locked (the audit chain)
// for the balances, the audit entry and the idempotency record. Locking the
// request before the organisation keeps concurrent answers to one request
// off the organisation's lock: only the winner takes it, which is what
// bounds throughput on PostgreSQL (see lockRequest).
func (db *DB) ResolveApproval(ctx context.Context, orgID string, r margen.Resolution, idem *margen.Idempotency) (*margen.Approval, error) {
	terminal := false
	switch r.Status {
	case margen.ApprovalApproved, margen.ApprovalRejected, margen.ApprovalExpired:
		terminal = true
	case margen.Escalated:
		if r.Approver == "" {
			return nil, margen.Invalid("approver", "error.invalid_value", "field", "approver", "allowed", "a policy role")
		}
		if r.DueAt.IsZero() {
			return nil, margen.Invalid("due_at", "error.invalid_time", "field", "due_at")
		}
		r.DueAt = r.DueAt.UTC().Truncate(time.Microsecond)
	default:
		return nil, margen.Invalid("status", "error.invalid_value", "field", "status",
			"allowed", "approved, rejected, expired, escalated")
	}
	stamp(&r.At)
	r.Actor = actorOr(r.Actor, "system")
	if r.Status == margen.ApprovalApproved && r.ActID == "" {
		r.ActID = margen.NewID("act")
	}
	if r.Status != margen.ApprovalApproved {
		r.ActID = ""
	}

	// A request that is not pending at r.Level now never will be again
	// (statuses are final, levels only grow): refuse it without queueing
	// for the organisation's lock. A request that looks open is checked
	// again under the lock.
	var status string
	var level int
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	err = c.QueryRowContext(ctx, db.d.rebind("SELECT status, level FROM approvals WHERE org_id = ? AND id = ?"),
		orgID, r.ApprovalID).Scan(&status, &level)
	release() // before the write transaction takes one
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound("approval")
	}
	if err != nil {
		return nil, dbErr("read approval", err)
	}
	if status != margen.ApprovalPending || level != r.Level {
		return nil, errAlreadyDecided()
	}

	var out margen.Approval
	err = db.writeTx(ctx, func(t *wtx) error {
		// Lock the request first: concurrent answers to one request queue
		// here, and the losers leave without ever waiting for the
		// organisation. Lock order: the request's row, then the
		// organisation row (only ResolveApproval locks existing requests,
		// always in this order; a request's row is never locked by a
		// writer that holds the organisation row).
		var team, currency, reason string
		var flagged bool
		row := t.queryRow(approvalLockSelect+db.lockRequest(), orgID, r.ApprovalID)
		a, err := scanApproval(scanExtra{row, []any{&team, &currency, &reason, &flagged}})
		if errors.Is(err, sql.ErrNoRows) {
			return margen.NotFound("approval")
		}
		if err != nil {
			return dbErr("read approval", err)
		}
		if a.Status != margen.ApprovalPending || a.Level != r.Level {
			return errAlreadyDecided()
		}
		ts := db.d.ts(r.At)
		var res sql.Result
		fromRole := a.ApproverRole
		if terminal {
			res, err = t.exec(`UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, comment = ?, act_id = ?
				WHERE org_id = ? AND id = ? AND status = 'pending' AND level = ?`,
				r.Status, r.Actor, ts, r.Comment, r.ActID, orgID, a.ID, r.Level)
		} else {
			res, err = t.exec(`UPDATE approvals SET approver_role = ?, due_at = ?, sla_us = ?, on_timeout = ?,
				escalate_to = ?, level = level + 1
				WHERE org_id = ? AND id = ? AND status = 'pending' AND level = ?`,
				r.Approver, db.d.ts(r.DueAt), max(r.DueAt.Sub(r.At), 0).Microseconds(), r.OnTimeout, r.EscalateTo,
				orgID, a.ID, r.Level)
		}
		if err != nil {
			return dbErr("resolve approval", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("resolve approval", err)
		} else if n != 1 {
			return errAlreadyDecided() // cannot happen under the row lock; never resolve twice
		}

		var holds []hold
		if terminal {
			a.Status, a.DecidedBy, a.Comment, a.ActID = r.Status, r.Actor, r.Comment, r.ActID
			at := r.At
			a.DecidedAt = &at
			if holds, err = t.releaseHold(orgID, a.DecisionID, r.Status == margen.ApprovalApproved, r.At); err != nil {
				return err
			}
		} else {
			a.ApproverRole, a.DueAt, a.OnTimeout, a.EscalateTo = r.Approver, r.DueAt, r.OnTimeout, r.EscalateTo
			a.SLA = max(r.DueAt.Sub(r.At), 0)
			a.Level++
		}
		if r.Status == margen.ApprovalApproved {
			act := margen.Act{ID: r.ActID, OrgID: orgID, DecisionID: a.DecisionID, MemberID: a.MemberID,
				CustomerID: a.CustomerID, Action: a.Action, Amount: a.Amount, Currency: currency, Reason: reason,
				Flagged: flagged, CreatedAt: r.At, AfterTheFact: a.Kind == margen.ApprovalKindRatification, Team: team}
			err := t.insertMany("acts", actCols, "", 1, func(_ int, args []any) []any { return actArgs(db.d, &act, args) })
			if err != nil {
				return conflictOr("insert act", err, "error.act_exists")
			}
			if _, err := t.exec("UPDATE decisions SET act_id = ? WHERE org_id = ? AND id = ?", act.ID, orgID, a.DecisionID); err != nil {
				return dbErr("link act", err)
			}
		}

		ev := margen.ApprovalEvent{ID: margen.NewID("ape"), ApprovalID: a.ID, Kind: r.Status, Actor: r.Actor,
			Comment: r.Comment, At: r.At}
		ed := margen.EventData{Action: a.Action, Amount: a.Amount, Customer: a.CustomerID, Member: a.MemberID,
			Team: team, DecisionID: a.DecisionID, ActID: a.ActID, ApprovalID: a.ID, Status: r.Status}
		if terminal {
			ed.ApproverRole = fromRole
			ed.DecidedBy = r.Actor
			ed.TimeToAnswer = max(r.At.Sub(a.CreatedAt), 0).Milliseconds()
		} else {
			ev.FromRole, ev.ToRole = fromRole, r.Approver
			ed.ApproverRole = r.Approver
			ed.FromRole = fromRole
			ed.DueAt = r.DueAt.Format(time.RFC3339)
		}
		if err := t.insertApprovalEvent(orgID, &ev); err != nil {
			return err
		}
		if a.Level == 0 && a.Kind != margen.ApprovalKindException {
			// Opened by the decision engine and never moved: this event is
			// the first one stored.
			a.History = completeHistory(&a, []margen.ApprovalEvent{ev})
		} else if err := attachHistory(t.ctx, t.tx, db.d, &a); err != nil {
			return err
		}
		// The rows this resolution wrote or changed, for the audit entry.
		t.touch("approvals", orgID, "id", a.ID)
		t.touch("approval_events", orgID, "id", ev.ID)
		if len(holds) > 0 {
			t.touch("ledger_entries", orgID, "decision_id", a.DecisionID)
		}
		if r.Status == margen.ApprovalApproved {
			t.touch("acts", orgID, "id", r.ActID)
			t.touch("decisions", orgID, "id", a.DecisionID)
		}
		data, err := json.Marshal(ed)
		if err != nil {
			return err
		}

		// Only now the organisation: its lock is held for the few writes
		// that need it (budget balances, the audit chain, the idempotency
		// key) and the commit.
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		err = t.finishUnderOrgLock(c, orgID, holds, r.Status == margen.ApprovalApproved, r.At,
			margen.AuditEntry{OrgID: orgID, At: r.At, Actor: r.Actor,
				Action: "approval." + r.Status, Subject: a.ID, Data: data}, idem)
		if err != nil {
			return err
		}
		out = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// finishUnderOrgLock writes what needs the organisation's lock: the
// balances, the audit entry and the idempotency record. The lock serialises
// every writer of the organisation up to its commit, so on PostgreSQL the
// four writes go in one statement (one round trip, data-modifying CTEs);
// SQLite, where a statement costs no round trip, runs them one by one.
func (t *wtx) finishUnderOrgLock(c *chain, orgID string, holds []hold, post bool, at time.Time,
	e margen.AuditEntry, idem *margen.Idempotency) error {
	d := t.db.d
	if !d.pg || c.sealedFrom == 0 {
		// (A chain not sealed yet is sealed by appendAudit, here once.)
		if err := t.applyHolds(orgID, holds, post, at); err != nil {
			return err
		}
		if err := t.audit(c, e); err != nil {
			return err
		}
		return t.insertIdem(idem)
	}
	if c.keyID != t.db.key.ID() {
		return errAuditKey(orgID, c.keyID, t.db.key.ID())
	}
	// The chain link, as appendAudit makes it, committing to the rows
	// this transaction touched.
	rows, err := t.touchedRows(orgID)
	if err != nil {
		return err
	}
	e.Rows = rows
	t.link(c, &e, time.Now().UTC().Truncate(time.Microsecond))

	var b strings.Builder
	var args []any
	b.WriteString("WITH ")
	if _, deltas := ledger.Release(ledgerHolds(holds), post); len(deltas) > 0 {
		b.WriteString("acc AS (INSERT INTO budget_accounts (" + strings.Join(holdAccountCols, ", ") + ") VALUES ")
		ts := d.ts(at)
		for i, x := range deltas {
			if i > 0 {
				b.WriteString(", ")
			}
			d.placeholders(&b, len(holdAccountCols), len(args))
			args = append(args, orgID, x.Key.BudgetID, x.Key.Subject, x.Key.Period, x.Posted, x.Pending, ts)
		}
		b.WriteString(holdUpsert + "), ")
	}
	if idem != nil {
		stamp(&idem.CreatedAt)
		if idem.ExpiresAt.IsZero() {
			idem.ExpiresAt = idem.CreatedAt.Add(margen.DefaultIdempotencyTTL)
		}
		stamp(&idem.ExpiresAt)
		// An expired record of the key gives way (insertIdems does the same
		// with an upsert, which a data-modifying CTE cannot report).
		_, err := t.exec("DELETE FROM idempotency WHERE org_id = ? AND member_id = ? AND key = ? AND expires_at <= ?",
			idem.OrgID, idem.MemberID, idem.Key, d.ts(idem.CreatedAt))
		if err != nil {
			return dbErr("resolve approval", err)
		}
		b.WriteString("idem AS (INSERT INTO idempotency (" + strings.Join(idemCols, ", ") + ") VALUES ")
		d.placeholders(&b, len(idemCols), len(args))
		args = append(args, idem.OrgID, idem.MemberID, idem.Key, idem.RequestHash, response(idem), d.ts(idem.CreatedAt),
			d.ts(idem.ExpiresAt))
		b.WriteString("), ")
	}
	n := len(args)
	b.WriteString(fmt.Sprintf("head AS (UPDATE orgs SET audit_seq = $%d, audit_head = $%d WHERE id = $%d) ", n+1, n+2, n+3))
	args = append(args, e.Seq, e.Hash, orgID)
	b.WriteString("INSERT INTO audit_log (" + strings.Join(auditCols, ", ") + ") VALUES ")
	d.placeholders(&b, len(auditCols), len(args))
	args = append(args, e.OrgID, e.Seq, d.ts(e.At), e.Actor, e.Action, e.Subject, string(e.Data), e.PrevHash, e.Hash, e.Rows)
	if _, err := t.execRaw(b.String(), args...); err != nil {
		if idem != nil {
			// Under the organisation's lock, only the key can clash.
			return conflictOr("resolve approval", err, "error.idempotency_exists")
		}
		return dbErr("resolve approval", err)
	}
	c.seq, c.head, c.dirty = e.Seq, e.Hash, false
	return nil
}

// lockRequest locks the request row read by approvalLockSelect on
// PostgreSQL (FOR NO KEY UPDATE: foreign-key checks of inserted history
// events, FOR KEY SHARE, do not wait for it). SQLite's write transaction
// owns the database.
func (db *DB) lockRequest() string {
	if db.d.pg {
		return " FOR NO KEY UPDATE OF a"
	}
	return ""
}

// hold is what a decision still holds on one account.
type hold struct {
	key    margen.BudgetKey
	amount int64
}

// releaseHold ends the hold of a decision in the ledger: every pending
// amount it left on an account is reversed (a pending entry of the opposite
// sign) and, when post is set, posted on the same account. It returns the
// holds, for applyHolds to move the balances.
func (t *wtx) releaseHold(orgID, decisionID string, post bool, at time.Time) ([]hold, error) {
	rows, err := t.query(`SELECT budget_id, subject, period, SUM(amount) FROM ledger_entries
		WHERE org_id = ? AND decision_id = ? AND kind = 'pending'
		GROUP BY budget_id, subject, period ORDER BY budget_id, subject, period`, orgID, decisionID)
	if err != nil {
		return nil, dbErr("read hold", err)
	}
	holds, err := collect(rows, func(s scanner) (hold, error) {
		var h hold
		err := s.Scan(&h.key.BudgetID, &h.key.Subject, &h.key.Period, &h.amount)
		return h, err
	})
	if err != nil {
		return nil, err
	}
	holds = slices.DeleteFunc(holds, func(h hold) bool { return h.amount == 0 })
	if len(holds) == 0 {
		return nil, nil
	}
	entries, _ := ledger.Release(ledgerHolds(holds), post)
	ts := t.db.d.ts(at)
	err = t.insertMany("ledger_entries", holdLedgerCols, "", len(entries), func(i int, args []any) []any {
		e := &entries[i]
		return append(args, orgID, margen.NewID("led"), e.Key.BudgetID, e.Key.Subject, e.Key.Period, decisionID,
			e.Kind, e.Amount, ts)
	})
	if err != nil {
		return nil, conflictOr("insert ledger entries", err, "error.ledger_entry_exists")
	}
	return holds, nil
}

// applyHolds moves released holds on the account balances (pending down,
// and posted up when post is set), in key order. The caller holds the
// organisation's lock, as every writer of its accounts does.
func (t *wtx) applyHolds(orgID string, holds []hold, post bool, at time.Time) error {
	ts := t.db.d.ts(at)
	_, deltas := ledger.Release(ledgerHolds(holds), post)
	err := t.insertMany("budget_accounts", holdAccountCols, holdUpsert, len(deltas), func(i int, args []any) []any {
		x := &deltas[i]
		return append(args, orgID, x.Key.BudgetID, x.Key.Subject, x.Key.Period, x.Posted, x.Pending, ts)
	})
	return dbErr("release hold", err)
}

// ledgerHolds are the holds as package ledger takes them.
func ledgerHolds(holds []hold) []ledger.Hold {
	out := make([]ledger.Hold, len(holds))
	for i, h := range holds {
		out[i] = ledger.Hold{Key: h.key, Amount: h.amount}
	}
	return out
}

// scanExtra scans a row into an entity's columns followed by extra ones.
type scanExtra struct {
	s     scanner
	extra []any
}

func (x scanExtra) Scan(dest ...any) error { return x.s.Scan(append(dest, x.extra...)...) }
