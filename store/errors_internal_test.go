package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/margenhq/margen"
)

func TestRetryableErrors(t *testing.T) {
	for _, code := range []string{"40001", "40P01", "53300"} {
		err := fmt.Errorf("batch: %w", dbErr("lock budget accounts", &pgconn.PgError{Code: code}))
		if !IsRetryable(err) {
			t.Errorf("%s: IsRetryable = false", code)
		}
		var r interface{ Retryable() bool }
		if !errors.As(err, &r) || !r.Retryable() {
			t.Errorf("%s: no Retryable() in the chain", code)
		}
		if margen.ErrorCode(err) != margen.EBUSY {
			t.Errorf("%s: code = %s, want busy", code, margen.ErrorCode(err))
		}
	}
	err := dbErr("insert", &pgconn.PgError{Code: "23505"})
	if IsRetryable(err) || margen.ErrorCode(err) != margen.EINTERNAL {
		t.Errorf("unique violation: retryable %v, code %s", IsRetryable(err), margen.ErrorCode(err))
	}
	if !isUnique(err) {
		t.Error("isUnique lost through dbErr")
	}
	if err := conflictOr("x", &pgconn.PgError{Code: "23505"}, "error.slug_taken"); !margen.IsCode(err, margen.ECONFLICT) {
		t.Errorf("conflictOr = %v", err)
	}
}

func TestRebind(t *testing.T) {
	d := dialect{pg: true}
	got := d.rebind("SELECT '?' FROM t WHERE a = ? AND b IN (?, ?)")
	if want := "SELECT '?' FROM t WHERE a = $1 AND b IN ($2, $3)"; got != want {
		t.Fatalf("rebind = %q, want %q", got, want)
	}
	if got := (dialect{}).rebind("a = ?"); got != "a = ?" {
		t.Fatalf("sqlite rebind = %q", got)
	}
}

func TestChunkRows(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 64: 64, 100: 64, 128: 128, 1000: 128} {
		if got := chunkRows(n); got != want {
			t.Errorf("chunkRows(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestWriteTxPanicFreesTheWriter(t *testing.T) {
	db, err := Open(t.Context(), t.TempDir()+"/p.db", Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	func() {
		defer func() { recover() }()
		_ = db.writeTx(t.Context(), func(w *wtx) error {
			w.exec("SELECT 1") // a statement to prepare afterwards
			panic("decide blew up")
		})
	}()
	// The single write connection is free again.
	if err := db.writeTx(t.Context(), func(w *wtx) error { _, err := w.exec("SELECT 1"); return err }); err != nil {
		t.Fatal(err)
	}
}
