package httpapi_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/margenhq/margen"
)

type importReport struct {
	Lines, Bad, New, Updated, Unchanged int
	Applied                             bool
	DryRun                              bool `json:"dry_run"`
	Charset, Separator                  string
	Errors                              []struct {
		Line           int
		Field, Message string
	}
}

func TestImportAPI(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		file := "ref;nombre\nc1;Ana\n;Sin referencia\nc3;Cid\n"
		post := func(login, kind, query, body string, hdr ...string) *response {
			return e.do("POST", "/api/v1/imports/"+kind+query, login, body, append([]string{"Content-Type", "text/csv"}, hdr...)...)
		}
		// Supervisors and frontline staff may not import.
		post("sara", "customers", "", file).want(http.StatusForbidden)
		post("ana", "customers", "", file).want(http.StatusForbidden)
		post("mario", "shoes", "", file).want(http.StatusNotFound)
		if p := post("mario", "customers", "", file, "Content-Type", "application/json").want(http.StatusBadRequest).problem(); p.Key != "error.import_content_type" {
			t.Errorf("content type: %+v", p)
		}
		post("mario", "customers", "?dry_run=perhaps", file).want(http.StatusBadRequest)

		// All or nothing: a 400 listing the bad line, with the report.
		res := post("mario", "customers", "", file, "Accept-Language", "en")
		p := res.want(http.StatusBadRequest).problem()
		if p.Key != "error.import_bad_lines" || len(p.Errors) != 1 || p.Errors[0].Line != 3 || p.Errors[0].Path != "ref" ||
			p.Errors[0].Message != "The field ref is missing." {
			t.Errorf("refused import: %s", res.body)
		}
		var withReport struct{ Report importReport }
		res.decode(&withReport)
		if withReport.Report.New != 2 || withReport.Report.Applied {
			t.Errorf("report of the refused import: %+v", withReport.Report)
		}
		var rep importReport
		post("mario", "customers", "?dry_run=1", file).want(http.StatusOK).decode(&rep)
		if rep.New != 2 || rep.Bad != 1 || rep.Applied || !rep.DryRun || rep.Separator != ";" || rep.Errors[0].Line != 3 {
			t.Errorf("dry run: %+v", rep)
		}
		if _, err := e.db.CustomerByID(ctx, e.orgA.ID, margen.CustomerID(e.orgA.ID, "c1")); !margen.IsCode(err, margen.ENOTFOUND) {
			t.Fatalf("a dry run wrote c1: %v", err)
		}
		post("mario", "customers", "?skip_bad=1", file).want(http.StatusOK).decode(&rep)
		if rep.New != 2 || !rep.Applied {
			t.Errorf("skip bad: %+v", rep)
		}
		post("olga", "customers", "?skip_bad=true", file).want(http.StatusOK).decode(&rep)
		if rep.Unchanged != 2 || rep.Applied {
			t.Errorf("second import: %+v", rep)
		}
		// Tenancy: the same file in the other organisation creates its own.
		post("omar", "customers", "?skip_bad=1", file).want(http.StatusOK).decode(&rep)
		if rep.New != 2 {
			t.Errorf("other organisation: %+v", rep)
		}

		// A manager may not make an owner.
		res = post("mario", "members", "", "login,name,role,access\nnew,New,cashier,owner\n")
		if p := res.want(http.StatusBadRequest).problem(); len(p.Errors) != 1 || p.Errors[0].Path != "access" {
			t.Errorf("escalation: %s", res.body)
		}
		post("mario", "members", "", "login,name,role,access\nnew,New,cashier,supervisor\n").want(http.StatusOK).decode(&rep)
		if m, err := e.db.MemberByLogin(ctx, e.orgA.ID, "new"); err != nil || rep.New != 1 || m.Access != margen.AccessSupervisor {
			t.Errorf("member import: %+v %+v %v", rep, m, err)
		}

		// A header problem is a 400 on the header; an oversized file a 413.
		if p := post("mario", "teams", "", "slug,nombre,color\nx,y,z\n").want(http.StatusBadRequest).problem(); p.Field != "header" {
			t.Errorf("header: %+v", p)
		}
		big := "ref,name\n" + strings.Repeat("c,"+strings.Repeat("x", 100)+"\n", (9<<20)/100)
		post("mario", "customers", "", big).want(http.StatusRequestEntityTooLarge).problem()
	})
}

func TestExportAPI(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		for i, ref := range []string{"=1+1", "mesa-2", "@mesa"} {
			if _, res := e.decide("ana", gift(100000*int64(i+1), ref)); res.status != http.StatusCreated {
				t.Fatalf("decide: %s", res.body)
			}
		}
		e.do("GET", "/api/v1/exports/decisions", "sara", "").want(http.StatusForbidden)
		e.do("GET", "/api/v1/exports/decisions", "ana", "").want(http.StatusForbidden)
		e.do("GET", "/api/v1/exports/shoes", "mario", "").want(http.StatusNotFound)
		e.do("GET", "/api/v1/exports/decisions?format=xlsx", "mario", "").want(http.StatusBadRequest).problem()
		e.do("GET", "/api/v1/exports/decisions?since=yesterday", "mario", "").want(http.StatusBadRequest).problem()

		res := e.do("GET", "/api/v1/exports/decisions?format=csv&since=2020-01-01", "mario", "").want(http.StatusOK)
		if ct, cd := res.header.Get("Content-Type"), res.header.Get("Content-Disposition"); ct != "text/csv; charset=utf-8" ||
			cd != `attachment; filename="la-ceiba-decisions-from-20200101T0000.csv"` {
			t.Errorf("headers %q %q", ct, cd)
		}
		recs, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 || recs[0][5] != "customer_ref" || recs[1][5] != "'=1+1" || recs[3][5] != "'@mesa" || recs[1][3] != "ana" {
			t.Errorf("csv export: %q", recs)
		}
		// The other organisation's owner sees none of these.
		res = e.do("GET", "/api/v1/exports/decisions?format=jsonl", "omar", "").want(http.StatusOK)
		if len(res.body) != 0 {
			t.Errorf("another organisation's export: %s", res.body)
		}
		res = e.do("GET", "/api/v1/exports/audit?format=jsonl", "olga", "").want(http.StatusOK)
		sc := bufio.NewScanner(strings.NewReader(string(res.body)))
		n := 0
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("jsonl line %q: %v", sc.Text(), err)
			}
			n++
		}
		if seq, _ := e.db.LastAuditSeq(context.Background(), e.orgA.ID); int64(n) != seq {
			t.Errorf("%d audit lines, want %d", n, seq)
		}
	})
}
