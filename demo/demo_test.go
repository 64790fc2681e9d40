package demo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/demo"
	"github.com/margenhq/margen/policy"
	"github.com/margenhq/margen/store"
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

	checkSurveys(t, st, org, res)

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

	checkErased(t, st, org, res)

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

// checkSurveys checks the customer's voice in the history: standing QR
// codes, answers through links (on acts) and through the codes, low answers
// with a comment, and satisfaction (4 or 5 of 5) rising from the first 30
// days to the last 30.
func checkSurveys(t *testing.T, st margen.Store, org *margen.Org, res demo.Result) {
	t.Helper()
	ctx := context.Background()
	ss := st.(margen.SurveyStore)
	points, err := ss.ListSurveyPoints(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != res.SurveyPoints || len(points) < 2 {
		t.Errorf("%d standing QR codes, Load reported %d", len(points), res.SurveyPoints)
	}
	var all []margen.SurveyAnswer
	f := margen.SurveyAnswerFilter{Page: margen.Page{Limit: 500}}
	for {
		as, err := ss.ListSurveyAnswers(ctx, org.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, as...)
		if len(as) < f.Limit {
			break
		}
		f.After = as[len(as)-1].ID
	}
	if len(all) != res.SurveyAnswers {
		t.Errorf("store has %d survey answers, Load reported %d", len(all), res.SurveyAnswers)
	}
	var byLink, onAct, byPoint, lowWithComment int
	var sat, n [2]int // first and last 30 days
	for _, a := range all {
		switch {
		case a.LinkID != "":
			byLink++
			if a.ActID != "" {
				onAct++
			}
		case a.PointID != "":
			byPoint++
		}
		if a.Low && a.Comment != "" {
			lowWithComment++
		}
		if a.Scale != margen.ScaleCSAT || a.Score < 1 || a.Score > 5 || a.Language != "es" {
			t.Errorf("answer %+v", a)
		}
		i := -1
		switch {
		case a.CreatedAt.Before(res.From.AddDate(0, 0, 30)):
			i = 0
		case !a.CreatedAt.Before(res.To.AddDate(0, 0, -30)):
			i = 1
		}
		if i >= 0 {
			n[i]++
			if a.Score >= 4 {
				sat[i]++
			}
		}
	}
	t.Logf("survey: %d links made, %d answers (%d by link, %d by standing QR), %d low with a comment; satisfied %d/%d first 30 days, %d/%d last 30",
		res.SurveyLinks, len(all), byLink, byPoint, lowWithComment, sat[0], n[0], sat[1], n[1])
	if byLink < 50 || onAct != byLink || byPoint < 50 || lowWithComment < 10 {
		t.Errorf("survey answers: %d by link (%d on an act), %d by standing QR, %d low with a comment", byLink, onAct, byPoint, lowWithComment)
	}
	if res.SurveyLinks <= byLink {
		t.Errorf("%d links for %d answers: some customers never answer", res.SurveyLinks, byLink)
	}
	if n[0] == 0 || n[1] == 0 || sat[0]*n[1] >= sat[1]*n[0] {
		t.Errorf("satisfied: %d/%d in the first 30 days, %d/%d in the last 30: the trend must rise", sat[0], n[0], sat[1], n[1])
	}
}

// checkErased: the customer who asked to be forgotten reads as erased, has
// acts that still count, and no reason of theirs survives; the trail,
// rows included, still verifies.
func checkErased(t *testing.T, st *store.DB, org *margen.Org, res demo.Result) {
	t.Helper()
	ctx := context.Background()
	c, err := st.CustomerByID(ctx, org.ID, res.Erased)
	if err != nil || !c.Erased() || c.Name != "" || c.Contact != "" {
		t.Fatalf("erased customer %s: %+v (%v)", res.Erased, c, err)
	}
	acts, err := st.ListActs(ctx, org.ID, margen.ActFilter{CustomerID: c.ID})
	if err != nil || len(acts) == 0 {
		t.Fatalf("the erased customer has %d acts (%v): the demo should erase one with a history", len(acts), err)
	}
	for _, a := range acts {
		if a.Reason != "" || a.Amount == 0 && a.Action == "" {
			t.Errorf("erased customer's act %+v", a)
		}
	}
	rep, err := st.CheckAudit(ctx, org.ID)
	if err != nil || rep.Broken != 0 || rep.ProblemCount != 0 || rep.Rows == 0 {
		t.Errorf("audit check after the erasure: %+v (%v)", rep, err)
	}
}
