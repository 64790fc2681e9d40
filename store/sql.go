package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// tsCol scans a time stored by either engine, in UTC.
type tsCol struct{ t *time.Time }

func (c tsCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = v.UTC()
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

func (c tsCol) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("store: bad time %q: %w", s, err)
	}
	*c.t = t.UTC()
	return nil
}

// tsNullCol scans a nullable time.
type tsNullCol struct{ t **time.Time }

func (c tsNullCol) Scan(src any) error {
	if src == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (tsCol{&t}).Scan(src); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// jsonArg is raw JSON as a bind argument: NULL when empty.
func jsonArg(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// jsonValue marshals v for a JSON column.
func jsonValue(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("store: encode json: %w", err)
	}
	return string(b), nil
}

// querier is what reads need: a pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// wtx is a write transaction with the engine's helpers.
type wtx struct {
	db  *DB
	tx  *sql.Tx
	ctx context.Context
	// batch marks the decision batch (DecideBatch), whose inserts
	// (insertBatch) use cheaper forms that abandon the whole transaction on
	// any failure: INSERT OR ROLLBACK on SQLite (no statement journal) and
	// unnest() arrays on PostgreSQL (one statement text whatever the row
	// count).
	batch bool
	// touched names the rows written so far that the organisation's next
	// audit entry must commit to (see seal.go).
	touched []touch
	// hasher links this transaction's audit entries (made on first use).
	hasher *margen.ChainHasher
}

// writeTx runs fn in one write transaction: committed if fn returns nil,
// rolled back otherwise (fn's error is returned unchanged).
//
// ctx bounds the wait for the write connection, for the database's locks
// (SQLite's busy wait, PostgreSQL's row locks) and for every statement of
// fn: once it is done the statement in progress is interrupted (SQLite) or
// cancelled by the server (PostgreSQL, see openPostgres) and the
// transaction rolls back, so a caller with a deadline is never stalled by a
// lock another process holds. The COMMIT on PostgreSQL is not cut short: a
// commit cancelled half-way may still have happened, and the caller, told
// it failed, would write the same thing twice. On SQLite a COMMIT that
// returns an error has not happened, so the deadline applies to it too.
func (db *DB) writeTx(ctx context.Context, fn func(t *wtx) error) error {
	n, err := db.commitTx(ctx, fn)
	if err != nil {
		return err
	}
	// Durable before anyone is answered, but synced after the write
	// connection is free for the next transaction (walSync).
	return db.wal.wait(n)
}

// commitTx runs fn in a write transaction and commits it; on SQLite it
// returns the commit's number for walSync.wait.
func (db *DB) commitTx(ctx context.Context, fn func(t *wtx) error) (uint64, error) {
	if err := db.wal.failed(); err != nil {
		return 0, err
	}
	c, release, err := db.conn(ctx, db.write)
	if err != nil {
		return 0, err
	}
	// On PostgreSQL the transaction's statements are cancelled on the
	// server by their own contexts (the writer's deadline), not by closing
	// the transaction from the client.
	txCtx := ctx
	if db.d.pg {
		txCtx = context.WithoutCancel(ctx)
	}
	tx, err := c.BeginTx(txCtx, nil)
	if err != nil {
		release()
		return 0, dbErr("begin", err)
	}
	t := &wtx{db: db, tx: tx, ctx: ctx}
	// Deferred calls run last-in first-out: the rollback (a no-op after a
	// commit) ends the transaction even if fn panics, the connection goes
	// back to the pool, then the statements this transaction missed are
	// prepared on the free connection.
	defer db.stmts.prepareWanted(ctx)
	defer release()
	defer tx.Rollback()
	if err := fn(t); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, dbErr("commit", err)
	}
	n := db.wal.commit()
	db.ckpt.committed()
	return n, nil
}

// exec runs a statement written with ? placeholders.
func (t *wtx) exec(query string, args ...any) (sql.Result, error) {
	return t.execRaw(t.db.d.rebind(query), args...)
}

// query runs a query written with ? placeholders.
func (t *wtx) query(query string, args ...any) (*sql.Rows, error) {
	return t.queryRaw(t.db.d.rebind(query), args...)
}

// queryRaw runs a query already written for the engine.
func (t *wtx) queryRaw(query string, args ...any) (*sql.Rows, error) {
	if st := t.db.stmts.get(query); st != nil {
		return t.tx.StmtContext(t.ctx, st).QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}

// queryRow runs a one-row query written with ? placeholders.
func (t *wtx) queryRow(query string, args ...any) *sql.Row {
	query = t.db.d.rebind(query)
	if st := t.db.stmts.get(query); st != nil {
		return t.tx.StmtContext(t.ctx, st).QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// insertMany inserts n rows with multi-row INSERT statements, where the row
// count varies: imports, an answered request's ledger entries and account
// moves, the audit entries of writes outside the decision batch (whose
// inserts are insertBatch's, written per engine). Single-row inserts are
// written out (inserts.go).
// row appends the values of row i (len(cols) of them) to args.
//
//	INSERT INTO <table> (<cols>) VALUES (...), (...), ... <tail>
//
// On PostgreSQL every statement is a round trip, so there are as few as the
// parameter limit allows: one per table per batch in practice. On SQLite a
// statement costs no round trip but compiling one costs as much as running
// it, so rows go in power-of-two chunks (a batch of 100 is 64 + 32 + 4)
// whose few texts stay prepared in the statement cache.
func (t *wtx) insertMany(table string, cols []string, tail string, n int, row func(i int, args []any) []any) error {
	if n == 0 {
		return nil
	}
	per := t.db.d.maxParams() / len(cols)
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	args := make([]any, 0, min(n, per)*len(cols))
	for start := 0; start < n; {
		end := min(start+per, n)
		if t.db.stmts != nil {
			end = start + chunkRows(end-start)
		}
		var b strings.Builder
		b.Grow(len(head) + len(tail) + (end-start)*len(cols)*6)
		b.WriteString(head)
		args = args[:0]
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			t.db.d.placeholders(&b, len(cols), len(args))
			args = row(i, args)
		}
		b.WriteString(tail)
		if _, err := t.execRaw(b.String(), args...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// execRaw runs a statement already written for the engine.
func (t *wtx) execRaw(query string, args ...any) (sql.Result, error) {
	if st := t.db.stmts.get(query); st != nil {
		return t.tx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, query, args...)
}

// keySet is the argument list of a decision batch lookup (write_sqlite.go,
// write_postgres.go) for n tuples of width text values, which tuple fills:
// on SQLite one JSON array of tuples for json_each, on PostgreSQL one text
// array per column for unnest. Either way one statement text serves every
// batch size.
func (t *wtx) keySet(n, width int, tuple func(i int, tuple []string)) []any {
	if !t.db.d.pg {
		all := make([][]string, n)
		flat := make([]string, n*width)
		for i := range all {
			all[i] = flat[i*width : (i+1)*width : (i+1)*width]
			tuple(i, all[i])
		}
		b, _ := json.Marshal(all) // strings only: cannot fail
		return []any{string(b)}
	}
	cols := make([][]string, width)
	for j := range cols {
		cols[j] = make([]string, n)
	}
	row := make([]string, width)
	for i := 0; i < n; i++ {
		tuple(i, row)
		for j, v := range row {
			cols[j][i] = v
		}
	}
	args := make([]any, width)
	for j := range cols {
		args[j] = cols[j]
	}
	return args
}
