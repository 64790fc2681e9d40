package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// readConnOf runs fn on one read connection with its cache.
func readConnOf(t *testing.T, db *DB, fn func(c *sql.Conn, rc *readConn)) {
	t.Helper()
	ctx := context.Background()
	c, err := db.read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rc *readConn
	if err := c.Raw(func(dc any) error {
		var ok bool
		if rc, ok = dc.(*readConn); !ok {
			return fmt.Errorf("read connection is a %T, not a *readConn", dc)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fn(c, rc)
}

func cached(rc *readConn) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.stmts)
}

// A read runs its statement prepared from the second time on, and a query
// whose statement is in use (its rows still open) runs on its own, with
// its own rows: both read what they should.
func TestReadStatementsPrepared(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const q = "SELECT value FROM json_each(?) ORDER BY key"
	readConnOf(t, db, func(c *sql.Conn, rc *readConn) {
		read := func(rows *sql.Rows) []int {
			var out []int
			for rows.Next() {
				var v int
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				out = append(out, v)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return out
		}
		before := cached(rc) // the statements of Open's own reads
		for i := range 3 {
			rows, err := c.QueryContext(ctx, q, fmt.Sprintf("[%d,%d]", i, i+1))
			if err != nil {
				t.Fatal(err)
			}
			if got := read(rows); fmt.Sprint(got) != fmt.Sprint([]int{i, i + 1}) {
				t.Fatalf("round %d read %v", i, got)
			}
			rows.Close()
		}
		if n := cached(rc) - before; n != 1 {
			t.Fatalf("%d statements cached by one query run three times, want 1", n)
		}
		// The first query's rows stay open while the same text runs again.
		outer, err := c.QueryContext(ctx, q, "[1,2,3]")
		if err != nil {
			t.Fatal(err)
		}
		if !outer.Next() {
			t.Fatal("no first row")
		}
		inner, err := c.QueryContext(ctx, q, "[7,8]")
		if err != nil {
			t.Fatal(err)
		}
		if got := read(inner); fmt.Sprint(got) != "[7 8]" {
			t.Fatalf("inner query read %v", got)
		}
		inner.Close()
		var first int
		if err := outer.Scan(&first); err != nil {
			t.Fatal(err)
		}
		if rest := read(outer); first != 1 || fmt.Sprint(rest) != "[2 3]" {
			t.Fatalf("outer query read %d then %v, want 1 then [2 3]", first, rest)
		}
		outer.Close()
		// Given back once closed: the next run uses it again.
		rc.mu.Lock()
		busy := rc.stmts[q].busy
		rc.mu.Unlock()
		if busy {
			t.Fatal("the statement is still marked in use after its rows closed")
		}
	})
}

// The cache is bounded: past readStmtMax texts, statements not in use are
// dropped for new ones, and every query still answers.
func TestReadStatementsBounded(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	readConnOf(t, db, func(c *sql.Conn, rc *readConn) {
		for i := range readStmtMax + 20 {
			var v int
			if err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&v); err != nil || v != i {
				t.Fatalf("SELECT %d = %d, %v", i, v, err)
			}
		}
		if n := cached(rc); n != readStmtMax {
			t.Fatalf("%d statements cached, want the bound %d", n, readStmtMax)
		}
	})
	// A failed prepare is an error, and caches nothing.
	readConnOf(t, db, func(c *sql.Conn, rc *readConn) {
		n := cached(rc)
		if _, err := c.QueryContext(ctx, "SELEC 1"); err == nil {
			t.Fatal("a syntax error was not reported")
		}
		if cached(rc) != n {
			t.Fatal("a statement that failed to prepare was cached")
		}
	})
}
