package export_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// seedBase is the creation time of the first seeded decision; decision i
// is created i seconds later.
var seedBase = time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC) // midnight in Bogotá

// hostile are text values a spreadsheet would run as formulas if they
// were written as they are.
var hostile = []string{"=HYPERLINK(\"http://evil.example/\",\"clic\")", "+57 300 123 4567", "-2+3", "@SUM(A1:A9)",
	"\tcmd", "\rcmd", "normal reason"}

// seedDecisions inserts n synthetic decisions of org straight with SQL
// (one INSERT ... SELECT over a generated series: a million rows take
// seconds, not the engine's hours), for export tests and benchmarks. Every
// decision names member m and customer c; its reason and rule cycle
// through hostile values and every 11th amount is negative.
func seedDecisions(tb testing.TB, db *store.DB, orgID, memberID, customerID string, n int) {
	tb.Helper()
	var q string
	reason := "CASE i % 7"
	for k, h := range hostile {
		reason += " WHEN " + strconv.Itoa(k) + " THEN " + quote(h)
	}
	reason += " END"
	if db.Engine() == store.EnginePostgres {
		q = `INSERT INTO decisions (org_id, id, member_id, customer_id, action, amount, currency, reason, outcome,
			policy_version, rule, explanation_code, flagged, budgets, created_at)
		SELECT $1, $5 || lpad(i::text, 12, '0'), $2, $3, 'cortesia',
			CASE WHEN i % 11 = 0 THEN -500 ELSE i % 100000 END, 'COP', ` + reason + `,
			'allowed', 1, ` + reason + `, 'allowed', i % 13 = 0, '[]',
			$6::timestamptz + i * interval '1 second'
		FROM generate_series(0, $4::bigint - 1) AS s(i)`
		if _, err := db.SQL().Exec(q, orgID, memberID, customerID, n, "dec_"+orgID[4:12]+"_", seedBase); err != nil {
			tb.Fatal(err)
		}
		return
	}
	q = `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1)
		INSERT INTO decisions (org_id, id, member_id, customer_id, action, amount, currency, reason, outcome,
			policy_version, rule, explanation_code, flagged, budgets, created_at)
		SELECT ?, ? || printf('%012d', i), ?, ?, 'cortesia',
			CASE WHEN i % 11 = 0 THEN -500 ELSE i % 100000 END, 'COP', ` + reason + `,
			'allowed', 1, ` + reason + `, 'allowed', i % 13 = 0, '[]', ? + i * 1000000
		FROM s`
	if _, err := db.SQL().Exec(q, n, orgID, "dec_"+orgID[4:12]+"_", memberID, customerID, seedBase.UnixMicro()); err != nil {
		tb.Fatal(err)
	}
}

func quote(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += "''"
		} else {
			out += string(r)
		}
	}
	return out + "'"
}

// seedOrg creates an organisation with a member and a customer whose login
// and reference are themselves hostile.
func seedOrg(tb testing.TB, db *store.DB, slug string) (*margen.Org, *margen.Member, *margen.Customer) {
	tb.Helper()
	ctx := context.Background()
	org := &margen.Org{Slug: slug, Name: slug, Currency: "COP", Timezone: "America/Bogota", Language: "es"}
	owner := &margen.Member{Login: "@owner", Name: "Owner", Role: "gerente", Active: true}
	if err := db.CreateOrg(ctx, org, owner, "test"); err != nil {
		tb.Fatal(err)
	}
	c := &margen.Customer{OrgID: org.ID, Ref: "=cmd|' /C calc'!A0", Name: "-Eve"}
	if err := db.UpsertCustomer(ctx, c, "test"); err != nil {
		tb.Fatal(err)
	}
	return org, owner, c
}

// TestSeedBenchmarkDatabase fills the database named by
// MARGEN_EXPORT_SEED_DB with MARGEN_EXPORT_SEED_N decisions (default one
// million) of an organisation with slug "bench", for the memory
// measurement of docs/benchmarks.md. It is skipped otherwise.
func TestSeedBenchmarkDatabase(t *testing.T) {
	dsn := os.Getenv("MARGEN_EXPORT_SEED_DB")
	if dsn == "" {
		t.Skip("MARGEN_EXPORT_SEED_DB not set")
	}
	n := 1_000_000
	if v := os.Getenv("MARGEN_EXPORT_SEED_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	db, err := store.Open(context.Background(), dsn, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	org, m, c := seedOrg(t, db, "bench")
	start := time.Now()
	seedDecisions(t, db, org.ID, m.ID, c.ID, n)
	t.Logf("seeded %d decisions in %s", n, time.Since(start).Round(time.Millisecond))
}
