package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// The inbox reads the budget accounts of every pending request in one
// query: on SQLite it must seek each key, not walk every account of the
// organisation (a year of daily per-member accounts).
func TestBudgetAccountsSeekOnSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const k = 3
	args := []any{"org_x"}
	for range 3 * k {
		args = append(args, "x")
	}
	rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+db.budgetAccountsQuery(k), args...)
	if err != nil {
		t.Fatal(err)
	}
	if got := planOf(t, rows); !strings.Contains(got, "budget_accounts USING PRIMARY KEY (org_id=? AND budget_id=? AND subject=? AND period=?)") {
		t.Errorf("plan %q does not seek the primary key", got)
	}
}

// planOf joins the details of an EXPLAIN QUERY PLAN answer.
func planOf(t *testing.T, rows *sql.Rows) string {
	t.Helper()
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// The decision path's filtered reads seek their index on a SQLite database
// the planner has no statistics for (margen never runs ANALYZE on its own):
// a member's or customer's decisions, the flagged acts (migration 00020
// gave acts_flagged the query's condition), a decision's ledger entries,
// the active policy version and webhooks (migration 00021, likewise).
// It also guards the tables' layout: as WITHOUT ROWID tables, decisions
// and ledger_entries are walked by primary key (org_id=?) instead, the
// planner's default estimates rating a covering primary-key range as cheap
// as an index search (see docs/benchmarks.md, "WITHOUT ROWID").
func TestDecisionReadsSeekTheirIndexOnSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct{ query, want string }{
		{decisionSelect + " WHERE org_id = ? AND member_id = ? ORDER BY id DESC LIMIT ?", "USING INDEX decisions_member (org_id=? AND member_id=?)"},
		{decisionSelect + " WHERE org_id = ? AND customer_id = ? ORDER BY id DESC LIMIT ?", "USING INDEX decisions_customer (org_id=? AND customer_id=?)"},
		{actSelect + " WHERE org_id = ? AND flagged ORDER BY id DESC LIMIT ?", "USING INDEX acts_flagged (org_id=?)"},
		// RecentActsByCustomer's branch per customer.
		{recentBranch + " AND d.customer_id = ? ORDER BY d.id DESC LIMIT ?", "SEARCH d USING INDEX decisions_customer (org_id=? AND customer_id=?); SEARCH a USING INDEX sqlite_autoindex_acts_1 (org_id=? AND id=?)"},
		{`SELECT budget_id, subject, period, SUM(amount) FROM ledger_entries
			WHERE org_id = ? AND decision_id = ? AND kind = 'pending'
			GROUP BY budget_id, subject, period ORDER BY budget_id, subject, period`, "USING INDEX ledger_entries_decision (org_id=? AND decision_id=?)"},
		// The desk's newest reactions: the reactions' primary key first,
		// then each one's act, not every act of the organisation.
		// The writer's read of the active policy versions, on every
		// batch, and the policy's own read (migration 00021).
		{activeVersionsSelect + "(?, ?)", "USING INDEX policy_versions_active (org_id=?)"},
		{policySelect + " WHERE org_id = ? AND active", "USING INDEX policy_versions_active (org_id=?)"},
		// The webhook dispatcher's organisations with an active endpoint
		// (an organisation's own endpoints, few, are read in id order by
		// their primary key).
		{orgsWithWebhooksQuery, "SCAN webhooks USING INDEX webhooks_active"},
		{todayReactionsQuery, "SEARCH reactions USING INDEX sqlite_autoindex_reactions_1 (org_id=?); SCAN r; SEARCH a USING INDEX sqlite_autoindex_acts_1 (org_id=? AND id=?)"},
	} {
		args := make([]any, strings.Count(c.query, "?"))
		for i := range args {
			args[i] = "x"
		}
		rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.query, args...)
		if err != nil {
			t.Fatal(err)
		}
		if got := planOf(t, rows); !strings.Contains(got, c.want) {
			t.Errorf("%s\nplan %q, want %q", c.query, got, c.want)
		}
	}
}
