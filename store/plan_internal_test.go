package store

import (
	"context"
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
	if got := strings.Join(plan, "; "); !strings.Contains(got, "budget_accounts USING PRIMARY KEY (org_id=? AND budget_id=? AND subject=? AND period=?)") {
		t.Errorf("plan %q does not seek the primary key", got)
	}
}
