package store

import (
	"github.com/margenhq/margen"
)

// The rows the store writes, shared by both engines: each table's column
// list and the helper that appends a row's values in that order. The
// values are what the engine stores (times through dialect.ts, JSON as
// text), so the seal (seal.go) digests exactly what is inserted.

// rowFunc appends the values of row i to args.
type rowFunc func(i int, args []any) []any

// batchStmt is one insert of the decision batch: the table, its columns in
// the order of its row helper, and the statement of each engine, written
// out as constants (write_sqlite.go, write_postgres.go). TestBatchStatements
// checks that both statements name exactly cols, in order, with one value
// each.
type batchStmt struct {
	table string
	cols  []string
	// tail follows the rows: an ON CONFLICT clause, or nothing (the
	// PostgreSQL statement has it written in).
	tail string
	// sqlite is "INSERT OR ROLLBACK INTO table (cols) VALUES ", followed by
	// sqliteRow once per row, comma-separated, then tail.
	sqlite, sqliteRow string
	// pg is the whole statement: INSERT ... SELECT * FROM unnest(...), one
	// typed array per column.
	pg string
}

// The decision batch's inserts (see DecideBatch).
var (
	openAccountsInsert = batchStmt{table: "budget_accounts", cols: openAccountCols, tail: onConflictNothing,
		sqlite: sqliteOpenAccounts, sqliteRow: sqliteRow5, pg: pgOpenAccounts}
	customersInsert = batchStmt{table: "customers", cols: customerCols, tail: onConflictNothing,
		sqlite: sqliteInsertCustomers, sqliteRow: sqliteRow7, pg: pgInsertCustomers}
	decisionsInsert = batchStmt{table: "decisions", cols: decisionCols,
		sqlite: sqliteInsertDecisions, sqliteRow: sqliteRow22, pg: pgInsertDecisions}
	actsInsert = batchStmt{table: "acts", cols: actCols,
		sqlite: sqliteInsertActs, sqliteRow: sqliteRow13, pg: pgInsertActs}
	refusalsInsert = batchStmt{table: "refusals", cols: refusalCols,
		sqlite: sqliteInsertRefusals, sqliteRow: sqliteRow13, pg: pgInsertRefusals}
	approvalsInsert = batchStmt{table: "approvals", cols: approvalReadCols,
		sqlite: sqliteInsertApprovals, sqliteRow: sqliteRow21, pg: pgInsertApprovals}
	ledgerInsert = batchStmt{table: "ledger_entries", cols: ledgerCols,
		sqlite: sqliteInsertLedger, sqliteRow: sqliteRow9, pg: pgInsertLedger}
	deltasUpsert = batchStmt{table: "budget_accounts", cols: accountCols, tail: applyDeltas,
		sqlite: sqliteUpsertAccounts, sqliteRow: sqliteRow10, pg: pgUpsertAccounts}
	auditInsert = batchStmt{table: "audit_log", cols: auditCols,
		sqlite: sqliteInsertAudit, sqliteRow: sqliteRow10, pg: pgInsertAudit}
)

// batchStmts lists them all (for the test).
var batchStmts = []*batchStmt{&openAccountsInsert, &customersInsert, &decisionsInsert, &actsInsert,
	&refusalsInsert, &approvalsInsert, &ledgerInsert, &deltasUpsert, &auditInsert}

// insertBatch inserts n rows into s.table with the engine's statement. In
// the decision batch it uses the batch forms, which abandon the whole
// transaction on any failure; outside it (the audit entries of other
// writes) it is insertMany.
func (t *wtx) insertBatch(s *batchStmt, n int, row rowFunc) error {
	switch {
	case n == 0:
		return nil
	case !t.batch:
		return t.insertMany(s.table, s.cols, s.tail, n, row)
	case t.db.d.pg:
		return t.insertBatchPostgres(s, n, row)
	default:
		return t.insertBatchSQLite(s, n, row)
	}
}

const onConflictNothing = " ON CONFLICT DO NOTHING"

// --- budget accounts ---

var openAccountCols = []string{"org_id", "budget_id", "subject", "period", "updated_at"}

func openAccountArgs(k *margen.OrgBudgetKey, at any, a []any) []any {
	return append(a, k.OrgID, k.BudgetID, k.Subject, k.Period, at)
}

var accountCols = []string{"org_id", "budget_id", "subject", "period", "scope", "period_kind", "limit_amount",
	"posted", "pending", "updated_at"}

func deltaArgs(x *margen.AccountDelta, at any, a []any) []any {
	return append(a, x.OrgID, x.BudgetID, x.Subject, x.Period, x.Scope, x.PeriodKind, x.Limit, x.Posted, x.Pending, at)
}

// applyDeltas adds to the balances; a delta that names a scope also sets the
// account's scope, period kind and limit (one without a scope only moves
// amounts, e.g. voiding a hold).
const applyDeltas = ` ON CONFLICT (org_id, budget_id, subject, period) DO UPDATE SET
	scope        = CASE WHEN excluded.scope = '' THEN budget_accounts.scope ELSE excluded.scope END,
	period_kind  = CASE WHEN excluded.scope = '' THEN budget_accounts.period_kind ELSE excluded.period_kind END,
	limit_amount = CASE WHEN excluded.scope = '' THEN budget_accounts.limit_amount ELSE excluded.limit_amount END,
	posted       = budget_accounts.posted + excluded.posted,
	pending      = budget_accounts.pending + excluded.pending,
	updated_at   = excluded.updated_at`

// --- customers ---

var customerCols = []string{"org_id", "id", "ref", "name", "contact", "tags", "created_at"}

func customerArgs(d dialect, c *margen.Customer, a []any) []any {
	return append(a, c.OrgID, c.ID, c.Ref, c.Name, c.Contact, customerTags(c.Tags), d.ts(c.CreatedAt))
}

// --- decisions ---

// decisionCols ends with team: the member's team when the decision was
// made (migration 00012), kept as it was when the member moves.
var decisionCols = []string{"org_id", "id", "member_id", "customer_id", "action", "amount", "currency", "reason",
	"context", "outcome", "policy_version", "rule", "explanation_code", "explanation_args", "flagged", "budgets",
	"act_id", "approval_id", "refusal_id", "created_at", "after_the_fact", "team"}

// decisionArgs appends a decision's values in decisionCols order.
func decisionArgs(d dialect, x *margen.Decision, a []any) ([]any, error) {
	var args any
	if len(x.Explanation.Args) > 0 {
		s, err := jsonValue(x.Explanation.Args)
		if err != nil {
			return nil, err
		}
		args = s
	}
	budgets := "[]"
	if len(x.Budgets) > 0 {
		s, err := jsonValue(x.Budgets)
		if err != nil {
			return nil, err
		}
		budgets = s
	}
	return append(a, x.OrgID, x.ID, x.MemberID, x.CustomerID, x.Action, x.Amount, x.Currency, x.Reason,
		jsonArg(x.Context), x.Outcome, x.PolicyVersion, x.Rule, x.Explanation.Code, args, x.Flagged, budgets,
		x.ActID, x.ApprovalID, x.RefusalID, d.ts(x.CreatedAt), x.AfterTheFact, x.Team), nil
}

// --- acts ---

// actCols ends with team, as decisionCols does.
var actCols = []string{"org_id", "id", "decision_id", "member_id", "customer_id", "action", "amount", "currency",
	"reason", "flagged", "created_at", "after_the_fact", "team"}

func actArgs(d dialect, x *margen.Act, a []any) []any {
	return append(a, x.OrgID, x.ID, x.DecisionID, x.MemberID, x.CustomerID, x.Action, x.Amount, x.Currency,
		x.Reason, x.Flagged, d.ts(x.CreatedAt), x.AfterTheFact, x.Team)
}

// --- reactions ---

// reactionCols ends with score (migration 00012): nullable, 0..10.
var reactionCols = []string{"org_id", "id", "act_id", "source", "sentiment", "note", "member_id", "created_at", "score"}

func reactionArgs(d dialect, r *margen.Reaction, a []any) []any {
	var score any
	if r.Score != nil {
		score = int64(*r.Score)
	}
	return append(a, r.OrgID, r.ID, r.ActID, r.Source, r.Sentiment, r.Note, r.MemberID, d.ts(r.CreatedAt), score)
}

// --- refusals ---

var refusalCols = []string{"org_id", "id", "decision_id", "member_id", "customer_id", "action", "amount", "wanted",
	"reason_kind", "rule", "customer_left", "note", "created_at"}

func refusalArgs(d dialect, r *margen.Refusal, a []any) []any {
	return append(a, r.OrgID, r.ID, r.DecisionID, r.MemberID, r.CustomerID, r.Action, r.Amount, r.Wanted,
		r.ReasonKind, r.Rule, r.Left, r.Note, d.ts(r.CreatedAt))
}

// --- approvals ---

var approvalCols = []string{"org_id", "id", "decision_id", "member_id", "customer_id", "action", "amount",
	"approver_role", "sla_us", "due_at", "on_timeout", "escalate_to", "status", "created_at"}

// approvalReadCols are what an approval reads back: approvalCols and the
// resolution columns (approvalAllArgs appends them all).
var approvalReadCols = append(append([]string(nil), approvalCols...),
	"kind", "description", "level", "decided_by", "decided_at", "comment", "act_id")

func approvalArgs(d dialect, x *margen.Approval, a []any) []any {
	return append(a, x.OrgID, x.ID, x.DecisionID, x.MemberID, x.CustomerID, x.Action, x.Amount,
		x.ApproverRole, x.SLA.Microseconds(), d.ts(x.DueAt), x.OnTimeout, x.EscalateTo, x.Status, d.ts(x.CreatedAt))
}

// --- ledger entries ---

var ledgerCols = []string{"org_id", "id", "budget_id", "subject", "period", "decision_id", "kind", "amount", "created_at"}

func ledgerArgs(d dialect, e *margen.LedgerEntry, a []any) []any {
	return append(a, e.OrgID, e.ID, e.Key.BudgetID, e.Key.Subject, e.Key.Period, e.DecisionID, e.Kind, e.Amount,
		d.ts(e.CreatedAt))
}

// --- audit ---

var auditCols = []string{"org_id", "seq", "at", "actor", "action", "subject", "data", "prev_hash", "hash", "row_digests"}

func auditArgs(d dialect, e *margen.AuditEntry, a []any) []any {
	return append(a, e.OrgID, e.Seq, d.ts(e.At), e.Actor, e.Action, e.Subject, string(e.Data), e.PrevHash, e.Hash, e.Rows)
}
