package demo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/demo"
	"github.com/margenhq/margen/policy"
	"github.com/margenhq/margen/store/storetest"
)

func TestPolicyParses(t *testing.T) {
	p, err := policy.Parse([]byte(demo.PolicySource()))
	if err != nil {
		t.Fatalf("demo policy: %v", err)
	}
	for _, role := range []string{"owner", "gerente", "supervisor", "mesero", "recepcion", "agente"} {
		if !p.HasRole(role) {
			t.Errorf("role %q missing", role)
		}
	}
}

// countDecisions pages through every decision of an organisation.
func countDecisions(t *testing.T, st margen.Store, orgID string) (n int, byOutcome map[string]int, reasons []string) {
	t.Helper()
	byOutcome = map[string]int{}
	f := margen.DecisionFilter{Page: margen.Page{Limit: 500}}
	for {
		ds, err := st.ListDecisions(context.Background(), orgID, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			byOutcome[d.Outcome]++
			reasons = append(reasons, d.Reason)
		}
		n += len(ds)
		if len(ds) < f.Limit {
			return n, byOutcome, reasons
		}
		f.After = ds[len(ds)-1].ID
	}
}

func countRefusals(t *testing.T, st margen.Store, orgID string) int {
	t.Helper()
	n := 0
	f := margen.RefusalFilter{Page: margen.Page{Limit: 500}}
	for {
		rs, err := st.ListRefusals(context.Background(), orgID, f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(rs)
		if len(rs) < f.Limit {
			return n
		}
		f.After = rs[len(rs)-1].ID
	}
}

func TestLoad(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	now := time.Date(2026, 11, 25, 16, 30, 0, 0, time.UTC)

	start := time.Now()
	res, err := demo.Load(ctx, st, demo.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded in %v: %+v", time.Since(start), res)
	if res.AlreadyLoaded || res.Org == nil || res.AdminPassword == "" {
		t.Fatalf("first load: %+v", res)
	}

	inRange := func(name string, got, lo, hi int) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s = %d, want between %d and %d", name, got, lo, hi)
		}
	}
	inRange("decisions", res.Decisions, 1500, 4000)
	inRange("allowed", res.Allowed*100/res.Decisions, 65, 92)         // percent
	inRange("to approve", res.NeedsApproval*100/res.Decisions, 2, 15) // percent
	inRange("denied", res.Denied*100/res.Decisions, 3, 20)            // percent
	inRange("reactions", res.Reactions, res.Allowed*3/4, res.Allowed*3/2)
	inRange("refusals", res.Refusals, 20, 250)
	inRange("customers", res.Customers, 60, 2000)

	org, err := st.OrgBySlug(ctx, demo.Slug)
	if err != nil {
		t.Fatal(err)
	}
	if org.Currency != "COP" || org.Timezone != "America/Bogota" || org.Language != "es" {
		t.Errorf("org = %+v", org)
	}
	members, err := st.ListMembers(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	inRange("members", len(members), 10, 14)
	teams, err := st.ListTeams(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	inRange("teams", len(teams), 2, 2)

	n, byOutcome, reasons := countDecisions(t, st, org.ID)
	if n != res.Decisions {
		t.Errorf("store has %d decisions, Load reported %d", n, res.Decisions)
	}
	if byOutcome[margen.OutcomeAllowed] != res.Allowed || byOutcome[margen.OutcomeDenied] != res.Denied {
		t.Errorf("outcomes in store %v, reported %+v", byOutcome, res)
	}
	for _, story := range []string{"Segunda canasta de pan para mesa de 6", "cajero de empleados", "sugerencia"} {
		found := false
		for _, r := range reasons {
			if strings.Contains(r, story) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no decision tells the story %q", story)
		}
	}
	refusals := countRefusals(t, st, org.ID)
	if refusals != res.Denied+res.Refusals {
		t.Errorf("store has %d refusals, want %d denied + %d others", refusals, res.Denied, res.Refusals)
	}

	rep, err := st.CheckLedger(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Entries == 0 {
		t.Errorf("ledger: %+v", rep)
	}
	broken, checked, err := st.VerifyAudit(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if broken != 0 || checked == 0 {
		t.Errorf("audit: broken at %d, %d checked", broken, checked)
	}

	// A second load writes nothing.
	res2, err := demo.Load(ctx, st, demo.Options{Now: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !res2.AlreadyLoaded || res2.AdminPassword != "" || res2.Org == nil || res2.Org.ID != org.ID {
		t.Errorf("second load: %+v", res2)
	}
	if n2, _, _ := countDecisions(t, st, org.ID); n2 != n {
		t.Errorf("second load: %d decisions, want %d", n2, n)
	}
	_, checked2, err := st.VerifyAudit(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if checked2 != checked {
		t.Errorf("second load wrote %d audit entries", checked2-checked)
	}
}
