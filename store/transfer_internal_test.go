package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// On SQLite an ORDER BY that no index serves is a sort of every selected
// row in memory (temp_store is MEMORY): an export would then hold the
// whole period. Every export query must walk an index in order.
func TestExportQueriesNeedNoSortOnSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for kind := range exportQueries {
		for _, f := range []margen.ExportFilter{{OrgID: "org_x"}, {OrgID: "org_x", Since: since, Until: since.AddDate(0, 1, 0)}} {
			q, args := db.exportQuery(kind, f)
			rows, err := db.readPool().QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			joined := strings.Join(plan, "; ")
			t.Logf("%s: %s", kind, joined)
			if strings.Contains(joined, "TEMP B-TREE") || !(strings.Contains(joined, "INDEX") || strings.Contains(joined, "PRIMARY KEY")) {
				t.Errorf("export %s (period %v): plan %q sorts or scans without an index", kind, !f.Since.IsZero(), joined)
			}
		}
	}
}

// An import reads the existing records by key through the unique index,
// whatever the size of the organisation.
func TestImportLookupUsesTheKeyIndexOnSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, kind := range []string{margen.ImportCustomers, margen.ImportMembers, margen.ImportTeams} {
		rows, err := db.readPool().QueryContext(ctx, "EXPLAIN QUERY PLAN "+importSelect(kind, "SELECT value FROM json_each(?)"), "org_x", `["a","b"]`)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		t.Logf("%s: %s", kind, joined)
		if !strings.Contains(joined, "=?)") || strings.Contains(joined, "SCAN "+kind) {
			t.Errorf("import %s: plan %q does not look keys up by index", kind, joined)
		}
	}
}
