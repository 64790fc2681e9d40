package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

const activityPolicy = `
currency: EUR
actions:
  - id: gift
    label: {es: "Cortesía", en: "Gift"}
  - id: fix
    label: {es: "Arreglo", en: "Fix"}
roles:
  - id: staff
    label: {es: "Personal", en: "Staff"}
  - id: owner
    label: {es: "Dueña", en: "Owner"}
    inherits: [staff]
grants:
  - id: small
    role: staff
    actions: [gift]
    max_amount: 100
    above: {approver: owner, sla: 10m, on_timeout: deny}
  - id: fixes
    role: staff
    actions: [fix]
    max_amount: 50
    hard: false
`

// TestActivity: the acts and refusals merged newest first, then by id,
// with the acts' reactions and the rows' customers; paged by the last row
// shown, no row is skipped or repeated, even among rows of the same
// microsecond, acts and refusals mixed; every filter narrows both kinds;
// another organisation's rows never show.
func TestActivity(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			clock := testsupport.NewClock(time.Time{}, 0)
			eng := decision.New(db, decision.Options{Clock: clock})
			defer eng.Close()
			type orgData struct {
				org   *margen.Org
				staff map[string]*margen.Member
			}
			newOrg := func(slug string) orgData {
				org := &margen.Org{ID: margen.NewID("org"), Slug: slug, Name: slug, Currency: "EUR", Timezone: "UTC", Language: "es"}
				boss := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
					Access: margen.AccessOwner, Role: "owner", Active: true}
				if err := db.CreateOrg(ctx, org, boss, "test"); err != nil {
					t.Fatal(err)
				}
				d := orgData{org, map[string]*margen.Member{}}
				for _, login := range []string{"ana", "bob"} {
					m := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: login, Name: login,
						Access: margen.AccessFrontline, Role: "staff", Active: true}
					if err := db.CreateMember(ctx, m, "test"); err != nil {
						t.Fatal(err)
					}
					d.staff[login] = m
				}
				if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: activityPolicy, CreatedBy: "test"}, nil); err != nil {
					t.Fatal(err)
				}
				return d
			}
			one, two := newOrg("one"), newOrg("two")
			decide := func(o orgData, login, action, ref string, amount int64) *margen.Decision {
				res, err := eng.Decide(ctx, &decision.Request{Org: o.org, Member: o.staff[login], Action: action, Amount: amount,
					Customer: decision.CustomerInput{Ref: ref, Name: strings.ToUpper(ref)}})
				if err != nil {
					t.Fatal(err)
				}
				if res.Decision.ActID == "" {
					t.Fatalf("%s %s %d: no act (%s)", login, action, amount, res.Decision.Outcome)
				}
				return res.Decision
			}
			refuse := func(o orgData, login, action, ref string, at time.Time) {
				r := &margen.Refusal{OrgID: o.org.ID, MemberID: o.staff[login].ID, Action: action, Wanted: "more " + action,
					ReasonKind: margen.RefusalNoRule, Left: margen.LeftUnhappy, CreatedAt: at}
				var c *margen.Customer
				if ref != "" {
					r.CustomerID = margen.CustomerID(o.org.ID, ref)
					c = &margen.Customer{OrgID: o.org.ID, Ref: ref, Name: strings.ToUpper(ref)}
				}
				if err := db.RecordRefusal(ctx, r, c, nil); err != nil {
					t.Fatal(err)
				}
			}
			base := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
			// Three instants; the middle one holds acts and refusals of
			// both members at the same microsecond.
			for i, at := range []time.Time{base, base.Add(time.Hour), base.Add(2 * time.Hour)} {
				clock.Set(at)
				n := 1
				if i == 1 {
					n = 3
				}
				for range n {
					for _, o := range []orgData{one, two} {
						decide(o, "ana", "gift", "c1", 10)
						decide(o, "bob", "fix", "c2", 80) // over the soft max: flagged
						refuse(o, "ana", "gift", "c2", at)
						refuse(o, "bob", "fix", "", at)
					}
				}
			}
			// Two reactions on one act, one on another.
			acts, err := db.ListActs(ctx, one.org.ID, margen.ActFilter{Page: margen.Page{Limit: 100}})
			if err != nil {
				t.Fatal(err)
			}
			reacted := map[string]int{acts[0].ID: 2, acts[3].ID: 1}
			for id, n := range reacted {
				for i := range n {
					r := &margen.Reaction{OrgID: one.org.ID, ActID: id, Source: []string{margen.SourceEmployee, margen.SourceCustomer}[i],
						Sentiment: []string{margen.ReactionPositive, margen.ReactionNegative}[i]}
					if err := db.RecordReaction(ctx, r, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			refs, err := db.ListRefusals(ctx, one.org.ID, margen.RefusalFilter{Page: margen.Page{Limit: 100}})
			if err != nil {
				t.Fatal(err)
			}
			if len(acts) != 10 || len(refs) != 10 {
				t.Fatalf("%d acts and %d refusals, want 10 and 10", len(acts), len(refs))
			}
			// What each filter should list, in the activity's order.
			type row struct {
				at                     time.Time
				id, member, action, cu string
				flagged, refusal       bool
			}
			var all []row
			for _, a := range acts {
				all = append(all, row{a.CreatedAt, a.ID, a.MemberID, a.Action, a.CustomerID, a.Flagged, false})
			}
			for _, r := range refs {
				all = append(all, row{r.CreatedAt, r.ID, r.MemberID, r.Action, r.CustomerID, false, true})
			}
			slices.SortFunc(all, func(a, b row) int {
				if c := b.at.Compare(a.at); c != 0 {
					return c
				}
				return strings.Compare(b.id, a.id)
			})
			ana := one.staff["ana"].ID
			for _, tc := range []struct {
				name string
				f    margen.ActivityFilter
				keep func(row) bool
			}{
				{"all", margen.ActivityFilter{}, func(row) bool { return true }},
				{"acts", margen.ActivityFilter{Kind: margen.ActivityAct}, func(r row) bool { return !r.refusal }},
				{"refusals", margen.ActivityFilter{Kind: margen.ActivityRefusal}, func(r row) bool { return r.refusal }},
				{"flagged", margen.ActivityFilter{Flagged: true}, func(r row) bool { return r.flagged }},
				{"ana", margen.ActivityFilter{MemberID: ana}, func(r row) bool { return r.member == ana }},
				{"fix", margen.ActivityFilter{Action: "fix"}, func(r row) bool { return r.action == "fix" }},
				{"ana's refusals of gifts", margen.ActivityFilter{Kind: margen.ActivityRefusal, MemberID: ana, Action: "gift"},
					func(r row) bool { return r.refusal && r.member == ana && r.action == "gift" }},
				{"the middle hour", margen.ActivityFilter{Since: base.Add(time.Hour), Until: base.Add(2 * time.Hour)},
					func(r row) bool { return r.at.Equal(base.Add(time.Hour)) }},
			} {
				var want []string
				for _, r := range all {
					if tc.keep(r) {
						want = append(want, r.id)
					}
				}
				if len(want) == 0 {
					t.Fatalf("%s: the test lists nothing", tc.name)
				}
				for _, limit := range []int{1, 2, 3, 50} {
					f := tc.f
					f.Limit = limit
					var got []string
					for pages := 0; ; pages++ {
						if pages > len(want)+1 {
							t.Fatalf("%s, by %d: does not end", tc.name, limit)
						}
						items, err := db.Activity(ctx, one.org.ID, f)
						if err != nil {
							t.Fatal(err)
						}
						if len(items) > limit {
							t.Fatalf("%s, by %d: a page of %d", tc.name, limit, len(items))
						}
						for _, x := range items {
							got = append(got, checkItem(t, one.org.ID, x, reacted))
						}
						if len(items) < limit {
							break
						}
						f.Before = items[len(items)-1].Cursor()
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s, by %d:\n got %v\nwant %v", tc.name, limit, got, want)
					}
				}
			}
			// The other organisation's rows, by its own cursor: none.
			other, err := db.Activity(ctx, two.org.ID, margen.ActivityFilter{Limit: 1})
			if err != nil || len(other) != 1 {
				t.Fatalf("the other organisation: %v, %v", other, err)
			}
			items, err := db.Activity(ctx, one.org.ID, margen.ActivityFilter{Before: other[0].Cursor(), Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range items {
				if x.Cursor().ID == other[0].Cursor().ID {
					t.Errorf("another organisation's row: %+v", x)
				}
			}
		})
	}
}

// checkItem checks that an activity item is whole (an act with its
// reactions, or a refusal, and its customer) and returns its id.
func checkItem(t *testing.T, orgID string, x margen.ActivityItem, reacted map[string]int) string {
	t.Helper()
	var id, cu string
	switch {
	case x.Act != nil && x.Refusal == nil:
		id, cu = x.Act.ID, x.Act.CustomerID
		if x.Act.OrgID != orgID || x.Act.DecisionID == "" || x.Act.Currency != "EUR" || x.Act.Amount == 0 {
			t.Errorf("act %+v is not whole", x.Act)
		}
		if len(x.Act.Reactions) != reacted[id] {
			t.Errorf("act %s: %d reactions, want %d", id, len(x.Act.Reactions), reacted[id])
		}
		for i, r := range x.Act.Reactions {
			if r.ActID != id || r.OrgID != orgID || r.Sentiment == "" || i > 0 && r.ID <= x.Act.Reactions[i-1].ID {
				t.Errorf("act %s: reaction %+v", id, r)
			}
		}
	case x.Refusal != nil && x.Act == nil:
		id, cu = x.Refusal.ID, x.Refusal.CustomerID
		if x.Refusal.OrgID != orgID || x.Refusal.Wanted == "" || x.Refusal.ReasonKind == "" || x.Refusal.Left == "" {
			t.Errorf("refusal %+v is not whole", x.Refusal)
		}
	default:
		t.Fatalf("item %+v is neither an act nor a refusal", x)
	}
	switch {
	case cu == "" && x.Customer != nil:
		t.Errorf("%s: a customer %+v without one", id, x.Customer)
	case cu != "" && (x.Customer == nil || x.Customer.ID != cu || x.Customer.Name == "" || x.Customer.Ref == ""):
		t.Errorf("%s: customer %+v, want %s", id, x.Customer, cu)
	}
	return id
}
