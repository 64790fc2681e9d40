package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/demo"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// loadDemo fills a fresh database with the demo organisation (decisions of
// every outcome, approvals, reactions, refusals: a real ledger and trail).
func loadDemo(t *testing.T, dsn string) (*store.DB, demo.Result) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	res, err := demo.Load(ctx, db, demo.Options{Now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return db, res
}

func TestBackupRestoreSQLite(t *testing.T) {
	ctx := context.Background()
	src := storetest.SQLitePath(t)
	db, res := loadDemo(t, src)
	want, err := db.ListDecisions(ctx, res.Org.ID, margen.DecisionFilter{Page: margen.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	bak := filepath.Join(dir, "margen-backup.db")
	v, err := store.BackupSQLite(ctx, src, bak, true, nil) // while db is open
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() || v.Orgs != 1 || v.Entries == 0 || v.Audit == 0 || v.Version != store.SchemaVersion() {
		t.Fatalf("verification of a sound backup: %+v", v)
	}
	if _, err := store.BackupSQLite(ctx, src, bak, true, nil); err == nil {
		t.Fatal("a backup overwrote an existing file")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}

	// Restore on another path; every decision is there.
	dest := filepath.Join(t.TempDir(), "restored.db")
	if _, err := store.RestoreSQLite(ctx, bak, dest, nil); err != nil {
		t.Fatal(err)
	}
	rdb, err := store.Open(ctx, dest, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	got, err := rdb.ListDecisions(ctx, res.Org.ID, margen.DecisionFilter{Page: margen.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("restored %d decisions on the first page, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Outcome != want[i].Outcome || got[i].Amount != want[i].Amount {
			t.Fatalf("decision %d differs: %+v, want %+v", i, got[i], want[i])
		}
	}

	// The restored database is open: restoring over it is refused.
	_, err = store.RestoreSQLite(ctx, bak, dest, nil)
	if !errors.Is(err, store.ErrInUse) {
		t.Fatalf("restore over an open database = %v, want ErrInUse", err)
	}
	// So is restoring over the source, open in db.
	if _, err := store.RestoreSQLite(ctx, bak, src, nil); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("restore over the open source = %v, want ErrInUse", err)
	}
	rdb.Close()
	if _, err := store.RestoreSQLite(ctx, bak, dest, nil); err != nil {
		t.Fatalf("restore over a closed database: %v", err)
	}
}

// TestRestoreVerifiesFirst: a backup whose audit trail was edited is
// refused, and the database it would have replaced is left as it was.
func TestRestoreVerifiesFirst(t *testing.T) {
	ctx := context.Background()
	src := storetest.SQLitePath(t)
	db, res := loadDemo(t, src)
	bak := filepath.Join(t.TempDir(), "b.db")
	if _, err := store.BackupSQLite(ctx, src, bak, true, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Tamper with the backup: change an audit entry's subject.
	tdb, err := store.Open(ctx, bak, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.SQL().ExecContext(ctx, "UPDATE audit_log SET subject = 'forged' WHERE org_id = ? AND seq = 3", res.Org.ID); err != nil {
		t.Fatal(err)
	}
	tdb.Close()
	v, err := store.VerifyBackup(ctx, bak, nil)
	if err != nil || v.OK() || !strings.Contains(strings.Join(v.Problems, ";"), "audit chain broken at entry 3") {
		t.Fatalf("VerifyBackup of a tampered copy = %+v, %v", v, err)
	}

	if _, err := store.RestoreSQLite(ctx, bak, src, nil); err == nil || !strings.Contains(err.Error(), "failed verification") {
		t.Fatalf("restore of a tampered backup = %v, want a verification failure", err)
	}
	// The target is still the original: a clean chain, opened in WAL mode.
	v, err = store.VerifyBackup(ctx, src, nil)
	if err != nil || !v.OK() {
		t.Fatalf("a refused restore changed the target database: %+v, %v", v, err)
	}

	// A file that is not a database at all.
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("not a database ", 500)), 0o600)
	if _, err := store.RestoreSQLite(ctx, junk, filepath.Join(t.TempDir(), "x.db"), nil); err == nil {
		t.Fatal("restored a file that is not a database")
	}
}

// TestSchemaVersions: Inspect tells new, current and newer databases
// apart without changing them, and Open refuses a newer schema naming both
// versions (on both engines).
func TestSchemaVersions(t *testing.T) {
	for name, dsn := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := dsn(t)
			st, err := store.Inspect(ctx, url)
			if err != nil || st.Exists || st.Version != 0 || st.Known != store.SchemaVersion() {
				t.Fatalf("Inspect of a new database = %+v, %v", st, err)
			}
			if name == "sqlite" {
				if _, err := os.Stat(url); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("Inspect created the file: %v", err)
				}
			}
			if err := store.MigrateTo(ctx, url, 1); err != nil {
				t.Fatal(err)
			}
			st, err = store.Inspect(ctx, url)
			if err != nil || !st.Exists || st.Version != 1 || st.Pending() != (store.SchemaVersion() > 1) {
				t.Fatalf("Inspect at version 1 = %+v, %v", st, err)
			}
			if err := store.Migrate(ctx, url); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(ctx, url, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			newer := store.SchemaVersion() + 7
			if _, err := db.SQL().ExecContext(ctx, db.Rebind("INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, true)"), newer); err != nil {
				t.Fatal(err)
			}
			db.Close()
			for _, migrate := range []bool{false, true} {
				_, err := store.Open(ctx, url, store.Options{Migrate: migrate})
				wantMsg := fmt.Sprintf("schema version %d, but this margen knows schema versions up to %d", newer, store.SchemaVersion())
				if !errors.Is(err, store.ErrSchemaNewer) || !strings.Contains(err.Error(), wantMsg) {
					t.Fatalf("Open(migrate=%v) on a newer schema = %v, want %q", migrate, err, wantMsg)
				}
			}
			st, err = store.Inspect(ctx, url)
			if err != nil || !st.Newer() || st.Version != newer {
				t.Fatalf("Inspect of a newer schema = %+v, %v", st, err)
			}
		})
	}
}

// TestSchemaCurrent: the readiness check notices a schema another process
// moved on.
func TestSchemaCurrent(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			if err := db.SchemaCurrent(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL().ExecContext(ctx, db.Rebind("INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, true)"), store.SchemaVersion()+1); err != nil {
				t.Fatal(err)
			}
			if err := db.SchemaCurrent(ctx); !errors.Is(err, store.ErrSchemaNewer) {
				t.Fatalf("SchemaCurrent after a newer migration = %v", err)
			}
		})
	}
}
