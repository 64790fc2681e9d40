package store

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestBatchStatements: each engine's statement of every batch insert names
// the columns its row helper appends, in the same order, with one value
// (a placeholder on SQLite, a typed array on PostgreSQL) per column.
func TestBatchStatements(t *testing.T) {
	into := regexp.MustCompile(`^INSERT (?:OR ROLLBACK )?INTO (\w+) \(([^)]*)\)`)
	array := regexp.MustCompile(`\$(\d+)::\w+\[\]`)
	columns := func(q string) (string, []string) {
		m := into.FindStringSubmatch(q)
		if m == nil {
			return "", nil
		}
		var cols []string
		for _, c := range strings.Split(m[2], ",") {
			cols = append(cols, strings.TrimSpace(c))
		}
		return m[1], cols
	}
	for _, s := range batchStmts {
		for engine, q := range map[string]string{"sqlite": s.sqlite, "postgres": s.pg} {
			table, cols := columns(q)
			if table != s.table || fmt.Sprint(cols) != fmt.Sprint(s.cols) {
				t.Errorf("%s %s: statement inserts into %s %v, the row helper appends %v", engine, s.table, table, cols, s.cols)
			}
		}
		if !strings.HasSuffix(s.sqlite, ") VALUES ") {
			t.Errorf("sqlite %s: the head must end with VALUES: %q", s.table, s.sqlite)
		}
		if n := strings.Count(s.sqliteRow, "?"); n != len(s.cols) || s.sqliteRow != "("+strings.Repeat("?, ", n-1)+"?)" {
			t.Errorf("sqlite %s: row %q for %d columns", s.table, s.sqliteRow, len(s.cols))
		}
		arrays := array.FindAllStringSubmatch(s.pg, -1)
		if len(arrays) != len(s.cols) {
			t.Errorf("postgres %s: %d arrays for %d columns", s.table, len(arrays), len(s.cols))
		}
		for i, m := range arrays {
			if m[1] != fmt.Sprint(i+1) {
				t.Errorf("postgres %s: array %d is $%s", s.table, i+1, m[1])
			}
		}
		if !strings.Contains(s.pg, "SELECT * FROM unnest(") || !strings.HasSuffix(s.pg, s.tail) {
			t.Errorf("postgres %s: not an unnest insert ending with %q: %s", s.table, s.tail, s.pg)
		}
	}
}

// TestSingleInserts checks that each written-out single-row insert names
// the columns its values follow, in order, with one placeholder each.
func TestSingleInserts(t *testing.T) {
	re := regexp.MustCompile(`^INSERT INTO (\w+) \(([^)]*)\)\s+VALUES \(([^)]*)\)$`)
	for _, s := range singleInserts {
		m := re.FindStringSubmatch(s.query)
		if m == nil {
			t.Errorf("not a single-row insert: %s", s.query)
			continue
		}
		var cols []string
		for _, c := range strings.Split(m[2], ",") {
			cols = append(cols, strings.TrimSpace(c))
		}
		if fmt.Sprint(cols) != fmt.Sprint(s.cols) {
			t.Errorf("%s: statement names %v, the values follow %v", m[1], cols, s.cols)
		}
		if m[3] != strings.TrimSuffix(strings.Repeat("?, ", len(s.cols)), ", ") {
			t.Errorf("%s: placeholders (%s) for %d columns", m[1], m[3], len(s.cols))
		}
	}
}
