package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// TestAuditKeyCheckpointsAndTamper: on both engines, the first migrate
// generates the audit key with a warning; checkpoints are appended and
// verified (with the audit key and with the printed public key alone); an
// edit of members.access is named by ledger check and fails audit verify; a
// wrong key fails clearly; a rewritten checkpointed entry is found.
func TestAuditKeyCheckpointsAndTamper(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			dir := t.TempDir()
			db := eng.DSN(t)
			keyFile := filepath.Join(dir, "audit.key")
			cps := filepath.Join(dir, "acme.checkpoints")
			with := func(args ...string) []string {
				return append(args, "--db", db, "--audit-key-file", keyFile)
			}
			_, errOut, err := margenRun(t, with("migrate")...)
			if err != nil || !strings.Contains(errOut, "generated a new audit key in "+keyFile) || !strings.Contains(errOut, "Back this file up") {
				t.Fatalf("first migrate: %v\n%s", err, errOut)
			}
			fi, err := os.Stat(keyFile)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v %v", fi, err)
			}
			if _, errOut, _ := margenRun(t, with("migrate")...); strings.Contains(errOut, "generated") {
				t.Fatalf("second migrate generated another key:\n%s", errOut)
			}
			mustRun(t, with("org", "create", "--slug", "acme", "--name", "Acme", "--currency", "EUR",
				"--timezone", "Europe/Madrid", "--owner", "ana")...)
			mustRun(t, with("member", "add", "--org", "acme", "--login", "beto", "--name", "Beto", "--access", "frontline",
				"--role", "waiter")...)
			out := mustRun(t, with("audit", "checkpoint", "--org", "acme", "--out", cps)...)
			pub := regexp.MustCompile(`public key: (\S+)`).FindStringSubmatch(out)
			if pub == nil {
				t.Fatalf("checkpoint:\n%s", out)
			}
			mustRun(t, with("team", "add", "--org", "acme", "--slug", "salon", "--name", "Salón")...)
			mustRun(t, with("audit", "checkpoint", "--org", "acme", "--out", cps)...)
			if out := mustRun(t, with("audit", "verify", "--org", "acme", "--checkpoint", cps)...); !strings.Contains(out, "extends all 2 checkpoints") {
				t.Fatalf("verify:\n%s", out)
			}
			// The ledger check from the last checkpoint walks only what
			// follows it (nothing here).
			if out := mustRun(t, with("ledger", "check", "--org", "acme", "--checkpoint", cps)...); !strings.Contains(out, "from the checkpoint at entry") ||
				!strings.Contains(out, "0 sealed rows: chain intact") {
				t.Fatalf("ledger check --checkpoint:\n%s", out)
			}
			// The public key alone verifies the signatures; another does not.
			other := margen.AuditKey("another key, 32 bytes long......")
			mustRun(t, with("audit", "verify", "--org", "acme", "--checkpoint", cps, "--public-key", pub[1])...)
			mustFail(t, "signature does not verify", with("audit", "verify", "--org", "acme", "--checkpoint", cps,
				"--public-key", base64.StdEncoding.EncodeToString(other.PublicKey()))...)

			// A wrong key fails clearly, for the check and for writes.
			wrong := filepath.Join(dir, "wrong.key")
			if err := os.WriteFile(wrong, []byte(hex.EncodeToString(other)), 0o600); err != nil {
				t.Fatal(err)
			}
			mustFail(t, "audit key does not match", "ledger", "check", "--db", db, "--audit-key-file", wrong, "--org", "acme")
			mustFail(t, "audit key does not match", "migrate", "--db", db, "--audit-key-file", wrong) // and so does serve
			mustFail(t, "audit key does not match", "team", "add", "--db", db, "--audit-key-file", wrong, "--org", "acme",
				"--slug", "bar", "--name", "Bar")

			// Raising a member's access behind the store's back is named.
			key, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			k, err := margen.ParseAuditKey(string(key))
			if err != nil {
				t.Fatal(err)
			}
			st, err := store.Open(context.Background(), db, store.Options{AuditKey: k})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			org, err := st.OrgBySlug(context.Background(), "acme")
			if err != nil {
				t.Fatal(err)
			}
			beto, err := st.MemberByLogin(context.Background(), org.ID, "beto")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.SQL().Exec(st.Rebind("UPDATE members SET access = 'owner' WHERE org_id = ? AND id = ?"), org.ID, beto.ID); err != nil {
				t.Fatal(err)
			}
			out, _, err = margenRun(t, with("ledger", "check", "--org", "acme")...)
			if err == nil || !strings.Contains(out, "changed: members "+beto.ID) {
				t.Fatalf("ledger check after the edit: %v\n%s", err, out)
			}
			mustFail(t, "does not verify", with("audit", "verify", "--org", "acme", "--checkpoint", cps)...)

			// A rewritten entry that a checkpoint names is found too (the
			// first checkpoint is at entry 3: org, owner, beto).
			if _, err := st.SQL().Exec(st.Rebind("UPDATE audit_log SET hash = 'rewritten' WHERE org_id = ? AND seq = 3"), org.ID); err != nil {
				t.Fatal(err)
			}
			out, _, err = margenRun(t, with("audit", "verify", "--org", "acme", "--checkpoint", cps)...)
			if err == nil || !strings.Contains(out, "checkpoint 1 (entry 3): the entry's hash is rewritten") {
				t.Fatalf("verify after rewriting: %v\n%s", err, out)
			}
		})
	}
}
