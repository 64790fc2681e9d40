package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/store/storetest"
)

func TestTokenRevokeAndMemberDeactivate(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) { testTokenRevokeAndMemberDeactivate(t, eng.DSN(t)) })
	}
}

func testTokenRevokeAndMemberDeactivate(t *testing.T, db string) {
	ctx := context.Background()
	// The audit key file lands beside a SQLite database; for PostgreSQL it
	// would go to the user's config directory: keep it in the test's.
	t.Setenv("MARGEN_AUDIT_KEY_FILE", filepath.Join(t.TempDir(), "audit-key"))
	mustRun(t, "migrate", "--db", db)
	mustRun(t, "org", "create", "--db", db, "--slug", "acme", "--name", "Acme", "--currency", "EUR",
		"--timezone", "Europe/Madrid", "--owner", "ana")
	tok := strings.TrimSpace(mustRun(t, "token", "create", "--db", db, "--org", "acme", "--member", "ana"))
	out := mustRun(t, "token", "list", "--db", db, "--org", "acme", "--member", "ana")
	id := regexp.MustCompile(`tok_[0-9a-f]+`).FindString(out)
	if id == "" || !strings.Contains(out, "active") {
		t.Fatalf("token list:\n%s", out)
	}
	mustFail(t, "no token", "token", "revoke", "--db", db, "--org", "acme", "tok_nope")
	mustRun(t, "token", "revoke", "--db", db, "--org", "acme", id)
	if out := mustRun(t, "token", "list", "--db", db, "--org", "acme", "--member", "ana"); !strings.Contains(out, "revoked") {
		t.Fatalf("token list after revoke:\n%s", out)
	}
	st := openDB(t, db)
	if _, err := st.TokenByHash(ctx, auth.HashToken(tok)); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("revoked token still resolves: %v", err)
	}

	mustRun(t, "member", "deactivate", "--db", db, "--org", "acme", "--member", "ana")
	mustFail(t, "not active", "token", "create", "--db", db, "--org", "acme", "--member", "ana")
	mustRun(t, "member", "activate", "--db", db, "--org", "acme", "--member", "ana")
	mustRun(t, "token", "create", "--db", db, "--org", "acme", "--member", "ana")
	mustFail(t, "--member", "member", "deactivate", "--db", db, "--org", "acme", "--member", "nobody")
}
