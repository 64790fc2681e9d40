package store

import "fmt"

// The decision batch's inserts on PostgreSQL. Every statement is a round
// trip, so each table gets one per batch, and its text does not depend on
// the row count: the rows travel as one array per column, typed in the
// statement, and unnest turns them back into rows. pgx prepares each text
// once per connection and the server plans it generically; a VALUES list
// with one parameter per value would be a new statement (a parse, a plan
// and tens of bind parameters per row) for every batch size.
//
// The column lists are those of rows.go, in the same order
// (TestBatchStatements checks it).
const (
	pgOpenAccounts = `INSERT INTO budget_accounts (org_id, budget_id, subject, period, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])` + onConflictNothing

	pgInsertCustomers = `INSERT INTO customers (org_id, id, ref, name, contact, tags, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::json[], $7::timestamptz[])` +
		onConflictNothing

	pgInsertDecisions = `INSERT INTO decisions (org_id, id, member_id, customer_id, action, amount, currency, reason,
	context, outcome, policy_version, rule, explanation_code, explanation_args, flagged, budgets,
	act_id, approval_id, refusal_id, created_at, after_the_fact, team)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[],
	$9::json[], $10::text[], $11::integer[], $12::text[], $13::text[], $14::json[], $15::boolean[], $16::json[],
	$17::text[], $18::text[], $19::text[], $20::timestamptz[], $21::boolean[], $22::text[])`

	pgInsertActs = `INSERT INTO acts (org_id, id, decision_id, member_id, customer_id, action, amount, currency,
	reason, flagged, created_at, after_the_fact, team)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
	$9::text[], $10::boolean[], $11::timestamptz[], $12::boolean[], $13::text[])`

	pgInsertRefusals = `INSERT INTO refusals (org_id, id, decision_id, member_id, customer_id, action, amount, wanted,
	reason_kind, rule, customer_left, note, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
	$9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])`

	pgInsertApprovals = `INSERT INTO approvals (org_id, id, decision_id, member_id, customer_id, action, amount,
	approver_role, sla_us, due_at, on_timeout, escalate_to, status, created_at,
	kind, description, level, decided_by, decided_at, comment, act_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
	$8::text[], $9::bigint[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::timestamptz[],
	$15::text[], $16::text[], $17::integer[], $18::text[], $19::timestamptz[], $20::text[], $21::text[])`

	pgInsertLedger = `INSERT INTO ledger_entries (org_id, id, budget_id, subject, period, decision_id, kind, amount, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
	$9::timestamptz[])`

	pgUpsertAccounts = `INSERT INTO budget_accounts (org_id, budget_id, subject, period, scope, period_kind, limit_amount,
	posted, pending, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
	$8::bigint[], $9::bigint[], $10::timestamptz[])` + applyDeltas

	pgInsertAudit = `INSERT INTO audit_log (org_id, seq, at, actor, action, subject, data, prev_hash, hash, row_digests)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::text[], $9::text[], $10::text[])`
)

// The decision batch's lookups on PostgreSQL: the keys travel as one text
// array per column (keySet) and unnest turns them back into tuples. The
// accounts are locked in key order, as every writer locks them, so
// concurrent batches of several processes wait for each other instead of
// deadlocking.
const (
	pgLockAccounts = `SELECT org_id, budget_id, subject, period, posted, pending
	FROM budget_accounts
	WHERE (org_id, budget_id, subject, period) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]))
	ORDER BY org_id, budget_id, subject, period
	FOR UPDATE`
	pgReadCustomers = customerSelect + `
	WHERE (org_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`
	pgReadIdem = idemSelect + `
	WHERE (org_id, member_id, key) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`
)

// insertBatchPostgres runs s.pg with the n rows as one array per column
// (pgx encodes each array with the type the statement gives it).
func (t *wtx) insertBatchPostgres(s *batchStmt, n int, row rowFunc) error {
	cols := make([][]any, len(s.cols))
	for j := range cols {
		cols[j] = make([]any, 0, n)
	}
	var a []any
	for i := 0; i < n; i++ {
		a = row(i, a[:0])
		if len(a) != len(cols) {
			return fmt.Errorf("store: insert %s: %d values for %d columns", s.table, len(a), len(cols))
		}
		for j, v := range a {
			cols[j] = append(cols[j], v)
		}
	}
	args := make([]any, len(cols))
	for j := range cols {
		args[j] = cols[j]
	}
	_, err := t.execRaw(s.pg, args...)
	return err
}
