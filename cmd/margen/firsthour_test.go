package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen/store/storetest"
)

// freshDBs returns, per engine, a database nobody has created or migrated:
// a SQLite path that does not exist and an empty PostgreSQL schema.
func freshDBs(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "nuevo.db") },
		"postgres": func(t *testing.T) string { return storetest.PostgresURL(t) },
	}
}

// smallPolicy is the "A small policy" example of docs/policy.md, as written.
func smallPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## A small policy\n\n```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/policy.md has no \"A small policy\" example")
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPolicyCheckWarnings: policy check warns (exit 0) about the small
// policy of the docs without its supervisor grant, with FILE:LINE:COL.
func TestPolicyCheckWarnings(t *testing.T) {
	src, err := os.ReadFile(smallPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	cut := regexp.MustCompile(`(?s)  - id: supervisor_gift.*?\n\n`).ReplaceAll(src, []byte("\n"))
	if string(cut) == string(src) {
		t.Fatal("the small policy has no supervisor_gift grant to cut")
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, cut, 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "policy", "check", path)
	want := path + ":24:13: approval.approver: warning: grant bread_basket sends requests above its max_amount (2500000) for courtesy_gift to role supervisor, which may approve at most 2500000 of it"
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, ": ok with 1 warning (2 actions, 2 roles, 1 grant, 1 forbid rule)\n") {
		t.Errorf("policy check:\n%s\nwant it to start with\n%s", out, want)
	}
	if out := mustRun(t, "policy", "check", smallPolicy(t)); strings.Contains(out, "warning") {
		t.Errorf("the small policy as written warns:\n%s", out)
	}
}

// TestFirstHour follows a new user's first steps on a brand-new database,
// without `margen migrate`: create the organisation, check and publish the
// small policy of docs/policy.md.
func TestFirstHour(t *testing.T) {
	for name, fresh := range freshDBs(t) {
		t.Run(name, func(t *testing.T) {
			db := fresh(t)
			out := mustRun(t, "org", "create", "--db", db, "--slug", "la-brasa", "--name", "La Brasa",
				"--currency", "COP", "--timezone", "America/Bogota", "--owner", "lucia")
			if !strings.Contains(out, "owner: login lucia") {
				t.Errorf("org create:\n%s", out)
			}
			mustRun(t, "team", "add", "--db", db, "--org", "la-brasa", "--slug", "salon", "--name", "Salón")

			// The small policy of the docs publishes as written, although it
			// does not declare the owner's role.
			small := smallPolicy(t)
			out = mustRun(t, "policy", "publish", "--db", db, "--org", "la-brasa", small)
			if !strings.Contains(out, "as policy version 1 of la-brasa (2 actions, 2 roles, 2 grants, 1 forbid rule)") {
				t.Errorf("policy publish:\n%s", out)
			}
		})
	}
}
