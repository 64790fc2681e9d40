// Package store is the margen database: one implementation of margen.Store
// that runs on two engines, SQLite (the embedded default: one file, nothing
// to install) and PostgreSQL (many sites, several app instances behind a
// load balancer).
//
// # One contract, two engines
//
// The SQL that runs is the SQL a reader sees: no statement is generated
// from the catalogue at run time. Most of it is written once, in the
// methods that run it, and the engines differ there only where they must,
// which is the whole dialect seam (dialect.go): placeholders (? becomes $n
// on PostgreSQL), row locks (FOR UPDATE only on PostgreSQL), and how a time
// travels (timestamptz on PostgreSQL, INTEGER unix microseconds on SQLite;
// both exact to the microsecond, returned in UTC). Upserts use ON CONFLICT
// on both.
//
// The decision batch's inserts, the hot write path, are written out per
// engine, one constant statement per table: write_sqlite.go (INSERT OR
// ROLLBACK with VALUES lists of power-of-two length, the row shape a
// constant) and write_postgres.go (INSERT ... SELECT * FROM unnest of one
// typed array per column, the casts in the text). rows.go holds what both
// share: each table's column list and the helper that turns a row into its
// values, in that order; a test checks that every statement names those
// columns in that order. The schemas live side by side in
// migrations/sqlite and migrations/postgres, embedded and applied by goose,
// each migration in a transaction. Open refuses a database whose schema is
// not at this binary's version unless asked to migrate (margen migrate).
// The conformance suite in store/storetest runs against both engines.
//
// # SQLite, configured for production
//
// WAL, so readers never wait for the writer and the writer never waits for
// readers. All writes go through one dedicated connection (a pool of one)
// with BEGIN IMMEDIATE (_txlock=immediate): writers of this process queue
// in Go instead of spinning on SQLITE_BUSY, and a write transaction never
// has to upgrade a read lock (which can deadlock). busy_timeout(10000)
// covers writers of other processes. Reads use a separate pool of
// query_only connections. foreign_keys is on.
//
// Every write is synced to the write-ahead log before anyone is answered,
// so a decision that was answered survives a power cut, not only a crash of
// the process: an answered "yes" whose budget charge is then lost is
// exactly the double spend the ledger exists to prevent. The sync is not
// SQLite's, though (walsync.go): the write connection runs with
// synchronous(NORMAL), so its COMMIT only appends to the log, and each write
// then waits, after it has let go of the connection, for a fdatasync(2) of
// the log that began after its commit. While the disk syncs one commit the
// writer already runs the next transaction, and one sync answers every
// commit that waited for it; with synchronous(FULL) each commit held the
// only write connection for its own sync (docs/benchmarks.md, "The writer
// no longer waits for the disk"). A power cut can lose only commits not
// yet answered, and always the newest ones (the log is written in order).
// The sync is fdatasync, not fsync, which also journals the file's
// timestamps (sqlite_driver.go, for the checkpointer's syncs). Group commit
// amortises the rest: DecideBatch writes a whole batch of decisions in one
// transaction. WAL checkpoints run on a separate connection in the
// background (checkpoint.go), so no caller's commit pays for copying the
// log back into the database file. The hot statements stay prepared on the
// write connection (stmtcache.go).
//
// # PostgreSQL
//
// One pool (pgx through database/sql). Writers lock the organisation row
// (FOR NO KEY UPDATE) and then the budget accounts (FOR UPDATE, in key
// order), always in the same global order, so any number of processes on one
// database neither lose updates nor deadlock. Serialization failures and
// deadlocks are still possible in principle; they are returned as retryable
// (IsRetryable) and retrying is the caller's job.
//
// # Invariants the store keeps
//
//   - Tenancy: every tenant query is scoped by org_id; an id of another
//     organisation is answered exactly like a missing one (margen.NotFound).
//   - Audit: every write appends its audit entries in the same transaction,
//     chained per organisation under the audit key (margen.AuditKey.Hash;
//     margen.ChainHash before the seal); the head (seq and hash) lives on
//     the organisation row, so CheckAudit also notices a cut tail. Each
//     entry commits to the digests of the rows its transaction wrote
//     (seal.go), and CheckAudit compares every stored row with them. Audit
//     data never carries secrets (password or token hashes) nor customers'
//     contact details; the row digests are SHA-256 over whole rows and
//     reveal none of them. A write that inserts or changes a row of a
//     sealed table (sealTables) must name it (wtx.touch) before its audit
//     entry is appended, or CheckAudit reports the row.
//   - Idempotency: a write given an idempotency record stores it in the same
//     transaction, its response opaque (the HTTP layer's); a key already
//     stored, and not expired by the new record's creation, fails the whole
//     write with ECONFLICT "error.idempotency_exists" and changes nothing.
//   - Jobs: a write may enqueue jobs in its own transaction (the outbox);
//     claims lease them (FOR UPDATE SKIP LOCKED on PostgreSQL) and only the
//     claim holding a job may finish it.
//   - Unique violations become ECONFLICT errors with a catalogue key
//     ("error.slug_taken", "error.login_taken", ...).
//
// # What the store must never do
//
// It makes no business decisions. It does not evaluate policy, decide
// outcomes, compute limits or budget periods, or choose what an answer
// says: DecideBatch reads and locks the state the decision engine needs,
// hands it to the engine's decide function, and writes back exactly what the
// engine returned; ResolveApproval and RequestException do the same with
// the pure rules of package approval (approval.Resolve, approval.Exception). It does not read the clock for business purposes (it only
// stamps rows the caller left without a time), does not retry (the caller
// knows whether a retry is safe), and never shows internal errors to users
// (it returns them wrapped, for the logs).
package store
