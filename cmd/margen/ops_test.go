package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

const opsPolicy = `
currency: EUR
actions:
  - id: courtesy_gift
    label: {es: "Cortesía", en: "Courtesy gift"}
roles:
  - id: owner
    label: {es: "Dueña", en: "Owner"}
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
budgets:
  - id: member_daily
    scope: member
    period: day
    limit: 10000
grants:
  - id: gift
    role: frontline
    actions: [courtesy_gift]
    max_amount: 100
    budgets: [member_daily]
    above: none
`

// setupOpsOrg creates organisation "ops" with a frontline member "ana"
// under opsPolicy, through the CLI, and returns the owner's token.
func setupOpsOrg(t *testing.T, db string) string {
	t.Helper()
	mustRun(t, "migrate", "--db", db)
	mustRun(t, "org", "create", "--db", db, "--slug", "ops", "--name", "Ops", "--currency", "EUR",
		"--timezone", "Europe/Madrid", "--owner", "boss")
	mustRun(t, "member", "add", "--db", db, "--org", "ops", "--login", "ana", "--name", "Ana",
		"--access", "frontline", "--role", "frontline")
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte(opsPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "policy", "publish", "--db", db, "--org", "ops", pol)
	return tokenRE(t, mustRun(t, "token", "create", "--db", db, "--org", "ops", "--member", "boss"))
}

// decideMany records n decisions of amount for ana through the decision
// engine (270 of 300 37-unit decisions fit her daily budget; the rest are
// denied).
func decideMany(t *testing.T, db string, n int, amount int64) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, db, store.Options{AuditKey: cliAuditKey(t, db)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org, err := st.OrgBySlug(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	ana, err := st.MemberByLogin(ctx, org.ID, "ana")
	if err != nil {
		t.Fatal(err)
	}
	eng := decision.New(st, decision.Options{})
	defer eng.Close()
	for i := range n {
		if _, err := eng.Decide(ctx, &decision.Request{Org: org, Member: ana, Action: "courtesy_gift", Amount: amount,
			Customer: decision.CustomerInput{Ref: fmt.Sprintf("c-%d", i%7)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestBackupAndRestoreCommands: serve takes scheduled backups (reported on
// /metrics and the API), margen backup copies the database while serve
// runs, margen restore refuses the database serve has open and restores it
// once serve has stopped.
func TestBackupAndRestoreCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	token := setupOpsOrg(t, db)
	decideMany(t, db, 50, 37)
	dir := filepath.Join(t.TempDir(), "backups")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--backup-dir", dir, "--backup-every", "1h", "--backup-keep", "2"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	base := waitListening(t, &stdout, &stderr, done)

	// The first scheduled backup is due at once (the directory is empty).
	var last backup.Status
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, body := get(t, base+"/api/v1/backups/last", token)
		if code != 200 {
			t.Fatalf("GET /api/v1/backups/last: %d %s", code, body)
		}
		last = backup.Status{}
		json.Unmarshal(body, &last)
		if last.LastAt != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !last.Configured || !last.OK || last.File == "" || last.Keep != 2 {
		t.Fatalf("last backup: %+v\n%s", last, stderr.String())
	}
	if names, _ := backup.List(dir); len(names) != 1 || filepath.Base(names[0]) != last.File {
		t.Fatalf("backups in %s: %v, reported %s", dir, names, last.File)
	}
	_, metrics := get(t, base+"/metrics", "")
	if !strings.Contains(string(metrics), "margen_backup_failures_total 0") ||
		strings.Contains(string(metrics), "margen_backup_last_success_timestamp_seconds 0\n") ||
		!strings.Contains(string(metrics), "margen_backup_last_success_timestamp_seconds ") {
		t.Fatalf("backup metrics:\n%s", metrics)
	}
	if code, body := get(t, base+"/readyz", ""); code != 200 || !strings.Contains(string(body), `"workers":"ok"`) {
		t.Fatalf("readyz: %d %s", code, body)
	}

	// An online backup from the CLI while serve runs.
	bak := filepath.Join(t.TempDir(), "now.db")
	out := mustRun(t, "backup", "--db", db, "--to", bak)
	if !strings.Contains(out, "backed up "+db+" to "+bak) || !strings.Contains(out, "ledger and audit chain ok") {
		t.Fatalf("backup printed %q", out)
	}
	mustFail(t, "exists", "backup", "--db", db, "--to", bak)
	mustFail(t, "in use", "restore", "--db", db, "--from", bak)

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	decideMany(t, db, 5, 37) // after the backup: the restore takes them away
	out = mustRun(t, "restore", "--db", db, "--from", bak)
	if !strings.Contains(out, "restored "+db) || !strings.Contains(out, "ledger and audit chain ok") {
		t.Fatalf("restore printed %q", out)
	}
	st := openDB(t, db)
	org, err := st.OrgBySlug(context.Background(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	if n := countDecisions(t, st, org.ID); n != 50 {
		t.Fatalf("%d decisions after the restore, want the 50 of the backup", n)
	}
	mustRun(t, "ledger", "check", "--db", db, "--org", "ops")
	// A scheduled backup restores on another path too.
	other := filepath.Join(t.TempDir(), "other.db")
	mustFail(t, "audit key file", "restore", "--db", other, "--from", filepath.Join(dir, last.File))
	mustRun(t, "restore", "--db", other, "--audit-key-file", db+".audit-key", "--from", filepath.Join(dir, last.File))
	mustRun(t, "ledger", "check", "--db", other, "--org", "ops")
}

func TestBackupCommandOnPostgres(t *testing.T) {
	u, _ := url.Parse("postgres://margen:s3cret@db.example:5432/margen?sslmode=disable&search_path=tenant1")
	cmd := pgDumpCommand(u.String(), "x.dump")
	if strings.Contains(cmd, "s3cret") || !strings.Contains(cmd, "--schema=tenant1") || strings.Contains(cmd, "search_path") ||
		!strings.Contains(cmd, "'postgres://margen@db.example:5432/margen?sslmode=disable'") {
		t.Fatalf("pg_dump command %q", cmd)
	}
	mustFail(t, "pg_dump --format=custom", "backup", "--db", u.String(), "--to", "x.dump")
	mustFail(t, "pg_restore", "restore", "--db", u.String(), "--from", "x.dump")
	mustFail(t, "--backup-dir takes SQLite backups", "serve", "--db", u.String(), "--backup-dir", t.TempDir())
	mustFail(t, "--backup-every must be at least 1m", "serve", "--db", filepath.Join(t.TempDir(), "x.db"), "--backup-every", "5s")
}

// previousSchema is the schema just before this binary's: the upgrade
// test migrates over the newest migration. The data is written by the
// current store, whose audit trail is sealed under the audit key from an
// organisation's first entry, so the old schema must already have the
// seal (00003). Upgrading a trail written before the seal existed is
// TestSealLegacyChain's (store).
func previousSchema() int64 {
	return max(store.SchemaVersion()-1, 3)
}

// TestUpgradeKeepsEveryRecord builds a database with the previous
// release's schema and data (the current store writes the data into a
// current database, then every column the old schema has is copied into a
// database migrated only to the old version), upgrades it with margen
// migrate, and checks that every row survives, the ledger checks and, on
// SQLite, a verified copy of the old database was kept; on PostgreSQL the
// upgrade waits for --yes.
func TestUpgradeKeepsEveryRecord(t *testing.T) {
	for name, newDSN := range map[string]func(testing.TB) string{"sqlite": storetest.SQLitePath, "postgres": storetest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			src := newDSN(t)
			setupOpsOrg(t, src)
			decideMany(t, src, 300, 37)

			old := newDSN(t)
			prev := previousSchema()
			if err := store.MigrateTo(ctx, old, prev); err != nil {
				t.Fatal(err)
			}
			// Migration numbers have gaps (each branch has its own): the
			// previous schema is the last migration at or below prev.
			if st, err := store.Inspect(ctx, old); err != nil {
				t.Fatal(err)
			} else {
				prev = st.Version
			}
			copyCommonColumns(t, src, old)
			copyAuditKey(t, src, old)
			mustRun(t, "ledger", "check", "--db", src, "--org", "ops")
			oldCols := schemaColumns(t, old)
			before := dumpTables(t, old, nil)
			if len(before["decisions"]) != 300 || len(before["audit_log"]) == 0 {
				t.Fatalf("old database: %d decisions, %d audit entries", len(before["decisions"]), len(before["audit_log"]))
			}

			if name == "postgres" {
				mustFail(t, "pg_dump --format=custom", "migrate", "--db", old)
				if st, _ := store.Inspect(ctx, old); st.Version != prev {
					t.Fatalf("migrate without --yes changed the schema to %d", st.Version)
				}
				out := mustRun(t, "migrate", "--db", old, "--yes")
				if !strings.Contains(out, fmt.Sprintf("from schema version %d to %d", prev, store.SchemaVersion())) {
					t.Errorf("migrate --yes printed %q", out)
				}
			} else {
				bdir := t.TempDir()
				out := mustRun(t, "migrate", "--db", old, "--backup-dir", bdir)
				copies, _ := filepath.Glob(filepath.Join(bdir, "*.before-v*.db"))
				if len(copies) != 1 || !strings.Contains(out, copies[0]) {
					t.Fatalf("migrate printed %q; copies %v", out, copies)
				}
				if st, err := store.Inspect(ctx, copies[0]); err != nil || st.Version != prev {
					t.Fatalf("the copy taken before the upgrade: %+v, %v", st, err)
				}
				// Nothing to upgrade the second time: no new copy.
				mustRun(t, "migrate", "--db", old, "--backup-dir", bdir)
				if again, _ := filepath.Glob(filepath.Join(bdir, "*.db")); len(again) != 1 {
					t.Fatalf("an up-to-date database was copied again: %v", again)
				}
			}
			if st, _ := store.Inspect(ctx, old); st.Version != store.SchemaVersion() {
				t.Fatalf("after the upgrade the schema is at %d", st.Version)
			}
			after := dumpTables(t, old, oldCols)
			for table, rows := range before {
				if !slices.Equal(rows, after[table][:min(len(after[table]), len(rows))]) || len(after[table]) != len(rows) {
					t.Errorf("table %s: %d rows before the upgrade, %d after, or their values changed", table, len(rows), len(after[table]))
				}
			}
			out := mustRun(t, "ledger", "check", "--db", old, "--org", "ops")
			if !strings.Contains(out, "chain intact") {
				t.Fatalf("ledger check after the upgrade: %s", out)
			}
		})
	}
}

// schemaColumns is, per table, the columns of the database's schema now,
// so a dump after an upgrade compares only what the old schema had.
func schemaColumns(t *testing.T, dsn string) map[string][]string {
	t.Helper()
	db, pg := sqlConn(t, dsn)
	schema := "main"
	if pg {
		schema = searchPath(t, dsn)
	}
	return tableColumns(t, db, pg, schema)
}

// copyAuditKey gives the old database the audit key its copied trail is
// sealed with (a SQLite database's key file sits beside it; PostgreSQL
// databases share the user's).
func copyAuditKey(t *testing.T, src, dst string) {
	t.Helper()
	if store.IsPostgres(src) {
		return
	}
	k, err := os.ReadFile(src + ".audit-key")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".audit-key", k, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestNewerSchemaRefused: serve and migrate refuse a database upgraded by
// a newer margen, naming both versions, and change nothing.
func TestNewerSchemaRefused(t *testing.T) {
	for name, newDSN := range map[string]func(testing.TB) string{"sqlite": storetest.SQLitePath, "postgres": storetest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			db := newDSN(t)
			mustRun(t, "migrate", "--db", db)
			st := openDB(t, db)
			newer := store.SchemaVersion() + 3
			if _, err := st.SQL().Exec(st.Rebind("INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, true)"), newer); err != nil {
				t.Fatal(err)
			}
			st.Close()
			want := fmt.Sprintf("the database is at schema version %d, but this margen knows schema versions up to %d", newer, store.SchemaVersion())
			mustFail(t, want, "serve", "--db", db, "--addr", "127.0.0.1:0")
			mustFail(t, want, "migrate", "--db", db, "--yes")
			mustFail(t, want, "ledger", "check", "--db", db, "--org", "x")
		})
	}
}

// sqlConn opens a database/sql handle on either engine.
func sqlConn(t *testing.T, dsn string) (*sql.DB, bool) {
	t.Helper()
	pg := store.IsPostgres(dsn)
	driver := "sqlite"
	if pg {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db, pg
}

func searchPath(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("search_path")
}

// tableColumns lists the tables of a database (without goose's) and
// their columns.
func tableColumns(t *testing.T, db *sql.DB, pg bool, schema string) map[string][]string {
	t.Helper()
	q := `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`
	var args []any
	if pg {
		q = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`
		args = append(args, schema)
	}
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var tbl, col string
		if err := rows.Scan(&tbl, &col); err != nil {
			t.Fatal(err)
		}
		if tbl != "goose_db_version" {
			out[tbl] = append(out[tbl], col)
		}
	}
	return out
}

// copyCommonColumns copies every row of src into dst, table by table, in
// the columns both schemas have.
func copyCommonColumns(t *testing.T, src, dst string) {
	t.Helper()
	db, pg := sqlConn(t, dst)
	srcSchema, dstSchema := "src", "main"
	if pg {
		srcSchema, dstSchema = searchPath(t, src), searchPath(t, dst)
		if _, err := db.Exec("SET session_replication_role = replica"); err != nil { // no foreign key triggers
			t.Fatal(err)
		}
	} else if _, err := db.Exec("ATTACH DATABASE ? AS src", src); err != nil {
		t.Fatal(err)
	}
	srcDB, _ := sqlConn(t, src)
	have := tableColumns(t, srcDB, pg, srcSchema)
	for table, cols := range tableColumns(t, db, pg, dstSchema) {
		var common []string
		for _, c := range cols {
			if slices.Contains(have[table], c) {
				common = append(common, c)
			}
		}
		list := strings.Join(common, ", ")
		q := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s", dstSchema, table, list, list, srcSchema, table)
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("copy %s: %v", table, err)
		}
	}
}

// dumpTables reads every row of every table as text, in a stable order.
func dumpTables(t *testing.T, dsn string, only map[string][]string) map[string][]string {
	t.Helper()
	db, pg := sqlConn(t, dsn)
	schema := "main"
	if pg {
		schema = searchPath(t, dsn)
	}
	out := map[string][]string{}
	for table, cols := range tableColumns(t, db, pg, schema) {
		if only != nil {
			if cols = only[table]; cols == nil {
				continue
			}
		}
		order := make([]string, len(cols))
		for i := range cols {
			order[i] = fmt.Sprint(i + 1)
		}
		sel := slices.Clone(cols)
		if pg { // json has no ordering: compare the text of every column
			for i := range sel {
				sel[i] += "::text"
			}
		}
		rows, err := db.Query(fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(sel, ", "), table, strings.Join(order, ", ")))
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				if tm, ok := v.(time.Time); ok {
					v = tm.UTC().Format(time.RFC3339Nano)
				}
				fmt.Fprintf(&b, "%s=%v|", cols[i], v)
			}
			out[table] = append(out[table], b.String())
		}
		rows.Close()
	}
	return out
}

// TestPostgresDumpRestore follows docs/operations.md: pg_dump (the command
// margen prints) of the suite's database, pg_restore into a fresh
// database, and the restored copy verifies (schema version, ledger, audit
// chain) and holds every decision. pg_dump and pg_restore come with the
// PostgreSQL server: when MARGEN_TEST_POSTGRES is set and they are
// missing, the test fails instead of skipping.
func TestPostgresDumpRestore(t *testing.T) {
	src := storetest.PostgresURL(t) // skips without MARGEN_TEST_POSTGRES
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for the PostgreSQL backup test (install the PostgreSQL client tools): %v", tool, err)
		}
	}
	ctx := context.Background()
	setupOpsOrg(t, src)
	decideMany(t, src, 300, 37)
	srcDB, err := store.Open(ctx, src, store.Options{AuditKey: cliAuditKey(t, src)})
	if err != nil {
		t.Fatal(err)
	}
	org, err := srcDB.OrgBySlug(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	want := countDecisions(t, srcDB, org.ID)
	srcDB.Close()

	dump := filepath.Join(t.TempDir(), "margen.dump")
	if out, err := exec.Command("pg_dump", pgDumpArgs(src, dump)...).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}

	// A fresh database to restore into.
	admin, _ := sqlConn(t, os.Getenv(storetest.EnvPostgres))
	name := fmt.Sprintf("margen_restore_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, _ := url.Parse(os.Getenv(storetest.EnvPostgres))
	u.Path = "/" + name
	target := u.String()
	if out, err := exec.Command("pg_restore", "--no-owner", "--exit-on-error", "--dbname="+target, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}

	q := u.Query()
	q.Set("search_path", searchPath(t, src))
	u.RawQuery = q.Encode()
	restored := u.String()
	v, err := store.VerifyBackup(ctx, restored, cliAuditKey(t, src))
	if err != nil || !v.OK() || v.Orgs != 1 || v.Entries == 0 || v.Audit == 0 {
		t.Fatalf("restored copy: %s, %v", v, err)
	}
	out := mustRun(t, "ledger", "check", "--db", restored, "--org", "ops")
	if !strings.Contains(out, "chain intact") {
		t.Fatalf("ledger check on the restored copy: %s", out)
	}
	rdb := openDB(t, restored)
	if got := countDecisions(t, rdb, org.ID); got != want || got != 300 {
		t.Fatalf("restored %d decisions, want %d", got, want)
	}
}

// TestVersion: the -ldflags values win; without them the build
// information is used, and the schema version is printed either way.
func TestVersion(t *testing.T) {
	out := mustRun(t, "version")
	if !strings.HasPrefix(out, "margen ") || !strings.Contains(out, "\ncommit ") ||
		!strings.Contains(out, fmt.Sprintf("schema version %d\n", store.SchemaVersion())) {
		t.Fatalf("version printed %q", out)
	}
	version, commit = "v1.4.0", "0123456789abcdef0123"
	defer func() { version, commit = "", "" }()
	out = mustRun(t, "version")
	if !strings.HasPrefix(out, "margen v1.4.0\ncommit 0123456789abcdef0123\n") {
		t.Fatalf("version with -ldflags values printed %q", out)
	}
	if v := versionString(); v != "v1.4.0+0123456789ab" {
		t.Fatalf("versionString() = %q", v)
	}
}
