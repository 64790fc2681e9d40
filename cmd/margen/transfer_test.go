package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

func TestImportAndExportCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "m.db")
	mustRun(t, "migrate", "--db", db)
	mustRun(t, "org", "create", "--db", db, "--slug", "acme", "--name", "Acme", "--currency", "COP",
		"--timezone", "America/Bogota", "--owner", "lucia")

	// Excel's "CSV (separated by semicolons)" in Spanish: Windows-1252.
	text := "Referencia;Nombre;Contacto\nc1;José Núñez;+57 300\n;Sin referencia;\nc3;Ana;\n"
	latin, err := charmap.Windows1252.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "clientes.csv")
	if err := os.WriteFile(file, []byte(latin), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := margenRun(t, "import", "customers", "--db", db, "--org", "acme", file)
	if err == nil {
		t.Fatalf("a file with a bad line imported: %s", out)
	}
	if want := file + ":3: ref: The field ref is missing.\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	if !strings.Contains(out, "windows-1252") || !strings.Contains(out, "2 new") || !strings.Contains(out, "nothing was imported") {
		t.Errorf("stdout %q", out)
	}
	out = mustRun(t, "import", "customers", "--db", db, "--org", "acme", "--dry-run", file)
	if !strings.Contains(out, "2 new, 0 updated, 0 unchanged, 1 bad") || !strings.Contains(out, "dry run") {
		t.Errorf("dry run: %q", out)
	}
	out = mustRun(t, "import", "customers", "--db", db, "--org", "acme", "--skip-bad", file)
	if !strings.Contains(out, "2 new") || !strings.Contains(out, "skipping 1 bad lines") {
		t.Errorf("skip-bad: %q", out)
	}
	out = mustRun(t, "import", "customers", "--db", db, "--org", "acme", "--skip-bad", file)
	if !strings.Contains(out, "0 new, 0 updated, 2 unchanged") || !strings.Contains(out, "nothing to change") {
		t.Errorf("second run: %q", out)
	}
	header := filepath.Join(dir, "bad.csv")
	os.WriteFile(header, []byte("slug,nombre,color\nsalon,Salón,rojo\n"), 0o600)
	mustFail(t, header+":1: header: Unknown column \"color\"", "import", "teams", "--db", db, "--org", "acme", header)

	// The audit trail, exported: the import's entries, safe cells.
	csvOut := filepath.Join(dir, "audit.csv")
	_, errOut, err = margenRun(t, "export", "audit", "--db", db, "--org", "acme", "--out", csvOut, "--since", "2020-01-01")
	if err != nil || !strings.Contains(errOut, "exported 5 audit of acme") {
		t.Fatalf("export: %v\n%s", err, errOut)
	}
	f, err := os.Open(csvOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || recs[0][0] != "seq" || recs[4][3] != "customer.import" || recs[5][3] != "import.customers" {
		t.Errorf("audit export: %q", recs)
	}
	mustFail(t, "--since", "export", "decisions", "--db", db, "--org", "acme", "--since", "yesterday")
	mustFail(t, "--format", "export", "decisions", "--db", db, "--org", "acme", "--format", "xlsx")
	out = mustRun(t, "export", "decisions", "--db", db, "--org", "acme", "--format", "jsonl")
	if out != "" {
		t.Errorf("decisions of an organisation without any: %q", out)
	}
}
