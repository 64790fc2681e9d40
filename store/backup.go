package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/margenhq/margen"
)

// openSQLiteReadOnly opens a SQLite file for reading only: it neither
// creates the file nor changes it.
func openSQLiteReadOnly(path string) (*sql.DB, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// BackupSQLite writes a consistent copy of the SQLite database at src into
// dest with VACUUM INTO: it reads one snapshot (in WAL mode the writer goes
// on meanwhile), so the copy holds exactly the transactions committed when
// it began. The copy is written next to dest under a temporary name,
// verified, synced to disk and only then renamed to dest, so dest is either
// absent or a complete, verified copy. It refuses to overwrite an existing
// dest.
//
// With full, the copy must pass VerifyBackup (integrity, current schema,
// ledger, audit chain). Without, only the integrity check runs and the
// copy's schema version must equal the source's: that is how a database is
// saved before it is upgraded, when this binary's ledger check does not
// apply to its older schema yet.
func BackupSQLite(ctx context.Context, src, dest string, full bool, key margen.AuditKey) (Verification, error) {
	v := Verification{Engine: EngineSQLite}
	src = sqlitePath(src)
	if _, err := os.Stat(src); err != nil {
		return v, fmt.Errorf("store: back up %s: %w", src, err)
	}
	if _, err := os.Lstat(dest); err == nil {
		return v, fmt.Errorf("store: back up to %s: the file exists", dest)
	}
	tmp, err := tempPath(dest)
	if err != nil {
		return v, err
	}
	defer removeSQLiteFiles(tmp) // nothing left once renamed
	// A connection of its own: the store's read pool is query_only, and
	// VACUUM INTO must not wait behind the decisions on the write
	// connection.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: src}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return v, fmt.Errorf("store: back up %s: %w", src, err)
	}
	db.SetMaxOpenConns(1)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return v, fmt.Errorf("store: back up %s: %w", src, err)
	}
	if err := db.Close(); err != nil {
		return v, fmt.Errorf("store: back up %s: %w", src, err)
	}
	if full {
		v, err = VerifyBackup(ctx, tmp, key)
	} else {
		v, err = verifyOld(ctx, src, tmp)
	}
	if err != nil {
		return v, err
	}
	if !v.OK() {
		return v, fmt.Errorf("store: the copy of %s failed verification: %s", src, strings.Join(v.Problems, "; "))
	}
	// VACUUM INTO does not sync the file it writes.
	if err := syncFile(tmp); err != nil {
		return v, err
	}
	return v, renameDurably(tmp, dest)
}

// verifyOld checks a copy of a database whose schema may be older than
// this binary's: integrity, and the same schema version as its source.
func verifyOld(ctx context.Context, src, cp string) (Verification, error) {
	v := Verification{Engine: EngineSQLite}
	if err := integrityCheck(ctx, cp); err != nil {
		v.Problems = append(v.Problems, err.Error())
		return v, nil
	}
	from, err := Inspect(ctx, src)
	if err != nil {
		return v, err
	}
	to, err := Inspect(ctx, cp)
	if err != nil {
		return v, err
	}
	v.Version = to.Version
	if from.Version != to.Version {
		v.Problems = append(v.Problems, fmt.Sprintf("the copy is at schema version %d, the database at %d", to.Version, from.Version))
	}
	return v, nil
}

func removeSQLiteFiles(path string) {
	for _, f := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		os.Remove(f)
	}
}

// tempPath returns an unused name in dest's directory for a file that will
// be renamed to dest (a rename within one directory is atomic).
func tempPath(dest string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	name := f.Name()
	f.Close()
	// VACUUM INTO needs a missing or empty file; it is empty.
	return name, nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store: sync %s: %w", path, err)
	}
	return f.Close()
}

// renameDurably renames tmp to dest and syncs the directory, so the new
// name survives a power loss.
func renameDurably(tmp, dest string) error {
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	d, err := os.Open(filepath.Dir(dest))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer d.Close()
	// Windows cannot sync a directory; its rename is durable enough.
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) && runtime.GOOS != "windows" {
		return fmt.Errorf("store: sync directory of %s: %w", dest, err)
	}
	return nil
}

// Verification is what VerifyBackup found in a database copy.
type Verification struct {
	Engine  string
	Version int64 // schema version of the copy
	Orgs    int
	// Accounts and Entries are summed over the organisations' ledgers;
	// Audit counts the verified audit entries.
	Accounts, Entries int
	Audit             int64
	// Problems lists every failed check; empty means the copy is sound.
	Problems []string
}

// OK reports whether every check passed.
func (v Verification) OK() bool { return len(v.Problems) == 0 }

// String is a one-line summary.
func (v Verification) String() string {
	s := fmt.Sprintf("schema version %d, %d organisations, %d budget accounts, %d ledger entries, %d audit entries",
		v.Version, v.Orgs, v.Accounts, v.Entries, v.Audit)
	if v.OK() {
		return s + ": integrity, schema, ledger and audit chain ok"
	}
	return s + ": " + strings.Join(v.Problems, "; ")
}

// VerifyBackup checks a copy of a database: on SQLite that the file passes
// PRAGMA integrity_check; on both engines that its schema is at the version
// this binary knows, and that every organisation's ledger re-derives
// (CheckLedger) and audit chain verifies (VerifyAudit). A copy that cannot
// be read at all is an error; a copy that reads but fails a check is
// reported in Problems. It must be given a copy: on SQLite, opening it for
// the ledger check may write to it (WAL mode).
func VerifyBackup(ctx context.Context, dsn string, key margen.AuditKey) (Verification, error) {
	v := Verification{Engine: EngineSQLite}
	if IsPostgres(dsn) {
		v.Engine = EnginePostgres
	} else {
		path := sqlitePath(dsn)
		if fi, err := os.Stat(path); err != nil {
			return v, fmt.Errorf("store: verify %s: %w", path, err)
		} else if fi.Size() == 0 {
			return v, fmt.Errorf("store: verify %s: the file is empty", path)
		}
		if err := integrityCheck(ctx, path); err != nil {
			v.Problems = append(v.Problems, err.Error())
			return v, nil // reading it further would only add noise
		}
	}
	st, err := Inspect(ctx, dsn)
	if err != nil {
		return v, err
	}
	v.Version = st.Version
	if !st.Exists {
		return v, fmt.Errorf("store: verify %s: not a margen database (no schema)", maskDSNForError(dsn))
	}
	if st.Version != st.Known {
		v.Problems = append(v.Problems, fmt.Sprintf("schema version %d, this margen knows %d", st.Version, st.Known))
		return v, nil
	}
	db, err := Open(ctx, dsn, Options{AuditKey: key})
	if err != nil {
		return v, err
	}
	defer db.Close()
	ids, err := db.orgIDs(ctx)
	if err != nil {
		return v, err
	}
	v.Orgs = len(ids)
	for _, id := range ids {
		rep, err := db.CheckLedger(ctx, id)
		if err != nil {
			return v, err
		}
		v.Accounts += rep.Accounts
		v.Entries += rep.Entries
		if !rep.OK() {
			v.Problems = append(v.Problems, fmt.Sprintf("organisation %s: %d ledger mismatches", id, len(rep.Mismatches)))
		}
		broken, checked, err := db.VerifyAudit(ctx, id)
		if err != nil {
			return v, err
		}
		v.Audit += checked
		if broken != 0 {
			v.Problems = append(v.Problems, fmt.Sprintf("organisation %s: audit chain broken at entry %d", id, broken))
		}
	}
	return v, nil
}

// integrityCheck runs PRAGMA integrity_check on a SQLite file, read-only.
func integrityCheck(ctx context.Context, path string) error {
	db, err := openSQLiteReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		if len(msgs) > 5 {
			msgs = append(msgs[:5], "…")
		}
		return fmt.Errorf("integrity check failed: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// orgIDs lists every organisation (for whole-database checks).
func (db *DB) orgIDs(ctx context.Context) ([]string, error) {
	rows, err := db.readPool().QueryContext(ctx, "SELECT id FROM orgs ORDER BY id")
	if err != nil {
		return nil, dbErr("list organisations", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbErr("list organisations", err)
		}
		ids = append(ids, id)
	}
	return ids, dbErr("list organisations", rows.Err())
}

// maskDSNForError keeps a PostgreSQL password out of error messages.
func maskDSNForError(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "postgres://…"
}

// ErrInUse is returned by CheckNotInUse for a SQLite database that another
// connection has open.
var ErrInUse = errors.New("the database is in use")

// LockForReplace makes sure no other connection (in this or another
// process) has the SQLite database at path open, and keeps it locked until
// release is called, so nothing opens it while it is replaced. A missing
// file is not in use. The probe is leaving WAL mode, which needs every
// other connection gone; release(false) puts the database back in WAL mode,
// release(true) does not (the file was replaced: the connection points to
// the old one, and must not create a -wal file beside the new one).
func LockForReplace(ctx context.Context, path string) (release func(replaced bool), err error) {
	path = sqlitePath(path)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return func(bool) {}, nil
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(0)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, inUse(path, err)
	}
	fail := func(err error) (func(bool), error) {
		conn.Close()
		db.Close()
		return nil, inUse(path, err)
	}
	// Leaving WAL mode fails while any other connection has the file open;
	// in rollback mode, an exclusive lock fails while anyone reads it.
	var was, mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&was); err != nil {
		return fail(err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
		return fail(err)
	}
	if !strings.EqualFold(mode, "delete") {
		return fail(fmt.Errorf("journal mode is still %s", mode))
	}
	for _, q := range []string{"PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fail(err)
		}
	}
	var once sync.Once
	return func(replaced bool) {
		once.Do(func() { unlock(conn, db, was, replaced) })
	}, nil
}

// unlock ends LockForReplace's hold; unless the file was replaced, it puts
// back the journal mode it found.
func unlock(conn *sql.Conn, db *sql.DB, was string, replaced bool) {
	bg := context.Background()
	conn.ExecContext(bg, "ROLLBACK")
	if !replaced && !strings.EqualFold(was, "delete") {
		conn.ExecContext(bg, "PRAGMA locking_mode=NORMAL")
		conn.ExecContext(bg, "PRAGMA journal_mode="+was)
	}
	conn.Close()
	db.Close()
}

func inUse(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED) {
		return fmt.Errorf("%w: %s is open in another connection or process (stop margen serve first)", ErrInUse, path)
	}
	if err != nil && strings.HasPrefix(err.Error(), "journal mode") {
		return fmt.Errorf("%w: %s: %v (stop margen serve first)", ErrInUse, path, err)
	}
	return fmt.Errorf("store: lock %s: %w", path, err)
}

// RestoreSQLite replaces the SQLite database at dest with the backup at
// src: it copies the backup next to dest, verifies the copy (VerifyBackup)
// and only then renames it over dest, so dest is never half-written. It
// refuses when dest is open in any connection (ErrInUse) and when the copy
// fails verification (dest is left untouched). The -wal and -shm files of
// the old database are removed with it.
func RestoreSQLite(ctx context.Context, src, dest string, key margen.AuditKey) (Verification, error) {
	src, dest = sqlitePath(src), sqlitePath(dest)
	if _, err := os.Stat(src); err != nil {
		return Verification{}, fmt.Errorf("store: restore from %s: %w", src, err)
	}
	release, err := LockForReplace(ctx, dest)
	if err != nil {
		return Verification{}, err
	}
	replaced := false
	defer func() { release(replaced) }()
	tmp, err := tempPath(dest)
	if err != nil {
		return Verification{}, err
	}
	defer removeSQLiteFiles(tmp)
	// Copy through SQLite (from a read-only connection), so a backup that
	// was opened since and has a -wal file beside it is copied whole.
	srcDB, err := openSQLiteReadOnly(src)
	if err != nil {
		return Verification{}, err
	}
	_, err = srcDB.ExecContext(ctx, "VACUUM INTO ?", tmp)
	srcDB.Close()
	if err != nil {
		return Verification{}, fmt.Errorf("store: read backup %s: %w", src, err)
	}
	v, err := VerifyBackup(ctx, tmp, key)
	if err != nil {
		return v, err
	}
	if !v.OK() {
		return v, fmt.Errorf("store: backup %s failed verification, %s left untouched: %s", src, dest, strings.Join(v.Problems, "; "))
	}
	if err := syncFile(tmp); err != nil {
		return v, err
	}
	for _, f := range []string{dest + "-wal", dest + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return v, fmt.Errorf("store: %w", err)
		}
	}
	if runtime.GOOS == "windows" {
		// Windows does not rename over a file that is open: let go of
		// the lock first (a server started in this instant would see
		// the old database or the new one, both whole).
		release(true)
	}
	if err := renameDurably(tmp, dest); err != nil {
		return v, err
	}
	replaced = true
	return v, nil
}
