package importer_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/importer"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

func newOrg(t *testing.T, db *store.DB, slug string) *margen.Org {
	t.Helper()
	org := &margen.Org{Slug: slug, Name: slug, Currency: "COP", Timezone: "America/Bogota", Language: "es"}
	owner := &margen.Member{Login: "owner", Name: "Owner", Role: "manager", Active: true}
	if err := db.CreateOrg(context.Background(), org, owner, "test"); err != nil {
		t.Fatal(err)
	}
	return org
}

func count(t *testing.T, db *store.DB, table, orgID string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow(db.Rebind("SELECT COUNT(*) FROM "+table+" WHERE org_id = ?"), orgID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func lastSeq(t *testing.T, db *store.DB, orgID string) int64 {
	t.Helper()
	seq, err := db.LastAuditSeq(context.Background(), orgID)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// customersFile writes n data lines, every 100th of them bad in one of
// five ways, and returns the file and the line numbers of the bad lines.
func customersFile(n int) ([]byte, []int) {
	var b strings.Builder
	b.WriteString("ref;nombre;contacto;etiquetas\n")
	var bad []int
	for i := 1; i <= n; i++ {
		line := i + 1
		ref := fmt.Sprintf("cli-%06d", i)
		row := fmt.Sprintf("%s;Cliente %d;+57 300 %07d;vip|frecuente\n", ref, i, i)
		if i%100 == 0 {
			bad = append(bad, line)
			switch (i / 100) % 5 {
			case 0:
				row = fmt.Sprintf(";Sin referencia %d;;\n", i)
			case 1:
				row = fmt.Sprintf("%s;%s;;\n", ref, strings.Repeat("x", 201))
			case 2:
				row = fmt.Sprintf("cli-%06d;Repetido;;\n", i-1) // a duplicate of the line before
			case 3:
				row = fmt.Sprintf("%s;Cliente;;%s\n", ref, strings.Repeat("t", 41))
			case 4:
				row = fmt.Sprintf("%s;Cliente;;vip;extra\n", ref)
			}
		}
		b.WriteString(row)
	}
	return []byte(b.String()), bad
}

func errorLines(rep *importer.Report) []int {
	var lines []int
	for _, e := range rep.Errors {
		if len(lines) == 0 || lines[len(lines)-1] != e.Line {
			lines = append(lines, e.Line)
		}
	}
	return lines
}

// The acceptance test: a 100,000-line customers file with 1% bad
// lines. The dry run reports exactly those lines and writes nothing; a real
// run imports nothing (all or nothing); with SkipBad exactly the good lines;
// a second run changes nothing and writes no audit entry.
func TestImportCustomers100k(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 5_000
	}
	data, bad := customersFile(n)
	good := n - len(bad)
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			ctx := context.Background()
			org := newOrg(t, db, "imp")
			opt := importer.Options{Kind: margen.ImportCustomers, Org: org, Actor: "cli", ActorAccess: margen.AccessOwner}
			seq0 := lastSeq(t, db, org.ID)

			opt.DryRun = true
			start := time.Now()
			rep, err := importer.Run(ctx, db, data, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("dry run of %d lines: %s", n, time.Since(start).Round(time.Millisecond))
			if !slices.Equal(errorLines(rep), bad) || rep.Bad != len(bad) {
				t.Fatalf("dry run reports %d bad lines %v..., want %d", rep.Bad, head(errorLines(rep)), len(bad))
			}
			if rep.New != good || rep.Updated != 0 || rep.Unchanged != 0 || rep.Applied || rep.Lines != n {
				t.Errorf("dry run report %+v", counts(rep))
			}
			if c := count(t, db, "customers", org.ID); c != 0 || lastSeq(t, db, org.ID) != seq0 {
				t.Fatalf("dry run wrote %d customers", c)
			}

			opt.DryRun = false
			rep, err = importer.Run(ctx, db, data, opt)
			if !margen.IsCode(err, margen.EINVALID) || rep == nil || rep.Bad != len(bad) || rep.Applied {
				t.Fatalf("all-or-nothing run: err %v, report %+v", err, counts(rep))
			}
			if c := count(t, db, "customers", org.ID); c != 0 || lastSeq(t, db, org.ID) != seq0 {
				t.Fatalf("a refused file wrote %d customers", c)
			}

			opt.SkipBad = true
			start = time.Now()
			rep, err = importer.Run(ctx, db, data, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("import of %d good lines (%s): %s", good, eng.Name, time.Since(start).Round(time.Millisecond))
			if rep.New != good || rep.Bad != len(bad) || !rep.Applied {
				t.Errorf("skip-bad report %+v", counts(rep))
			}
			if c := count(t, db, "customers", org.ID); c != good {
				t.Fatalf("imported %d customers, want %d", c, good)
			}
			// One audit entry per customer and one for the import.
			if got := lastSeq(t, db, org.ID) - seq0; got != int64(good+1) {
				t.Errorf("%d audit entries, want %d", got, good+1)
			}
			c, err := db.CustomerByID(ctx, org.ID, margen.CustomerID(org.ID, "cli-000001"))
			if err != nil || c.Name != "Cliente 1" || c.Contact != "+57 300 0000001" || !slices.Equal(c.Tags, []string{"vip", "frecuente"}) {
				t.Errorf("customer cli-000001 = %+v, %v", c, err)
			}

			seq1 := lastSeq(t, db, org.ID)
			start = time.Now()
			rep, err = importer.Run(ctx, db, data, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("second run (%s): %s", eng.Name, time.Since(start).Round(time.Millisecond))
			if rep.New != 0 || rep.Updated != 0 || rep.Unchanged != good || rep.Applied {
				t.Errorf("second run report %+v", counts(rep))
			}
			if lastSeq(t, db, org.ID) != seq1 || count(t, db, "customers", org.ID) != good {
				t.Errorf("the second run wrote something")
			}
			if broken, _, err := db.VerifyAudit(ctx, org.ID); err != nil || broken != 0 {
				t.Errorf("audit chain broken at %d: %v", broken, err)
			}
		})
	}
}

func head(xs []int) []int { return xs[:min(len(xs), 10)] }

func counts(r *importer.Report) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("lines %d bad %d new %d updated %d unchanged %d applied %v", r.Lines, r.Bad, r.New, r.Updated, r.Unchanged, r.Applied)
}

func TestImportUpdatesOnlyGivenColumns(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			ctx := context.Background()
			org := newOrg(t, db, "upd")
			opt := importer.Options{Kind: margen.ImportCustomers, Org: org, Actor: "cli", ActorAccess: margen.AccessOwner}
			if _, err := importer.Run(ctx, db, []byte("ref,name,contact,tags\na,Ana,ana@x,vip\nb,Bea,,\n"), opt); err != nil {
				t.Fatal(err)
			}
			// No contact or tags column: those stay; Ana's name changes.
			rep, err := importer.Run(ctx, db, []byte("ref,name\na,Ana María\nb,Bea\nc,Cid\n"), opt)
			if err != nil {
				t.Fatal(err)
			}
			if rep.New != 1 || rep.Updated != 1 || rep.Unchanged != 1 {
				t.Errorf("report %s", counts(rep))
			}
			c, _ := db.CustomerByID(ctx, org.ID, margen.CustomerID(org.ID, "a"))
			if c.Name != "Ana María" || c.Contact != "ana@x" || !slices.Equal(c.Tags, []string{"vip"}) {
				t.Errorf("a = %+v", c)
			}
		})
	}
}

func TestImportTeamsAndMembers(t *testing.T) {
	src, err := os.ReadFile("../policy/testdata/restaurant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			ctx := context.Background()
			org := newOrg(t, db, "mem")
			other := newOrg(t, db, "other")
			// A team of another organisation must not satisfy a reference.
			if err := db.CreateTeam(ctx, &margen.Team{OrgID: other.ID, Slug: "cocina", Name: "Cocina"}, "test"); err != nil {
				t.Fatal(err)
			}
			members := []byte("login;name;role;access;team\n" +
				"ana;Ana;cashier;frontline;salon\n" +
				"bob;Bob;supervisor;supervisor;cocina\n")
			mopt := importer.Options{Kind: margen.ImportMembers, Org: org, Actor: "cli", ActorAccess: margen.AccessManager}
			if _, err := importer.Run(ctx, db, members, mopt); !margen.IsCode(err, margen.EINVALID) {
				t.Fatalf("members before a policy: %v, want a refusal", err)
			}
			for _, o := range []*margen.Org{org, other} {
				if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: o.ID, Source: string(src), CreatedBy: "test"}, nil); err != nil {
					t.Fatal(err)
				}
			}
			topt := importer.Options{Kind: margen.ImportTeams, Org: org, Actor: "cli", ActorAccess: margen.AccessManager}
			rep, err := importer.Run(ctx, db, []byte("slug,nombre\nsalon,Salón\n"), topt)
			if err != nil || rep.New != 1 {
				t.Fatalf("teams: %s, %v", counts(rep), err)
			}
			// cocina exists only in the other organisation: line 3 is bad.
			rep, err = importer.Run(ctx, db, members, mopt)
			if !margen.IsCode(err, margen.EINVALID) || rep.Bad != 1 || rep.Errors[0].Line != 3 || rep.Errors[0].Field != "team" {
				t.Fatalf("members: %s %+v, %v", counts(rep), rep.Errors, err)
			}
			if _, err := db.MemberByLogin(ctx, org.ID, "ana"); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("a refused file created ana: %v", err)
			}
			rep, err = importer.Run(ctx, db, []byte("slug,nombre\nsalon,Salón\ncocina,Cocina\n"), topt)
			if err != nil || rep.New != 1 || rep.Unchanged != 1 {
				t.Fatalf("teams again: %s, %v", counts(rep), err)
			}
			rep, err = importer.Run(ctx, db, members, mopt)
			if err != nil || rep.New != 2 {
				t.Fatalf("members: %s %+v, %v", counts(rep), rep.Errors, err)
			}
			bob, err := db.MemberByLogin(ctx, org.ID, "bob")
			if err != nil || bob.Team != "cocina" || bob.Access != margen.AccessSupervisor || bob.Role != "supervisor" || !bob.Active || bob.Language != "es" {
				t.Fatalf("bob = %+v, %v", bob, err)
			}
			// A manager may not touch the owner, nor make anyone an owner.
			rep, err = importer.Run(ctx, db, []byte("login,name,role,access\nowner,Owner,manager,manager\ncid,Cid,cashier,owner\n"), mopt)
			if !margen.IsCode(err, margen.EINVALID) || !slices.Equal(errorLines(rep), []int{2, 3}) {
				t.Fatalf("escalation: %s %+v, %v", counts(rep), rep.Errors, err)
			}
			// Deactivate bob, leave ana; run twice.
			change := []byte("login,name,role,active\nana,Ana,cashier,sí\nbob,Bob,supervisor,no\n")
			rep, err = importer.Run(ctx, db, change, mopt)
			if err != nil || rep.Updated != 1 || rep.Unchanged != 1 {
				t.Fatalf("update: %s, %v", counts(rep), err)
			}
			if bob, _ := db.MemberByLogin(ctx, org.ID, "bob"); bob.Active || bob.ID == "" || bob.Team != "cocina" {
				t.Errorf("bob after update = %+v", bob)
			}
			// Empty access, language and active cells leave bob as he is.
			rep, err = importer.Run(ctx, db, []byte("login,name,role,access,language,active\nbob,Bob,supervisor,,,\n"), mopt)
			if err != nil || rep.Unchanged != 1 {
				t.Errorf("empty cells: %s %+v, %v", counts(rep), rep.Errors, err)
			}
			seq := lastSeq(t, db, org.ID)
			rep, err = importer.Run(ctx, db, change, mopt)
			if err != nil || rep.Unchanged != 2 || rep.Applied || lastSeq(t, db, org.ID) != seq {
				t.Errorf("second run: %s, %v", counts(rep), err)
			}
			if _, err := db.MemberByLogin(ctx, other.ID, "bob"); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Errorf("bob leaked into the other organisation: %v", err)
			}
		})
	}
}

// The example files of docs/examples import cleanly into an organisation
// with the restaurant policy of policy/testdata, in the documented order.
func TestDocumentedExamplesImport(t *testing.T) {
	src, err := os.ReadFile("../policy/testdata/restaurant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			ctx := context.Background()
			org := newOrg(t, db, "docs")
			if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: string(src), CreatedBy: "test"}, nil); err != nil {
				t.Fatal(err)
			}
			for _, k := range []struct {
				kind string
				new  int
			}{{margen.ImportTeams, 2}, {margen.ImportMembers, 4}, {margen.ImportCustomers, 3}} {
				data, err := os.ReadFile("../docs/examples/" + k.kind + ".csv")
				if err != nil {
					t.Fatal(err)
				}
				rep, err := importer.Run(ctx, db, data, importer.Options{Kind: k.kind, Org: org, Actor: "cli", ActorAccess: margen.AccessOwner})
				if err != nil || rep.New != k.new || rep.Bad != 0 {
					t.Errorf("%s: %s %+v, %v", k.kind, counts(rep), rep, err)
				}
			}
			luis, err := db.MemberByLogin(ctx, org.ID, "luis")
			if err != nil || luis.Active || luis.Team != "salon" || luis.Language != "es" {
				t.Errorf("luis = %+v, %v", luis, err)
			}
		})
	}
}
