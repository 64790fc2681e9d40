package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/margenhq/margen/store/storetest"
)

// TestCustomerExportEraseCommands: customer export names the customer;
// customer erase asks for confirmation (none given: nothing erased),
// erases with --yes, says so when asked again; the export then holds none
// of their data and ledger check passes, on both engines.
func TestCustomerExportEraseCommands(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			dir := t.TempDir()
			db := eng.DSN(t)
			with := func(args ...string) []string {
				return append(args, "--db", db, "--audit-key-file", filepath.Join(dir, "audit.key"))
			}
			mustRun(t, with("migrate")...)
			mustRun(t, with("org", "create", "--slug", "acme", "--name", "Acme", "--currency", "COP",
				"--timezone", "America/Bogota", "--owner", "lucia")...)
			file := filepath.Join(dir, "clientes.csv")
			if err := os.WriteFile(file, []byte("ref,name,contact\nc1,Josefina Núñez Arbeláez,+57 300 555 0101\nc2,Otro Cliente,\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			mustRun(t, with("import", "customers", "--org", "acme", file)...)

			out := filepath.Join(dir, "c1.json")
			mustRun(t, with("customer", "export", "--org", "acme", "--customer", "c1", "--out", out)...)
			b, err := os.ReadFile(out)
			if err != nil || !json.Valid(b) || !strings.Contains(string(b), "Josefina Núñez Arbeláez") {
				t.Fatalf("export: %v\n%s", err, b)
			}
			mustFail(t, "confirmation not given", with("customer", "erase", "--org", "acme", "--customer", "c1")...)
			mustFail(t, `no customer "nadie"`, with("customer", "erase", "--org", "acme", "--customer", "nadie", "--yes")...)
			if got := mustRun(t, with("customer", "erase", "--org", "acme", "--customer", "c1", "--yes")...); !strings.Contains(got, "erased (rows changed: customers 1)") {
				t.Errorf("erase: %q", got)
			}
			// The id is derived from the old reference, so that reference
			// still finds the record, which names nobody now.
			if got := mustRun(t, with("customer", "erase", "--org", "acme", "--customer", "c1", "--yes")...); !strings.Contains(got, "erased already") {
				t.Errorf("erase by the old reference: %q", got)
			}
			var doc struct {
				Customer struct{ ID string }
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if got := mustRun(t, with("customer", "erase", "--org", "acme", "--customer", doc.Customer.ID)...); !strings.Contains(got, "erased already") {
				t.Errorf("second erase: %q", got)
			}
			after := mustRun(t, with("customer", "export", "--org", "acme", "--customer", doc.Customer.ID)...)
			if strings.Contains(after, "Josefina") || strings.Contains(after, "555 0101") || !strings.Contains(after, doc.Customer.ID) {
				t.Errorf("export after the erasure: %s", after)
			}
			// Importing the old file again refuses the erased customer's line.
			mustFail(t, "c1 was erased", with("import", "customers", "--org", "acme", file)...)
			if got := mustRun(t, with("ledger", "check", "--org", "acme")...); !strings.Contains(strings.ToLower(got), "ok") {
				t.Errorf("ledger check: %s", got)
			}
		})
	}
}
