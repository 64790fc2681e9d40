package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// A whole-organisation scan runs on a read connection with a small page
// cache and sorts on disk, and hands the connection back to the pool with
// the pool's settings.
func TestScanSnapshotSetsAndRestoresTheConnection(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.read.SetMaxOpenConns(1) // the scan's connection is the one read next
	pragmas := func(q queryFunc) (cache, temp int) {
		t.Helper()
		for _, p := range []struct {
			name string
			v    *int
		}{{"cache_size", &cache}, {"temp_store", &temp}} {
			rows, err := q("PRAGMA " + p.name)
			if err != nil {
				t.Fatal(err)
			}
			if !rows.Next() {
				t.Fatalf("PRAGMA %s: no row", p.name)
			}
			if err := rows.Scan(p.v); err != nil {
				t.Fatal(err)
			}
			rows.Close()
		}
		return cache, temp
	}
	err = db.scanSnapshot(ctx, "test", func(q queryFunc) error {
		if cache, temp := pragmas(q); cache != -2000 || temp != 1 {
			t.Errorf("during the scan: cache_size %d, temp_store %d; want -2000 and 1 (file)", cache, temp)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cache, temp := pragmas(func(query string, args ...any) (*sql.Rows, error) {
		return db.read.QueryContext(ctx, query, args...)
	})
	if cache != -16000 || temp != 2 {
		t.Errorf("after the scan: cache_size %d, temp_store %d; want the pool's -16000 and 2 (memory)", cache, temp)
	}
}
