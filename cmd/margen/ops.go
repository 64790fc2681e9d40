package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/margenhq/margen/store"
)

func cmdBackup(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("backup", "", `Takes a consistent copy of a SQLite database while margen serve keeps
running (SQLite's VACUUM INTO reads one snapshot; writers are not stopped),
then verifies the copy before giving it its name: PRAGMA integrity_check,
the schema version (it must be this margen's), every organisation's ledger
re-derived and its audit chain verified. The copy holds every decision
committed before the backup started. It never overwrites a file.

For PostgreSQL use pg_dump (the command is printed; see docs/operations.md).

Example:
  margen backup --db ./margen.db --to /var/backups/margen/margen-$(date +%F).db`)
	fs.dbFlag(&cfg)
	fs.logFlags(&cfg)
	to := fs.String("to", "", "file to write the backup to; it must not exist (required)")
	fs.require("to")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if store.IsPostgres(cfg.DB) {
		return fmt.Errorf("margen backup copies SQLite databases; for PostgreSQL run:\n  %s", pgDumpCommand(cfg.DB, *to))
	}
	if _, err := os.Stat(cfg.DB); err != nil {
		return fmt.Errorf("back up %s: %w", cfg.DB, err)
	}
	key, err := loadAuditKey(cfg, cfg.logger(a.stderr), false)
	if err != nil {
		return err
	}
	start := time.Now()
	v, err := store.BackupSQLite(ctx, cfg.DB, *to, true, key)
	if err != nil {
		return err
	}
	size := int64(0)
	if fi, err := os.Stat(*to); err == nil {
		size = fi.Size()
	}
	fmt.Fprintf(a.stdout, "backed up %s to %s (%d bytes) in %s\nverified: %s\n", cfg.DB, *to, size,
		time.Since(start).Round(time.Millisecond), v)
	return nil
}

func cmdRestore(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("restore", "", `Replaces a SQLite database with a backup. It refuses while the database is
open (stop margen serve first). The backup is copied next to the database,
the copy is verified (integrity, schema version, ledger, audit chain), and
only then renamed over the database in one atomic step: a failed restore
leaves the database as it was. A missing database is created.

For PostgreSQL use pg_restore (see docs/operations.md).

Example:
  systemctl stop margen
  margen restore --from /var/backups/margen/margen-20261202T031500Z.db --db /var/lib/margen/margen.db
  systemctl start margen`)
	fs.dbFlag(&cfg)
	fs.logFlags(&cfg)
	from := fs.String("from", "", "the backup file to restore (required)")
	fs.require("from")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if store.IsPostgres(cfg.DB) {
		return errors.New("margen restore replaces SQLite databases; for PostgreSQL use pg_restore (see docs/operations.md, \"Back up and restore PostgreSQL\")")
	}
	// The backup's audit trail is verified with the key of the database it
	// replaces; restoring on a new path, name the key with --audit-key-file
	// (or MARGEN_AUDIT_KEY), and it is kept beside the restored database.
	key, err := loadAuditKey(cfg, cfg.logger(a.stderr), false)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	v, err := store.RestoreSQLite(ctx, *from, cfg.DB, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "restored %s from %s\nverified: %s\n", cfg.DB, *from, v)
	beside := cfg.DB + ".audit-key"
	if _, err := os.Stat(beside); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(beside, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return fmt.Errorf("restore: keep the audit key beside the database: %w", err)
		}
		fmt.Fprintf(a.stdout, "audit key (id %s) kept in %s\n", key.ID(), beside)
	}
	return nil
}

// beforeUpgrade protects an existing database that this binary is about to
// migrate: a SQLite database is first copied (verified: integrity and
// schema version) into --backup-dir or next to the database file, and the
// copy's path printed; a PostgreSQL database is not touched unless yes is
// set, and the pg_dump command to back it up is printed. A new, empty
// database and an up-to-date one need nothing. A newer schema is left to
// store.Open, which refuses it naming both versions.
func beforeUpgrade(ctx context.Context, w io.Writer, cfg config, yes bool) error {
	st, err := store.Inspect(ctx, cfg.DB)
	if err != nil {
		return fmt.Errorf("open database %s: %w", maskDSN(cfg.DB), err)
	}
	if !st.Pending() {
		return nil
	}
	if st.Engine == store.EnginePostgres {
		if yes {
			fmt.Fprintf(w, "upgrading %s from schema version %d to %d (--yes given)\n", maskDSN(cfg.DB), st.Version, st.Known)
			return nil
		}
		dump := fmt.Sprintf("margen-before-v%d-%s.dump", st.Known, time.Now().UTC().Format("20060102T150405Z"))
		return fmt.Errorf("database %s is at schema version %d; this margen %s would upgrade it to version %d.\n"+
			"Back it up first:\n  %s\nthen run again with --yes.", maskDSN(cfg.DB), st.Version, versionString(), st.Known, pgDumpCommand(cfg.DB, dump))
	}
	dir := cfg.BackupDir
	if dir == "" {
		dir = filepath.Dir(cfg.DB)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup before upgrade: %w", err)
	}
	dest := filepath.Join(dir, fmt.Sprintf("%s.before-v%d-%s.db", strings.TrimSuffix(filepath.Base(cfg.DB), ".db"),
		st.Known, time.Now().UTC().Format("20060102T150405Z")))
	if _, err := store.BackupSQLite(ctx, cfg.DB, dest, false, nil); err != nil {
		return fmt.Errorf("backup before upgrading %s (nothing was migrated): %w", cfg.DB, err)
	}
	fmt.Fprintf(w, "backed up %s (schema version %d, integrity ok) to %s before upgrading it to version %d\n",
		cfg.DB, st.Version, dest, st.Known)
	return nil
}

// pgDumpCommand is the pg_dump command line that saves the database (and
// only margen's schema when the URL names one with search_path), with the
// password left out: pg_dump reads it from PGPASSWORD or ~/.pgpass.
func pgDumpCommand(dsn, file string) string {
	args := pgDumpArgs(dsn, file)
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return "pg_dump " + strings.Join(args, " ")
}

// pgDumpArgs are the arguments of pgDumpCommand.
func pgDumpArgs(dsn, file string) []string {
	args := []string{"--format=custom", "--file=" + file}
	u, err := url.Parse(dsn)
	if err != nil {
		return append(args, "DATABASE_URL")
	}
	q := u.Query()
	if schema := q.Get("search_path"); schema != "" {
		args = append(args, "--schema="+schema)
	}
	q.Del("search_path") // a pgx parameter that libpq does not know
	q.Del("password")
	u.RawQuery = q.Encode()
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return append(args, u.String())
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
