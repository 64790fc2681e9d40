// Package storetest opens test databases on both engines and holds the
// conformance suite that every engine of the margen store must pass.
//
// SQLite databases live in a temporary directory. PostgreSQL runs when
// MARGEN_TEST_POSTGRES names a server (a postgres:// URL); each test gets a
// schema of its own, dropped when the test ends, so tests run in parallel and
// leave nothing behind.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// EnvPostgres names the environment variable with the PostgreSQL test URL.
const EnvPostgres = "MARGEN_TEST_POSTGRES"

// EnvRequirePostgres, set to a true value (1, true), turns every skip for
// lack of MARGEN_TEST_POSTGRES into a failure, so CI can never silently not
// run the PostgreSQL tests (the two-process ones included).
const EnvRequirePostgres = "MARGEN_REQUIRE_POSTGRES"

// TestAuditKey is the audit key of the stores the tests open (a fixed one,
// so a test can re-open a database, or forge a link with it on purpose).
var TestAuditKey = margen.AuditKey("margen test audit key, 32 bytes")

// Engine is one database engine to run tests against.
type Engine struct {
	Name string
	Open func(testing.TB) *store.DB
}

// Engines returns SQLite and PostgreSQL; the PostgreSQL one skips the test
// when MARGEN_TEST_POSTGRES is not set (fails it when MARGEN_REQUIRE_POSTGRES
// is set).
func Engines(t testing.TB) []Engine {
	t.Helper()
	return []Engine{
		{Name: store.EngineSQLite, Open: OpenSQLite},
		{Name: store.EnginePostgres, Open: OpenPostgres},
	}
}

// SQLitePath returns the path of a fresh SQLite file in a temporary
// directory (not created yet).
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "margen.db")
}

// OpenSQLite opens a migrated SQLite store in a temporary directory.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	return open(t, SQLitePath(t))
}

// OpenPostgres opens a migrated PostgreSQL store in a fresh schema, or skips
// the test when MARGEN_TEST_POSTGRES is not set.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	return open(t, PostgresURL(t))
}

// DSN returns the data source name of a fresh database of the engine
// (a SQLite path, a PostgreSQL URL with its own schema), for tests that open
// it more than once, as several processes would (see OpenDSN).
func (e Engine) DSN(t testing.TB) string {
	t.Helper()
	if e.Name == store.EngineSQLite {
		return SQLitePath(t)
	}
	return PostgresURL(t)
}

// OpenDSN opens (and migrates) the database dsn names; it is closed when
// the test ends.
func OpenDSN(t testing.TB, dsn string) *store.DB {
	t.Helper()
	return open(t, dsn)
}

func open(t testing.TB, dsn string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, dsn, store.Options{Migrate: true, AuditKey: TestAuditKey,
		// Tests share one machine and one PostgreSQL server: wait for a free
		// connection as long as it takes (TestPoolExhausted tests the bound).
		ConnWait: time.Minute})
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL creates an empty schema on the MARGEN_TEST_POSTGRES server
// and returns a URL whose connections use it (search_path), for tests that
// open the database themselves, e.g. two servers on one database. The schema
// is dropped when the test ends. Without MARGEN_TEST_POSTGRES the test is
// skipped, or fails when MARGEN_REQUIRE_POSTGRES is set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		if required, _ := strconv.ParseBool(os.Getenv(EnvRequirePostgres)); required {
			t.Fatalf("%s is set but %s is not: this test needs PostgreSQL (set %s=postgres://...)", EnvRequirePostgres, EnvPostgres, EnvPostgres)
		}
		t.Skip("set MARGEN_TEST_POSTGRES=postgres://... to run the PostgreSQL suite")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgres, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	schema := "margen_test_" + hex.EncodeToString(rnd[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvPostgres, err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("connect to drop schema: %v", err)
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
