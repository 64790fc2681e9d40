package store_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"modernc.org/sqlite"

	"github.com/margenhq/margen/store"
)

// TestSQLiteCommitsWithFdatasync: opening a SQLite database switches the
// driver's commits from fsync(2) to fdatasync(2), where the platform has it.
func TestSQLiteCommitsWithFdatasync(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fdatasync is checked on Linux; elsewhere the driver may not offer it")
	}
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "m.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !sqlite.FdatasyncEnabled() {
		t.Fatal("SQLite still commits with fsync(2): store.Open must switch it to fdatasync(2)")
	}
}
