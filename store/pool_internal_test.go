package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// TestSQLiteReadPoolExhausted: with every connection of the SQLite read
// pool held, a read waits the configured time and fails with a retryable
// EBUSY (the API answers 503 busy with Retry-After) instead of hanging;
// with one connection free again it succeeds. (PostgreSQL's shared pool is
// tested over HTTP in httpapi's TestPoolExhausted.)
func TestSQLiteReadPoolExhausted(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "margen.db"), Options{Migrate: true, ConnWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var held []*sql.Conn
	for range sqliteReadConns {
		c, err := db.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	_, err = db.LastAuditSeq(ctx, "org_x")
	if !margen.IsCode(err, margen.EBUSY) || !IsRetryable(err) {
		t.Fatalf("read with the pool exhausted: %v; want a retryable busy error", err)
	}
	held[0].Close()
	if _, err := db.LastAuditSeq(ctx, "org_x"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("read with a connection free: %v; want not found", err)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}
