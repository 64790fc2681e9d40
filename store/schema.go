package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// SchemaVersion is the schema version this binary knows: the number of its
// newest embedded migration (the same on both engines).
func SchemaVersion() int64 {
	v, err := latestMigration("migrations/sqlite")
	if err != nil {
		panic(err) // the embedded files are part of the binary
	}
	return v
}

func latestMigration(dir string) (int64, error) {
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return 0, err
	}
	var top int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("store: migration %s: %w", e.Name(), err)
		}
		top = max(top, v)
	}
	return top, nil
}

// SchemaState is what Inspect finds in a database before opening it.
type SchemaState struct {
	Engine string
	// Exists is false for a SQLite file that is missing or empty and for
	// a PostgreSQL schema without margen's tables: a new database.
	Exists bool
	// Version is the newest applied migration (0 for a new database).
	Version int64
	// Known is the version this binary knows (SchemaVersion).
	Known int64
}

// Pending reports whether an existing database needs migrations.
func (s SchemaState) Pending() bool { return s.Exists && s.Version < s.Known }

// Newer reports whether the database was migrated by a newer margen.
func (s SchemaState) Newer() bool { return s.Version > s.Known }

// ErrSchemaNewer is returned (wrapped, naming both versions) when a
// database's schema is newer than this binary knows.
var ErrSchemaNewer = errors.New("database schema newer than this margen")

// newerError names both versions and what to do.
func newerError(current, known int64) error {
	return fmt.Errorf("%w: the database is at schema version %d, but this margen knows schema versions up to %d; "+
		"run the newer margen that upgraded it, or restore a backup taken before that upgrade", ErrSchemaNewer, current, known)
}

// Inspect reads the schema version of the database named by dsn without
// changing it (it creates nothing: a missing SQLite file stays missing).
func Inspect(ctx context.Context, dsn string) (SchemaState, error) {
	st := SchemaState{Known: SchemaVersion()}
	var (
		db  *sql.DB
		err error
	)
	if IsPostgres(dsn) {
		st.Engine = EnginePostgres
		cfg, perr := pgx.ParseConfig(dsn)
		if perr != nil {
			return st, fmt.Errorf("store: parse postgres url: %w", perr)
		}
		db = stdlib.OpenDB(*cfg)
	} else {
		st.Engine = EngineSQLite
		path := sqlitePath(dsn)
		fi, serr := os.Stat(path)
		if errors.Is(serr, fs.ErrNotExist) || (serr == nil && fi.Size() == 0) {
			return st, nil
		}
		if serr != nil {
			return st, fmt.Errorf("store: %w", serr)
		}
		db, err = openSQLiteReadOnly(path)
		if err != nil {
			return st, err
		}
	}
	defer db.Close()
	var table sql.NullString
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version'"
	if st.Engine == EnginePostgres {
		q = "SELECT to_regclass('goose_db_version')::text"
	}
	if err := db.QueryRowContext(ctx, q).Scan(&table); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("store: read schema version: %w", err)
	}
	if !table.Valid {
		return st, nil
	}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&st.Version); err != nil {
		return st, fmt.Errorf("store: read schema version: %w", err)
	}
	st.Exists = st.Version > 0
	return st, nil
}

// sqlitePath strips the prefixes and parameters Open accepts from a SQLite
// DSN, leaving the file path.
func sqlitePath(dsn string) string {
	path := strings.TrimPrefix(dsn, "sqlite://")
	path = strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path
}

// MigrateTo applies the migrations up to version and no further. It exists
// for upgrade tests, which build a database with an older release's schema.
func MigrateTo(ctx context.Context, dsn string, version int64) error {
	var (
		db  *DB
		err error
	)
	if IsPostgres(dsn) {
		db, err = openPostgres(ctx, dsn, DefaultMaxConns)
	} else {
		db, err = openSQLite(ctx, dsn)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := db.provider(ctx)
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("store: migrate to %d: %w", version, err)
	}
	return nil
}

// SchemaCurrent returns an error unless the database's schema is at the
// version this binary knows (for readiness checks: another process may
// have upgraded the shared database). One read, no migration lock.
func (db *DB) SchemaCurrent(ctx context.Context) error {
	var v int64
	if err := db.readPool().QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&v); err != nil {
		return dbErr("read schema version", err)
	}
	switch known := SchemaVersion(); {
	case v > known:
		return newerError(v, known)
	case v < known:
		return fmt.Errorf("store: database schema is at version %d, this margen needs version %d", v, known)
	}
	return nil
}
