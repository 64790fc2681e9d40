package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// The customer whose data the privacy test writes everywhere, and erases.
const (
	privName    = "Ximena Quintanilla Orozco"
	privContact = "ximena.q.orozco@example.org"
	privRef     = "ximena-quintanilla"
	privComment = "la sopa de Ximena llegó fría"
)

// TestEraseCustomer: a customer named in every kind of row (decisions, an
// act, a reaction, an approval and its answer, a refusal, a survey answer
// and its case, a stored API answer, an import file) is exported whole, then
// erased: no table or column of the database holds their name, contact,
// reference or comment any more (the audit trail and payloads included),
// every count and sum of amounts and scores is the same, the ledger and the
// audit chain still verify, a second erasure is a no-op, and the old name
// finds nobody. Another customer's rows are left as they were.
func TestEraseCustomer(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.Open(t)
			org := &margen.Org{ID: margen.NewID("org"), Slug: "priv", Name: "Priv", Currency: "EUR", Timezone: "UTC", Language: "es"}
			boss := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
				Access: margen.AccessOwner, Role: "owner", Active: true}
			if err := db.CreateOrg(ctx, org, boss, "test"); err != nil {
				t.Fatal(err)
			}
			ana := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "ana", Name: "Ana",
				Access: margen.AccessFrontline, Role: "staff", Active: true}
			if err := db.CreateMember(ctx, ana, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: actsPolicy, CreatedBy: "test"}, nil); err != nil {
				t.Fatal(err)
			}
			cus := &margen.Customer{OrgID: org.ID, Ref: privRef, Name: privName, Contact: privContact, Tags: []string{"celiaca"}}
			if err := db.UpsertCustomer(ctx, cus, boss.ID); err != nil {
				t.Fatal(err)
			}
			eng := decision.New(db, decision.Options{})
			defer eng.Close()
			decide := func(ref string, amount int64, reason string) *margen.Decision {
				res, err := eng.Decide(ctx, &decision.Request{Org: org, Member: ana, Action: "gift", Amount: amount,
					Reason: reason, Customer: decision.CustomerInput{Ref: ref}})
				if err != nil {
					t.Fatal(err)
				}
				return res.Decision
			}
			allowed := decide(privRef, 40, "postre para "+privName)
			decide("otro", 30, "postre para Bruno Other") // another customer: untouched
			over := decide(privRef, 500, "cena de "+privName+" ("+privContact+")")
			if allowed.ActID == "" || over.ApprovalID == "" {
				t.Fatalf("decisions %+v %+v: want an act and an approval", allowed, over)
			}
			now := time.Now().UTC()
			if _, err := storetest.ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: over.ApprovalID,
				Status: margen.ApprovalApproved, Actor: boss.ID, Comment: "sí, es " + privName, At: now,
				ActID: margen.NewID("act")}, nil); err != nil {
				t.Fatal(err)
			}
			// A reaction whose stored API answer (idempotency) quotes it.
			r := &margen.Reaction{OrgID: org.ID, ActID: allowed.ActID, Source: margen.SourceEmployee, Sentiment: "positive",
				Note: privName + " sonrió", MemberID: ana.ID, CreatedAt: now}
			resp, _ := json.Marshal(r)
			idem := &margen.Idempotency{OrgID: org.ID, MemberID: ana.ID, Key: "k-reaction", RequestHash: "h",
				Response: resp, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := db.RecordReaction(ctx, r, idem); err != nil {
				t.Fatal(err)
			}
			if err := db.RecordRefusal(ctx, &margen.Refusal{OrgID: org.ID, MemberID: ana.ID, CustomerID: cus.ID,
				Action: "gift", Amount: 900, Wanted: "una botella para " + privName, ReasonKind: "policy",
				Left: margen.LeftUnknown, Note: "llamar a " + privContact, CreatedAt: now}, nil, nil); err != nil {
				t.Fatal(err)
			}
			// A survey link made for the customer, answered low with a
			// comment: it opens a case, closed with what was done.
			tokens := margen.NewSurveyTokens([]byte("test key"))
			_, hash := tokens.New()
			link := &margen.SurveyLink{OrgID: org.ID, TokenHash: hash, ActID: allowed.ActID, MemberID: ana.ID,
				CustomerID: cus.ID, CreatedBy: ana.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			// Sent by email to the customer's contact (a queued send).
			if err := db.CreateSurveyLinkEmail(ctx, link, &margen.SurveyEmail{Address: privContact, Language: "es",
				Token: "tok-" + privRef}, ana.ID, nil); err != nil {
				t.Fatal(err)
			}
			ans, err := margen.NewSurveyAnswer(margen.ScaleCSAT, 1, privComment, "es")
			if err != nil {
				t.Fatal(err)
			}
			ans.OrgID, ans.LinkID, ans.ActID, ans.MemberID, ans.CustomerID, ans.CreatedAt = org.ID, link.ID, allowed.ActID, ana.ID, cus.ID, now
			if _, err := db.AnswerSurvey(ctx, &ans, margen.SurveyLimits{Cases: margen.CaseRule{SLA: time.Hour}}); err != nil {
				t.Fatal(err)
			}
			cases, err := db.ListCases(ctx, org.ID, margen.CaseFilter{})
			if err != nil || len(cases) != 1 {
				t.Fatalf("%d cases (%v), want 1", len(cases), err)
			}
			if _, err := db.CloseCase(ctx, org.ID, cases[0].ID, margen.CaseClose{Action: "llamé a " + privName,
				Outcome: "resolved", Reaction: "positive"}, boss.ID, now); err != nil {
				t.Fatal(err)
			}
			// An import file that lists the customer.
			up := &margen.Upload{ID: margen.NewID("upl"), OrgID: org.ID, MemberID: boss.ID, Kind: margen.ImportCustomers,
				FileName: "clientes.csv", Data: []byte("ref,name,contact\n" + privRef + "," + privName + "," + privContact + "\n")}
			if err := db.CreateUpload(ctx, up, &margen.Job{ID: margen.NewID("job"), Kind: "test.none", OrgID: org.ID,
				Payload: json.RawMessage(`{}`), RunAt: now.Add(24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}

			secrets := []string{privName, privContact, privRef, privComment, "celiaca"}
			if found := findText(t, db, secrets...); len(found) == 0 {
				t.Fatal("the setup wrote the customer nowhere: the scan cannot fail")
			}
			before := totals(t, db, org.ID)

			// The export has every section with the customer's rows.
			var buf bytes.Buffer
			ex := margen.NewPersonalExport(&buf, now)
			if err := db.ExportCustomer(ctx, org.ID, cus.ID, ex.Add); err != nil {
				t.Fatal(err)
			}
			if err := ex.Close(); err != nil {
				t.Fatal(err)
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("export is not JSON: %v\n%s", err, buf.String())
			}
			for section, want := range map[string]int{"decisions": 2, "acts": 2, "reactions": 1, "refusals": 1,
				"approvals": 1, "approval_events": 1, "survey_links": 1, "survey_answers": 1, "survey_cases": 1} {
				var rows []json.RawMessage
				if err := json.Unmarshal(doc[section], &rows); err != nil || len(rows) != want {
					t.Errorf("export %s: %d rows (%v), want %d", section, len(rows), err, want)
				}
			}
			if !strings.Contains(string(doc["customer"]), privContact) || strings.Contains(buf.String(), "Bruno Other") {
				t.Errorf("export names the wrong people: %s", buf.String())
			}
			if err := db.ExportCustomer(ctx, org.ID, margen.CustomerID(org.ID, "nobody"), ex.Add); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Errorf("export of an unknown customer: %v, want not found", err)
			}

			res, err := db.EraseCustomer(ctx, org.ID, cus.ID, boss.ID, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Erased || res.Rows["decisions"] != 2 || res.Rows["survey_answers"] != 1 || res.Rows["idempotency"] != 1 || res.Rows["uploads"] != 1 || res.Rows["survey_emails"] != 1 {
				t.Errorf("erasure %+v", res)
			}
			if found := findText(t, db, secrets...); len(found) > 0 {
				t.Errorf("personal data left after the erasure:\n%s", strings.Join(found, "\n"))
			}
			if found := findText(t, db, "Bruno Other"); len(found) == 0 {
				t.Error("the other customer's decision lost its reason")
			}
			if after := totals(t, db, org.ID); after != before {
				t.Errorf("totals changed: %v, want %v", after, before)
			}
			checkTrail(t, db, org.ID)
			again, err := db.EraseCustomer(ctx, org.ID, cus.ID, boss.ID, now, nil)
			if err != nil || again.Erased {
				t.Errorf("second erasure: %+v, %v: want a no-op", again, err)
			}
			got, err := db.CustomerByID(ctx, org.ID, cus.ID)
			if err != nil || !got.Erased() || got.Name != "" || got.Contact != "" {
				t.Errorf("erased customer reads %+v (%v)", got, err)
			}
			for _, q := range []string{"Ximena", privRef, "cus_"} {
				if found, err := db.SearchCustomers(ctx, org.ID, q, 10); err != nil || len(found) != 0 {
					t.Errorf("search %q finds %+v (%v) after the erasure", q, found, err)
				}
			}
			// The old reference cannot name someone new (the id is derived
			// from it); a decision naming it counts for the erased record
			// and stores no name.
			if err := db.UpsertCustomer(ctx, &margen.Customer{OrgID: org.ID, Ref: privRef, Name: privName}, boss.ID); !margen.IsCode(err, margen.ECONFLICT) {
				t.Errorf("upsert of the old reference: %v, want conflict", err)
			}
			if d := decide(privRef, 10, ""); d.CustomerID != cus.ID {
				t.Errorf("a decision naming the old reference went to %s, want %s", d.CustomerID, cus.ID)
			}
			if found := findText(t, db, secrets...); len(found) > 0 {
				t.Errorf("personal data after a new decision:\n%s", strings.Join(found, "\n"))
			}
			checkTrail(t, db, org.ID)
			if _, err := db.EraseCustomer(ctx, org.ID, margen.CustomerID(org.ID, "nobody"), boss.ID, now, nil); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Errorf("erasing an unknown customer: %v, want not found", err)
			}
		})
	}
}

// checkTrail fails unless the ledger and the audit chain verify, row seals
// included (what `margen ledger check` runs).
func checkTrail(t *testing.T, db *store.DB, orgID string) {
	t.Helper()
	ctx := context.Background()
	lr, err := db.CheckLedger(ctx, orgID)
	if err != nil || lr.MismatchCount != 0 {
		t.Errorf("ledger check: %+v, %v", lr, err)
	}
	ar, err := db.CheckAudit(ctx, orgID)
	if err != nil || ar.Broken != 0 || ar.ProblemCount != 0 || ar.SealedFrom == 0 {
		t.Errorf("audit check: %+v, %v", ar, err)
	}
}

type sums struct {
	decisions, acts, refusals, answers, cases, reactions, approvals int64
	decided, acted, refused, scored                                 int64
}

// totals are the counts and sums statistics read.
func totals(t *testing.T, db *store.DB, orgID string) sums {
	t.Helper()
	var s sums
	for _, q := range []struct {
		query string
		dst   []any
	}{
		{"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM decisions WHERE org_id = ?", []any{&s.decisions, &s.decided}},
		{"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM acts WHERE org_id = ?", []any{&s.acts, &s.acted}},
		{"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM refusals WHERE org_id = ?", []any{&s.refusals, &s.refused}},
		{"SELECT COUNT(*), COALESCE(SUM(score), 0) FROM survey_answers WHERE org_id = ?", []any{&s.answers, &s.scored}},
		{"SELECT COUNT(*) FROM survey_cases WHERE org_id = ?", []any{&s.cases}},
		{"SELECT COUNT(*) FROM reactions WHERE org_id = ?", []any{&s.reactions}},
		{"SELECT COUNT(*) FROM approvals WHERE org_id = ?", []any{&s.approvals}},
	} {
		if err := db.SQL().QueryRow(db.Rebind(q.query), orgID).Scan(q.dst...); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// findText scans every column of every table of the database, as text, for
// the needles, and names where each one is found.
func findText(t *testing.T, db *store.DB, needles ...string) []string {
	t.Helper()
	cols := tableColumns(t, db)
	var found []string
	for table, names := range cols {
		sel := make([]string, len(names))
		for i, c := range names {
			if db.Engine() == store.EnginePostgres {
				sel[i] = `"` + c + `"::text`
			} else {
				sel[i] = "CAST(" + c + " AS TEXT)"
			}
		}
		rows, err := db.SQL().Query("SELECT " + strings.Join(sel, ", ") + " FROM " + table)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		vals := make([]sql.NullString, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			for i, v := range vals {
				for _, n := range needles {
					if v.Valid && strings.Contains(v.String, n) {
						found = append(found, table+"."+names[i]+" holds "+n+": "+v.String)
					}
				}
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// tableColumns lists every table of the store's schema with its columns.
func tableColumns(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	q := `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`
	if db.Engine() == store.EnginePostgres {
		q = `SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
	}
	rows, err := db.SQL().Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		out[table] = append(out[table], col)
	}
	if len(out) < 20 {
		t.Fatalf("found %d tables: the scan would miss some", len(out))
	}
	return out
}
