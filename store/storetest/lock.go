package storetest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/margenhq/margen/store"
)

// DSN is one engine's way to name a fresh database: a SQLite path in a
// temporary directory, or a PostgreSQL URL with a schema of its own (the
// PostgreSQL one skips the test without MARGEN_TEST_POSTGRES). Tests that
// also need a second connection of their own (another process, as it were)
// open the store with Open and the connection with the same name.
type DSN struct {
	Name string
	New  func(testing.TB) string
}

// DSNs returns SQLite and PostgreSQL database names.
func DSNs() []DSN {
	return []DSN{
		{Name: store.EngineSQLite, New: SQLitePath},
		{Name: store.EnginePostgres, New: PostgresURL},
	}
}

// Open opens and migrates the store named by dsn, closed when the test ends.
func Open(t testing.TB, dsn string) *store.DB {
	t.Helper()
	return open(t, dsn)
}

// HoldWriteLock takes, from a connection of its own, the lock that a
// decision batch of orgID must wait for, as another process stuck in a
// transaction would: SQLite's write lock (BEGIN IMMEDIATE) or the
// organisation's row (SELECT ... FOR UPDATE) on PostgreSQL. The lock is held
// until release is called (or the test ends).
func HoldWriteLock(t testing.TB, dsn, orgID string) (release func()) {
	t.Helper()
	driver := store.SQLiteDriver
	if store.IsPostgres(dsn) {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	lock := []string{"BEGIN IMMEDIATE"}
	var args []any
	if driver == "pgx" {
		lock = []string{"BEGIN", "SELECT id FROM orgs WHERE id = $1 FOR UPDATE"}
		args = []any{orgID}
	}
	for i, q := range lock {
		var err error
		if i == len(lock)-1 {
			_, err = conn.ExecContext(ctx, q, args...)
		} else {
			_, err = conn.ExecContext(ctx, q)
		}
		if err != nil {
			conn.Close()
			db.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	var done bool
	release = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Errorf("release lock: %v", err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}
