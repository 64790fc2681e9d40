package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/margenhq/margen"
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
func (db *DB) DueApprovals(ctx context.Context, now time.Time, after margen.DueAfter, limit int) ([]margen.Approval, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	if after.ID == "" {
		return getMany(ctx, db, scanApproval, approvalSelect+" WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?",
			db.d.ts(now), limit)
	}
	// The index on due_at serves the range from the cursor's due time; the
	// requests due at that same time up to the cursor's id are filtered out.
	return getMany(ctx, db, scanApproval, approvalSelect+` WHERE status = 'pending' AND due_at <= ? AND due_at >= ?
		AND (due_at > ? OR id > ?) ORDER BY due_at, id LIMIT ?`,
		db.d.ts(now), db.d.ts(after.DueAt), db.d.ts(after.DueAt), after.ID, limit)
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

// RequestException records a request that no grant covers: see
// margen.ApprovalStore. In one transaction: the organisation row is locked
// and the requester's team read; plan computes the write; the idempotency
// record, a new customer, the decision, its approval request, the
// "requested" history event and the audit entry are written. The decision
// must be the organisation's and the member's, and a customer it names must
// exist unless the write brings it.
func (db *DB) RequestException(ctx context.Context, orgID, memberID string,
	plan func(*margen.ExceptionState) (*margen.ExceptionWrite, error)) error {
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		var st margen.ExceptionState
		if st.Team, err = t.memberTeam(orgID, memberID); err != nil {
			return err
		}
		w, err := plan(&st)
		if err != nil {
			return err
		}
		d, a, ev := &w.Decision, &w.Approval, &w.Event
		if d.OrgID != orgID || d.MemberID != memberID || a.OrgID != orgID || a.DecisionID != d.ID ||
			ev.ApprovalID != a.ID || w.Audit.OrgID != orgID || (w.Customer != nil && w.Customer.OrgID != orgID) ||
			(w.Idem != nil && w.Idem.OrgID != orgID) {
			return fmt.Errorf("store: exception of %s/%s writes a decision of %s/%s", orgID, memberID, d.OrgID, d.MemberID)
		}
		if err := t.insertIdem(w.Idem); err != nil {
			return err
		}
		if err := t.firstSight(w.Customer, d.CreatedAt); err != nil {
			return err
		}
		if d.CustomerID != "" {
			if err := t.exists("customer", "SELECT 1 FROM customers WHERE org_id = ? AND id = ?", orgID, d.CustomerID); err != nil {
				return err
			}
		}
		args, err := decisionArgs(db.d, d, nil)
		if err != nil {
			return err
		}
		if _, err := t.exec(insertDecision, args...); err != nil {
			return conflictOr("insert decision", err, "error.decision_exists")
		}
		if _, err = t.exec(insertApproval, approvalAllArgs(db.d, a, nil)...); err != nil {
			return conflictOr("insert approval", err, "error.approval_exists")
		}
		if err := t.insertApprovalEvent(orgID, ev); err != nil {
			return err
		}
		t.touch("decisions", orgID, "id", d.ID)
		t.touch("approvals", orgID, "id", a.ID)
		t.touch("approval_events", orgID, "id", ev.ID)
		return t.audit(c, w.Audit)
	})
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
	_, err := t.exec(insertApprovalEvent, orgID, e.ID, e.ApprovalID, e.Kind, e.Actor, e.FromRole, e.ToRole, e.Comment, t.db.d.ts(e.At))
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

// ResolveApproval moves a pending request on exactly once: see
// margen.ApprovalStore. In one transaction: the request's row is locked and
// re-read with what its resolution needs (margen.ResolutionState: the
// requester's team, what an act copies from the decision, the holds of the
// decision); resolve computes the write; the request is updated only if it
// is still pending at level (the UPDATE repeats the condition); the ledger
// entries, the act and the history event are inserted; then the
// organisation row is locked (the audit chain) for the balances, the audit
// entry and the idempotency record. Locking the request before the
// organisation keeps concurrent answers to one request off the
// organisation's lock: only the winner takes it, which is what bounds
// throughput on PostgreSQL (see lockRequest).
func (db *DB) ResolveApproval(ctx context.Context, orgID, approvalID string, level int,
	resolve func(*margen.ResolutionState) (*margen.ResolutionWrite, error)) (*margen.Approval, error) {
	// A request that is not pending at level now never will be again
	// (statuses are final, levels only grow): refuse it without queueing
	// for the write lock. A request that looks open is checked again under
	// the lock.
	var status string
	var lvl int
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	err = c.QueryRowContext(ctx, db.d.rebind("SELECT status, level FROM approvals WHERE org_id = ? AND id = ?"),
		orgID, approvalID).Scan(&status, &lvl)
	release() // before the write transaction takes one
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound("approval")
	}
	if err != nil {
		return nil, dbErr("read approval", err)
	}
	if status != margen.ApprovalPending || lvl != level {
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
		var st margen.ResolutionState
		row := t.queryRow(approvalLockSelect+db.lockRequest(), orgID, approvalID)
		st.Approval, err = scanApproval(scanExtra{row, []any{&st.Team, &st.Currency, &st.Reason, &st.Flagged}})
		if errors.Is(err, sql.ErrNoRows) {
			return margen.NotFound("approval")
		}
		if err != nil {
			return dbErr("read approval", err)
		}
		if st.Approval.Status != margen.ApprovalPending || st.Approval.Level != level {
			return errAlreadyDecided()
		}
		if st.Holds, err = t.readHolds(orgID, st.Approval.DecisionID); err != nil {
			return err
		}
		w, err := resolve(&st)
		if err != nil {
			return err
		}
		a := w.Approval
		if err := resolutionScope(orgID, &st.Approval, w); err != nil {
			return err
		}
		res, err := t.exec(`UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, comment = ?, act_id = ?,
			approver_role = ?, due_at = ?, sla_us = ?, on_timeout = ?, escalate_to = ?, level = ?
			WHERE org_id = ? AND id = ? AND status = 'pending' AND level = ?`,
			a.Status, a.DecidedBy, db.d.tsPtr(a.DecidedAt), a.Comment, a.ActID,
			a.ApproverRole, db.d.ts(a.DueAt), a.SLA.Microseconds(), a.OnTimeout, a.EscalateTo, a.Level,
			orgID, a.ID, level)
		if err != nil {
			return dbErr("resolve approval", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("resolve approval", err)
		} else if n != 1 {
			return errAlreadyDecided() // cannot happen under the row lock; never resolve twice
		}
		if err := t.insertLedger(w.Ledger); err != nil {
			return err
		}
		if x := w.Act; x != nil {
			if _, err := t.exec(insertAct, actArgs(db.d, x, nil)...); err != nil {
				return conflictOr("insert act", err, "error.act_exists")
			}
			if _, err := t.exec("UPDATE decisions SET act_id = ? WHERE org_id = ? AND id = ?", x.ID, orgID, x.DecisionID); err != nil {
				return dbErr("link act", err)
			}
		}
		ev := w.Event
		if err := t.insertApprovalEvent(orgID, &ev); err != nil {
			return err
		}
		if st.Approval.Level == 0 && a.Kind != margen.ApprovalKindException {
			// Opened by the decision engine and never moved: this event is
			// the first one stored.
			a.History = completeHistory(&a, []margen.ApprovalEvent{ev})
		} else if err := attachHistory(t.ctx, t.tx, db.d, &a); err != nil {
			return err
		}
		// The rows this resolution wrote or changed, for the audit entry.
		t.touch("approvals", orgID, "id", a.ID)
		t.touch("approval_events", orgID, "id", ev.ID)
		if len(w.Ledger) > 0 {
			t.touch("ledger_entries", orgID, "decision_id", a.DecisionID)
		}
		if w.Act != nil {
			t.touch("acts", orgID, "id", w.Act.ID)
			t.touch("decisions", orgID, "id", w.Act.DecisionID)
		}

		// Only now the organisation: its lock is held for the few writes
		// that need it (budget balances, the audit chain, the idempotency
		// key) and the commit.
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if err := t.finishUnderOrgLock(c, orgID, mergeDeltas(w.Accounts), w.Audit.At, w.Audit, w.Idem); err != nil {
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

// resolutionScope checks that a resolution writes only the request it read
// and rows of its organisation and decision (tenancy and the seal are the
// store's to keep).
func resolutionScope(orgID string, read *margen.Approval, w *margen.ResolutionWrite) error {
	dec := read.DecisionID
	ok := w.Approval.ID == read.ID && w.Approval.OrgID == orgID && w.Approval.DecisionID == dec &&
		w.Audit.OrgID == orgID && w.Event.ApprovalID == read.ID &&
		(w.Act == nil || (w.Act.OrgID == orgID && w.Act.DecisionID == dec)) &&
		(w.Idem == nil || w.Idem.OrgID == orgID)
	for i := range w.Ledger {
		ok = ok && w.Ledger[i].OrgID == orgID && w.Ledger[i].DecisionID == dec
	}
	for i := range w.Accounts {
		ok = ok && w.Accounts[i].OrgID == orgID
	}
	if !ok {
		return fmt.Errorf("store: the resolution of %s/%s writes outside it", orgID, read.ID)
	}
	return nil
}

// finishUnderOrgLock writes what needs the organisation's lock: the
// balances, the audit entry and the idempotency record. The lock serialises
// every writer of the organisation up to its commit, so on PostgreSQL the
// four writes go in one statement (one round trip, data-modifying CTEs);
// SQLite, where a statement costs no round trip, runs them one by one.
func (t *wtx) finishUnderOrgLock(c *chain, orgID string, moves []margen.AccountDelta, at time.Time,
	e margen.AuditEntry, idem *margen.Idempotency) error {
	d := t.db.d
	if !d.pg || c.sealedFrom == 0 {
		// (A chain not sealed yet is sealed by appendAudit, here once.)
		if err := t.moveBalances(moves, at); err != nil {
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
	if len(moves) > 0 {
		b.WriteString("acc AS (INSERT INTO budget_accounts (" + strings.Join(holdAccountCols, ", ") + ") VALUES ")
		ts := d.ts(at)
		for i, m := range moves {
			if i > 0 {
				b.WriteString(", ")
			}
			d.placeholders(&b, len(holdAccountCols), len(args))
			args = append(args, m.OrgID, m.BudgetID, m.Subject, m.Period, m.Posted, m.Pending, ts)
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

// readHolds reads what a decision still holds, per account: the non-zero
// sums of its pending ledger entries, in key order.
func (t *wtx) readHolds(orgID, decisionID string) ([]margen.Hold, error) {
	rows, err := t.query(`SELECT budget_id, subject, period, SUM(amount) FROM ledger_entries
		WHERE org_id = ? AND decision_id = ? AND kind = 'pending'
		GROUP BY budget_id, subject, period ORDER BY budget_id, subject, period`, orgID, decisionID)
	if err != nil {
		return nil, dbErr("read hold", err)
	}
	holds, err := collect(rows, func(s scanner) (margen.Hold, error) {
		var h margen.Hold
		err := s.Scan(&h.Key.BudgetID, &h.Key.Subject, &h.Key.Period, &h.Amount)
		return h, err
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(holds, func(h margen.Hold) bool { return h.Amount == 0 }), nil
}

// insertLedger inserts ledger entries, filling in empty ids.
func (t *wtx) insertLedger(entries []margen.LedgerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		if entries[i].ID == "" {
			entries[i].ID = margen.NewID("led")
		}
	}
	d := t.db.d
	err := t.insertMany("ledger_entries", holdLedgerCols, "", len(entries), func(i int, args []any) []any {
		e := &entries[i]
		return append(args, e.OrgID, e.ID, e.Key.BudgetID, e.Key.Subject, e.Key.Period, e.DecisionID,
			e.Kind, e.Amount, d.ts(e.CreatedAt))
	})
	return conflictOr("insert ledger entries", err, "error.ledger_entry_exists")
}

// moveBalances adds posted and pending amounts to existing budget accounts,
// in key order. The caller holds the organisation's lock, as every writer
// of its accounts does.
func (t *wtx) moveBalances(moves []margen.AccountDelta, at time.Time) error {
	ts := t.db.d.ts(at)
	err := t.insertMany("budget_accounts", holdAccountCols, holdUpsert, len(moves), func(i int, args []any) []any {
		m := &moves[i]
		return append(args, m.OrgID, m.BudgetID, m.Subject, m.Period, m.Posted, m.Pending, ts)
	})
	return dbErr("move balances", err)
}

// scanExtra scans a row into an entity's columns followed by extra ones.
type scanExtra struct {
	s     scanner
	extra []any
}

func (x scanExtra) Scan(dest ...any) error { return x.s.Scan(append(dest, x.extra...)...) }
