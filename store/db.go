package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/margenhq/margen"
)

// SQLiteDriver is the database/sql driver name under which this build
// opens SQLite files (tests use it to open a connection of their own).
const SQLiteDriver = sqliteDriver

// Engine names returned by (*DB).Engine.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// The page cache of a SQLite read connection (KiB, negative as SQLite takes
// it) and how a whole-organisation scan (scanSnapshot) sets the connection
// for its while, then sets it back: sorts in temporary files, a 2 MB cache.
const (
	readCacheKiB = "-16000"
	readPragmas  = "PRAGMA temp_store = MEMORY; PRAGMA cache_size = " + readCacheKiB
	scanPragmas  = "PRAGMA temp_store = FILE; PRAGMA cache_size = -2000"
)

// sqliteReadConns is the size of the SQLite read pool. Readers never block
// the writer in WAL mode, so a few connections serve the UI and the API.
const sqliteReadConns = 4

// pgCancelGrace is how long a PostgreSQL statement whose context ended may
// take to acknowledge the server-side cancel before its connection is cut.
const pgCancelGrace = time.Second

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Defaults of Options.
const (
	// DefaultMaxConns is the PostgreSQL pool size of one process.
	DefaultMaxConns = 32
	// DefaultConnWait bounds how long a call waits for a free connection.
	DefaultConnWait = 5 * time.Second
)

// Options configure Open.
type Options struct {
	// Migrate applies pending migrations on open. When false, Open still
	// creates the schema of a new, empty database (no migration applied
	// yet: a SQLite file that does not exist, a fresh PostgreSQL schema), so
	// every command works on a brand-new database; it refuses an existing
	// database whose schema is not at the version this binary expects,
	// because upgrading one is a decision for `margen migrate` or serve.
	Migrate bool
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// AuditKey keys the audit chain (HMAC-SHA256) and must be the same for
	// every process on one database; margen serve and the CLI load it from
	// --audit-key-file. Empty only in tests: the chain is then "unkeyed",
	// and a chain sealed with a real key refuses it (and vice versa).
	AuditKey margen.AuditKey
	// MaxConns is the size of the PostgreSQL connection pool (default
	// DefaultMaxConns). SQLite has one write connection and a small read
	// pool of its own.
	MaxConns int
	// ConnWait bounds how long a call waits for a free connection when the
	// pool is exhausted (default DefaultConnWait); past it the call fails
	// with an EBUSY error instead of hanging, and the API answers 503 with
	// Retry-After.
	ConnWait time.Duration
}

// DB is the margen store on SQLite or PostgreSQL. It implements margen.Store.
type DB struct {
	engine string
	d      dialect
	// write runs every write transaction. On SQLite it holds exactly one
	// connection, so writers queue in the process instead of spinning on
	// SQLITE_BUSY; BEGIN IMMEDIATE (via _txlock) takes the file's write lock
	// up front, which also serialises writers of other processes.
	write *sql.DB
	// read serves reads. On SQLite it is a separate query_only pool; on
	// PostgreSQL it is the same pool as write.
	read *sql.DB
	log  *slog.Logger
	// key keys the audit chain (see Options.AuditKey).
	key margen.AuditKey
	// ckpt copies the SQLite WAL back into the database file off the
	// commit path (nil on PostgreSQL).
	ckpt *checkpointer
	// wal makes SQLite commits durable off the write connection (nil on
	// PostgreSQL, whose commit returns once its log is flushed).
	wal *walSync
	// stmts caches prepared statements on the SQLite write connection (nil
	// on PostgreSQL, where pgx caches prepared statements per connection).
	stmts *stmtCache
	// connWait bounds the wait for a pooled connection (see conn).
	connWait time.Duration
	// auditCheckKeys overrides sealJoinKeys (SetAuditCheckKeys).
	auditCheckKeys int
	// reads counts the reads taken from the read pool (Reads).
	reads atomic.Int64
}

// Reads is the number of reads run through the read pool since Open: each
// takes one connection and, but for a few that read a row and its events,
// runs one statement. Benchmarks take the difference around a page to count
// its queries. On PostgreSQL the pool is shared with writes, which count too.
func (db *DB) Reads() int64 { return db.reads.Load() }

// readPool is the read pool, counted as one read.
func (db *DB) readPool() *sql.DB {
	db.reads.Add(1)
	return db.read
}

// conn takes a connection from pool for one call, waiting at most
// db.connWait for one to be free: an exhausted pool fails fast with EBUSY
// (retryable) instead of making every request hang until its client gives
// up. The wait is bounded, not the work: the connection is then used with
// the caller's ctx. The caller must call release when done with it (after
// closing its rows or ending its transaction).
func (db *DB) conn(ctx context.Context, pool *sql.DB) (c *sql.Conn, release func(), err error) {
	if pool == db.read {
		db.reads.Add(1)
	}
	wctx, cancel := context.WithTimeout(ctx, db.connWait)
	c, err = pool.Conn(wctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, errBusy(db.connWait)
		}
		return nil, nil, dbErr("get a connection", err)
	}
	return c, func() { c.Close() }, nil
}

// errBusy is the error of a call that found no free connection in time.
func errBusy(waited time.Duration) error {
	return &margen.Error{Code: margen.EBUSY, Key: "error.busy",
		Err: &retryableError{fmt.Errorf("store: no free database connection within %s", waited)}}
}

var _ margen.Store = (*DB)(nil)

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database named by dsn: a postgres:// or
// postgresql:// URL selects PostgreSQL, anything else is a SQLite file path.
// With opt.Migrate it brings the schema up to date; without, it fails unless
// the schema is already at the latest version.
func Open(ctx context.Context, dsn string, opt Options) (*DB, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		db  *DB
		err error
	)
	if opt.MaxConns <= 0 {
		opt.MaxConns = DefaultMaxConns
	}
	if opt.ConnWait <= 0 {
		opt.ConnWait = DefaultConnWait
	}
	if IsPostgres(dsn) {
		db, err = openPostgres(ctx, dsn, opt.MaxConns)
	} else {
		db, err = openSQLite(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	db.log = log
	db.key = opt.AuditKey
	db.connWait = opt.ConnWait
	if err := db.checkSchema(ctx, opt.Migrate); err != nil {
		db.Close()
		return nil, err
	}
	if opt.Migrate {
		// Chains written before audit keys existed are sealed once, under
		// this key (see seal.go).
		n, err := db.sealAll(ctx)
		if err != nil {
			db.Close()
			return nil, err
		}
		if n > 0 {
			log.Info("audit trails sealed under the audit key", "organisations", n, "key_id", db.key.ID())
		}
		// A server with the wrong key would fail every write: refuse to
		// start instead.
		if err := db.checkKey(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Migrate applies pending migrations to the database named by dsn.
func Migrate(ctx context.Context, dsn string) error {
	db, err := Open(ctx, dsn, Options{Migrate: true})
	if err != nil {
		return err
	}
	return db.Close()
}

func openPostgres(ctx context.Context, dsn string, maxConns int) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: parse postgres url: %w", err)
	}
	// A statement whose context ends (a write past its deadline, a caller
	// gone) is cancelled by the server, which also releases the locks it
	// waits for; the connection stays usable. pgx's default would close the
	// socket instead, and the server would keep the abandoned statement
	// queued on the lock until it is granted.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: pgCancelGrace}
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(maxConns)
	pool.SetMaxIdleConns(maxConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	return &DB{engine: EnginePostgres, d: dialect{pg: true}, write: pool, read: pool}, nil
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	path = sqlitePath(path) // our pragmas are not negotiable
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	if path == ":memory:" || strings.HasPrefix(path, ":memory:") {
		// The write connection and the read pool would each get a database
		// of their own.
		return nil, errors.New("store: SQLite needs a file path (:memory: cannot be shared by the write and read connections)")
	}
	if err := syncData(); err != nil {
		return nil, fmt.Errorf("store: sqlite commits with fdatasync: %w", err)
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	// Writer: WAL so readers never wait for it; synchronous(NORMAL) because
	// commits are synced by walSync after the writer lets go of the
	// connection, before anyone is answered (see doc.go); busy_timeout for
	// the rare writer of another process; immediate transactions so a write
	// transaction never has to upgrade a read lock (and deadlock on it).
	writeDSN := base + "?_txlock=immediate" +
		"&_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=cache_size(-32000)" +
		"&_pragma=temp_store(MEMORY)" +
		// Checkpoints run in the background (see checkpointer), not in
		// the commit of whichever writer crosses the threshold.
		"&_pragma=wal_autocheckpoint(0)" +
		// When the log starts over after a burst, its file is cut back
		// to 256 MiB instead of keeping the burst's size on disk. Not
		// less: under a steady load of thousands of decisions a second
		// the log grows past 100 MiB between two starts over (see
		// checkpointer), and a file cut back and grown again each time
		// made every sync journal the file's new size, which raised the
		// p99 at half the maximum rate by about half (docs/benchmarks.md).
		"&_pragma=journal_size_limit(268435456)"
	write, err := sql.Open(sqliteDriver, writeDSN)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	readDSN := base + "?_pragma=busy_timeout(10000)" +
		"&_pragma=query_only(1)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=cache_size(" + readCacheKiB + ")" +
		"&_pragma=temp_store(MEMORY)"
	// The read connections keep their statements prepared (see
	// readConnector); the driver is the writer's, sqliteDriver.
	read := sql.OpenDB(readConnector{drv: write.Driver(), dsn: readDSN})
	read.SetMaxOpenConns(sqliteReadConns)
	read.SetMaxIdleConns(sqliteReadConns)
	read.SetConnMaxIdleTime(0)
	ckpt, err := newCheckpointer(base)
	if err != nil {
		write.Close()
		read.Close()
		return nil, err
	}
	return &DB{engine: EngineSQLite, d: dialect{}, write: write, read: read, ckpt: ckpt, wal: newWALSync(path),
		stmts: newStmtCache(write)}, nil
}

// checkSchema migrates, or verifies that the schema is current. A new,
// empty database (no migration applied) is always migrated.
func (db *DB) checkSchema(ctx context.Context, migrate bool) error {
	p, err := db.provider(ctx)
	if err != nil {
		return err
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if current > target {
		return newerError(current, target)
	}
	if !migrate && current <= 0 {
		db.log.Info("new database: creating its schema", "engine", db.engine)
		migrate = true
	}
	if migrate {
		res, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", db.engine, err)
		}
		if err := db.durable(); err != nil {
			return err
		}
		for _, r := range res {
			db.log.Info("migration applied", "engine", db.engine, "version", r.Source.Version,
				"file", r.Source.Path, "duration", r.Duration)
		}
		return nil
	}
	if current < target {
		return fmt.Errorf("store: database schema is at version %d, this margen needs version %d: run `margen migrate` first", max(current, 0), target)
	}
	return nil
}

func (db *DB) provider(ctx context.Context) (*goose.Provider, error) {
	var (
		dialect goose.Dialect
		dir     string
		opts    = []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	)
	switch db.engine {
	case EnginePostgres:
		dialect, dir = goose.DialectPostgres, "migrations/postgres"
		// Serialise concurrent migrators (two servers starting at once) with
		// an advisory lock named after the schema, so databases that host
		// several schemas (tests, staging) do not wait on each other.
		var schema string
		if err := db.write.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			return nil, fmt.Errorf("store: read current schema: %w", err)
		}
		h := fnv.New64a()
		h.Write([]byte("margen/migrate/" + schema))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		dialect, dir = goose.DialectSQLite3, "migrations/sqlite"
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(dialect, db.write, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

// Engine returns "sqlite" or "postgres".
func (db *DB) Engine() string { return db.engine }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return err
	}
	if db.read != db.write {
		return db.read.PingContext(ctx)
	}
	return nil
}

// Close closes the connection pools.
// Analyze refreshes the query planner's statistics after a bulk load (the
// demo, an import): ANALYZE on PostgreSQL, PRAGMA optimize on SQLite.
func (db *DB) Analyze(ctx context.Context) error {
	q := "PRAGMA optimize"
	if db.d.pg {
		q = "ANALYZE"
	}
	if _, err := db.write.ExecContext(ctx, q); err != nil {
		return dbErr("analyze", err)
	}
	return nil
}

func (db *DB) Close() error {
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.close())
	}
	errs = append(errs, db.stmts.close())
	errs = append(errs, db.write.Close())
	if db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.wal.close())
	return errors.Join(errs...)
}

// SQL returns the write handle, for tests and tools that need raw access
// (e.g. to tamper with a row and check that VerifyAudit notices). The
// application must not use it.
func (db *DB) SQL() *sql.DB { return db.write }

// Rebind rewrites ? placeholders for the engine (tests use it with SQL).
func (db *DB) Rebind(query string) string { return db.d.rebind(query) }

// IsRetryable reports whether err is a transient failure that the caller may
// retry with the same input: a serialization failure or deadlock on
// PostgreSQL, SQLITE_BUSY or SQLITE_LOCKED on SQLite. Packages that must not
// import store (the decision engine) can ask the same question with
// errors.As(err, &r) for r of type interface{ Retryable() bool }.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) && r.Retryable() {
		return true
	}
	return isTransient(err)
}

// retryableError marks a transient driver error.
type retryableError struct{ err error }

func (e *retryableError) Error() string   { return e.err.Error() }
func (e *retryableError) Unwrap() error   { return e.err }
func (e *retryableError) Retryable() bool { return true }

// isTransient recognises the drivers' transient errors.
func isTransient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01", "55P03": // serialization_failure, deadlock_detected, lock_not_available
			return true
		case "53300", "57P03": // too_many_connections (max_connections reached), cannot_connect_now
			return true
		}
		return false
	}
	if code, ok := sqliteCode(err); ok {
		switch code & 0xff {
		case sqliteBusy, sqliteLocked:
			return true
		}
	}
	return false
}

// SQLite result codes (https://sqlite.org/rescode.html), the same whichever
// driver reports them.
const (
	sqliteBusy                 = 5
	sqliteLocked               = 6
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	if code, ok := sqliteCode(err); ok {
		switch code {
		case sqliteConstraintUnique, sqliteConstraintPrimaryKey:
			return true
		}
	}
	return false
}

// dbErr wraps a driver error: transient ones become EBUSY errors that
// IsRetryable (and a Retryable() bool check) recognise; others keep their
// cause for the logs.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var me *margen.Error
	if errors.As(err, &me) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isTransient(err) {
		return &margen.Error{Code: margen.EBUSY, Key: "error.busy",
			Err: &retryableError{fmt.Errorf("store: %s: %w", op, err)}}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// conflictOr maps a unique violation to ECONFLICT with key, other errors
// through dbErr.
func conflictOr(op string, err error, key string, kv ...any) error {
	if isUnique(err) {
		e := margen.Errorf(margen.ECONFLICT, key, kv...)
		e.Err = err
		return e
	}
	return dbErr(op, err)
}
