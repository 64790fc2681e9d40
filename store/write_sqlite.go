package store

import (
	"fmt"
	"strings"

	"github.com/margenhq/margen"
)

// The decision batch's inserts on SQLite. A statement costs no round trip
// here, but compiling one costs as much as running it, so the rows go in
// power-of-two chunks (a batch of 100 is 64 + 32 + 4) whose few texts stay
// prepared on the write connection (stmtcache.go): the head, then the row
// shape once per row, then the statement's tail (rows.go).
//
// Any failure of a batch statement fails the whole batch, so a constraint
// violation may as well roll the transaction back: with INSERT OR ROLLBACK
// the statement cannot "abort alone", and SQLite keeps no statement journal
// (a copy of every page the statement touches). Foreign keys are deferred
// for the same reason (see the schema).
//
// The column lists are those of rows.go, in the same order
// (TestBatchStatements checks it).
const (
	sqliteOpenAccounts    = `INSERT OR ROLLBACK INTO budget_accounts (org_id, budget_id, subject, period, updated_at) VALUES `
	sqliteInsertCustomers = `INSERT OR ROLLBACK INTO customers (org_id, id, ref, name, contact, tags, created_at) VALUES `
	sqliteInsertDecisions = `INSERT OR ROLLBACK INTO decisions (org_id, id, member_id, customer_id, action, amount, currency, reason,
	context, outcome, policy_version, rule, explanation_code, explanation_args, flagged, budgets,
	act_id, approval_id, refusal_id, created_at, after_the_fact, team) VALUES `
	sqliteInsertActs = `INSERT OR ROLLBACK INTO acts (org_id, id, decision_id, member_id, customer_id, action, amount, currency,
	reason, flagged, created_at, after_the_fact, team) VALUES `
	sqliteInsertRefusals = `INSERT OR ROLLBACK INTO refusals (org_id, id, decision_id, member_id, customer_id, action, amount, wanted,
	reason_kind, rule, customer_left, note, created_at) VALUES `
	sqliteInsertApprovals = `INSERT OR ROLLBACK INTO approvals (org_id, id, decision_id, member_id, customer_id, action, amount,
	approver_role, sla_us, due_at, on_timeout, escalate_to, status, created_at,
	kind, description, level, decided_by, decided_at, comment, act_id) VALUES `
	sqliteInsertLedger   = `INSERT OR ROLLBACK INTO ledger_entries (org_id, id, budget_id, subject, period, decision_id, kind, amount, created_at) VALUES `
	sqliteUpsertAccounts = `INSERT OR ROLLBACK INTO budget_accounts (org_id, budget_id, subject, period, scope, period_kind, limit_amount,
	posted, pending, updated_at) VALUES `
	sqliteInsertAudit = `INSERT OR ROLLBACK INTO audit_log (org_id, seq, at, actor, action, subject, data, prev_hash, hash, row_digests) VALUES `

	// One row of n values.
	sqliteRow5  = "(?, ?, ?, ?, ?)"
	sqliteRow7  = "(?, ?, ?, ?, ?, ?, ?)"
	sqliteRow9  = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
	sqliteRow10 = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	sqliteRow13 = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	sqliteRow21 = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	sqliteRow22 = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

// insertBatchSQLite runs s.sqlite with the n rows in power-of-two chunks.
func (t *wtx) insertBatchSQLite(s *batchStmt, n int, row rowFunc) error {
	per := t.db.d.maxParams() / len(s.cols)
	args := make([]any, 0, min(n, per)*len(s.cols))
	for start := 0; start < n; {
		end := min(start+per, n)
		if t.db.stmts != nil {
			end = start + chunkRows(end-start)
		}
		var b strings.Builder
		b.Grow(len(s.sqlite) + len(s.tail) + (end-start)*(len(s.sqliteRow)+2))
		b.WriteString(s.sqlite)
		args = args[:0]
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString(s.sqliteRow)
			args = row(i, args)
		}
		b.WriteString(s.tail)
		if _, err := t.execRaw(b.String(), args...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// maxChunk is the largest power-of-two chunk of rows on SQLite.
const maxChunk = 128

// chunkRows is the largest power of two not above n (and maxChunk).
func chunkRows(n int) int {
	c := maxChunk
	for c > n {
		c >>= 1
	}
	return c
}

// The decision batch's lookups on SQLite: the keys travel as one JSON
// array of tuples (keySet), unpacked by json_each, so each lookup is one
// statement text whatever the batch size, prepared once. SQLite answers
// the IN list with primary-key (or unique-index) searches.
const (
	sqliteLockAccounts = `SELECT org_id, budget_id, subject, period, posted, pending
	FROM budget_accounts
	WHERE (org_id, budget_id, subject, period) IN (SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?))`
	sqliteReadCustomers = customerSelect + `
	WHERE (org_id, id) IN (SELECT value->>0, value->>1 FROM json_each(?))`
	sqliteReadIdem = idemSelect + `
	WHERE (org_id, member_id, key) IN (SELECT value->>0, value->>1, value->>2 FROM json_each(?))`
)

// updateDeltasSQL applies account deltas on SQLite to accounts that exist.
// It is the applyDeltas upsert as an UPDATE ... FROM: an upsert's DO UPDATE
// may abort, which makes SQLite keep a statement journal; UPDATE OR ROLLBACK
// does not.
const (
	updateDeltasHead = `WITH v (org_id, budget_id, subject, period, scope, period_kind, limit_amount, posted, pending, updated_at) AS (VALUES `
	updateDeltasTail = `)
UPDATE OR ROLLBACK budget_accounts SET
	scope        = CASE WHEN v.scope = '' THEN budget_accounts.scope ELSE v.scope END,
	period_kind  = CASE WHEN v.scope = '' THEN budget_accounts.period_kind ELSE v.period_kind END,
	limit_amount = CASE WHEN v.scope = '' THEN budget_accounts.limit_amount ELSE v.limit_amount END,
	posted       = budget_accounts.posted + v.posted,
	pending      = budget_accounts.pending + v.pending,
	updated_at   = v.updated_at
FROM v WHERE budget_accounts.org_id = v.org_id AND budget_accounts.budget_id = v.budget_id
	AND budget_accounts.subject = v.subject AND budget_accounts.period = v.period`
)

// updateDeltas runs updateDeltasSQL in power-of-two chunks (see insertMany)
// and checks that every account was reached.
func (t *wtx) updateDeltas(deltas []margen.AccountDelta, at any) error {
	args := make([]any, 0, min(len(deltas), maxChunk)*10)
	for start := 0; start < len(deltas); {
		end := start + chunkRows(len(deltas)-start)
		var b strings.Builder
		b.WriteString(updateDeltasHead)
		args = args[:0]
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			t.db.d.placeholders(&b, 10, len(args))
			x := &deltas[i]
			args = append(args, x.OrgID, x.BudgetID, x.Subject, x.Period, x.Scope, x.PeriodKind, x.Limit, x.Posted, x.Pending, at)
		}
		b.WriteString(updateDeltasTail)
		res, err := t.execRaw(b.String(), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n != int64(end-start) {
			return fmt.Errorf("store: account deltas reached %d of %d accounts", n, end-start)
		}
		start = end
	}
	return nil
}
