package store_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/store/storetest"
)

const actsPolicy = `
currency: EUR
actions:
  - id: gift
    label: {es: "Cortesía", en: "Gift"}
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
`

// TestListActsByMemberAndCustomer: acts are filtered by member and customer
// through the decisions that made them, including acts an approval created.
func TestListActsByMemberAndCustomer(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			org := &margen.Org{ID: margen.NewID("org"), Slug: "acts", Name: "Acts", Currency: "EUR", Timezone: "UTC", Language: "es"}
			boss := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
				Access: margen.AccessOwner, Role: "owner", Active: true}
			if err := db.CreateOrg(ctx, org, boss, "test"); err != nil {
				t.Fatal(err)
			}
			staff := map[string]*margen.Member{}
			for _, login := range []string{"ana", "bob"} {
				m := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: login, Name: login,
					Access: margen.AccessFrontline, Role: "staff", Active: true}
				if err := db.CreateMember(ctx, m, "test"); err != nil {
					t.Fatal(err)
				}
				staff[login] = m
			}
			if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: actsPolicy, CreatedBy: "test"}, nil); err != nil {
				t.Fatal(err)
			}
			eng := decision.New(db, decision.Options{})
			defer eng.Close()
			decide := func(login, ref string, amount int64) *margen.Decision {
				res, err := eng.Decide(ctx, &decision.Request{Org: org, Member: staff[login], Action: "gift", Amount: amount,
					Customer: decision.CustomerInput{Ref: ref}})
				if err != nil {
					t.Fatal(err)
				}
				return res.Decision
			}
			decide("ana", "c1", 10)
			decide("ana", "c2", 10)
			decide("bob", "c1", 10)
			over := decide("bob", "c2", 500) // needs approval: its act comes from the answer
			if over.Outcome != margen.OutcomeNeedsApproval {
				t.Fatalf("outcome %s, want needs_approval", over.Outcome)
			}
			if _, err := storetest.ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: over.ApprovalID, Status: margen.ApprovalApproved,
				Actor: boss.ID, At: margen.SystemClock{}.Now(), ActID: margen.NewID("act")}, nil); err != nil {
				t.Fatal(err)
			}
			c1, c2 := margen.CustomerID(org.ID, "c1"), margen.CustomerID(org.ID, "c2")
			for _, tc := range []struct {
				name string
				f    margen.ActFilter
				want int
			}{
				{"all", margen.ActFilter{}, 4},
				{"ana", margen.ActFilter{MemberID: staff["ana"].ID}, 2},
				{"bob, incl. the approved act", margen.ActFilter{MemberID: staff["bob"].ID}, 2},
				{"c1", margen.ActFilter{CustomerID: c1}, 2},
				{"bob for c2", margen.ActFilter{MemberID: staff["bob"].ID, CustomerID: c2}, 1},
				{"boss", margen.ActFilter{MemberID: boss.ID}, 0},
				{"page of one", margen.ActFilter{MemberID: staff["ana"].ID, Page: margen.Page{Limit: 1}}, 1},
			} {
				acts, err := db.ListActs(ctx, org.ID, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if len(acts) != tc.want {
					t.Errorf("%s: %d acts, want %d", tc.name, len(acts), tc.want)
				}
				for _, a := range acts {
					if tc.f.MemberID != "" && a.MemberID != tc.f.MemberID || tc.f.CustomerID != "" && a.CustomerID != tc.f.CustomerID {
						t.Errorf("%s: act %+v does not match the filter", tc.name, a)
					}
				}
			}
			// The inbox's batched form: each customer's newest acts, as
			// ListActs lists them one customer at a time, without their
			// reactions (two on one act, one on another: not read).
			decide("ana", "c1", 10)
			c1acts, err := db.ListActs(ctx, org.ID, margen.ActFilter{CustomerID: c1})
			if err != nil || len(c1acts) < 2 {
				t.Fatalf("c1's acts: %d, %v", len(c1acts), err)
			}
			for i, r := range []struct{ act, source, sentiment string }{
				{c1acts[0].ID, margen.SourceEmployee, margen.ReactionPositive},
				{c1acts[0].ID, margen.SourceCustomer, margen.ReactionNegative},
				{c1acts[1].ID, margen.SourceEmployee, margen.ReactionNeutral},
			} {
				if err := db.RecordReaction(ctx, &margen.Reaction{OrgID: org.ID, ActID: r.act, Source: r.source, Sentiment: r.sentiment,
					Note: fmt.Sprint("note ", i)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range []int{1, 2, 5} {
				recent, err := db.RecentActsByCustomer(ctx, org.ID, []string{c2, c1, c2, margen.CustomerID(org.ID, "nobody")}, n)
				if err != nil {
					t.Fatal(err)
				}
				if len(recent) != 2 {
					t.Errorf("n=%d: %d customers, want 2", n, len(recent))
				}
				for _, c := range []string{c1, c2} {
					want, err := db.ListActs(ctx, org.ID, margen.ActFilter{CustomerID: c, Page: margen.Page{Limit: n}})
					if err != nil {
						t.Fatal(err)
					}
					got := recent[c]
					if len(got) != len(want) {
						t.Fatalf("n=%d, %s: %d acts, want %d", n, c, len(got), len(want))
					}
					for i := range want {
						if got[i].Reactions != nil {
							t.Errorf("n=%d, %s: act %d has reactions %+v, which are not read", n, c, i, got[i].Reactions)
						}
						want[i].Reactions = nil
						if !reflect.DeepEqual(got[i], want[i]) || got[i].CustomerID != c {
							t.Errorf("n=%d, %s: act %d is %+v, want %+v", n, c, i, got[i], want[i])
						}
					}
				}
			}
		})
	}
}

// TestFirstSightWithTheRecord: a refusal or an exception request that names
// a new customer creates it in its own transaction, and leaves a known one
// as it was.
func TestFirstSightWithTheRecord(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			org := &margen.Org{ID: margen.NewID("org"), Slug: "sight", Name: "Sight", Currency: "EUR", Timezone: "UTC", Language: "es"}
			boss := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
				Access: margen.AccessOwner, Role: "owner", Active: true}
			if err := db.CreateOrg(ctx, org, boss, "test"); err != nil {
				t.Fatal(err)
			}
			cus := &margen.Customer{OrgID: org.ID, Ref: "walk-in", Name: "Walk-in"}
			ref := &margen.Refusal{OrgID: org.ID, MemberID: boss.ID, CustomerID: margen.CustomerID(org.ID, "walk-in"),
				Wanted: "the staff ATM", ReasonKind: margen.RefusalNoRule, Left: margen.LeftUnhappy}
			if err := db.RecordRefusal(ctx, ref, cus, nil); err != nil {
				t.Fatal(err)
			}
			got, err := db.CustomerByID(ctx, org.ID, ref.CustomerID)
			if err != nil || got.Name != "Walk-in" {
				t.Fatalf("customer after the refusal: %+v, %v", got, err)
			}
			// Seen again with another name: the known customer is not edited.
			again := &margen.Customer{OrgID: org.ID, Ref: "walk-in", Name: "Someone else"}
			d := &margen.Decision{OrgID: org.ID, MemberID: boss.ID, CustomerID: ref.CustomerID, Action: "exception", Currency: "EUR"}
			a := &margen.Approval{ApproverRole: "owner", SLA: time.Hour, OnTimeout: "deny", Description: "use the staff ATM"}
			if err := storetest.RequestException(ctx, db, d, a, again, nil); err != nil {
				t.Fatal(err)
			}
			if got, _ := db.CustomerByID(ctx, org.ID, ref.CustomerID); got.Name != "Walk-in" {
				t.Fatalf("a known customer was edited: %+v", got)
			}
			list, err := db.ListCustomers(ctx, org.ID, margen.Page{})
			if err != nil || len(list) != 1 {
				t.Fatalf("customers: %+v, %v", list, err)
			}
		})
	}
}

// TestCustomersByID: one query answers many ids, repeated or unknown ids
// included, never with another organisation's customer, and in chunks
// when there are more ids than one statement takes.
func TestCustomersByID(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			var orgs []*margen.Org
			for _, slug := range []string{"one", "two"} {
				org := &margen.Org{ID: margen.NewID("org"), Slug: slug, Name: slug, Currency: "EUR", Timezone: "UTC", Language: "es"}
				boss := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
					Access: margen.AccessOwner, Role: "owner", Active: true}
				if err := db.CreateOrg(ctx, org, boss, "test"); err != nil {
					t.Fatal(err)
				}
				orgs = append(orgs, org)
			}
			for _, org := range orgs {
				for _, ref := range []string{"ana", "bob"} {
					if err := db.UpsertCustomer(ctx, &margen.Customer{OrgID: org.ID, Ref: ref, Name: org.Slug + " " + ref}, "test"); err != nil {
						t.Fatal(err)
					}
				}
			}
			one, two := orgs[0], orgs[1]
			ana, bob := margen.CustomerID(one.ID, "ana"), margen.CustomerID(one.ID, "bob")
			// Enough ids for two statements: most of them unknown.
			ids := []string{bob, ana, bob, margen.CustomerID(two.ID, "ana"), "cus_unknown"}
			for i := range 1500 {
				ids = append(ids, margen.CustomerID(one.ID, fmt.Sprintf("nobody-%d", i)))
			}
			ids = append(ids, ana)
			got, err := db.CustomersByID(ctx, one.ID, ids)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[ana] == nil || got[ana].Name != "one ana" || got[bob] == nil || got[bob].Name != "one bob" {
				t.Fatalf("customers: %v", got)
			}
			if got, err := db.CustomersByID(ctx, one.ID, nil); err != nil || len(got) != 0 {
				t.Fatalf("no ids: %v, %v", got, err)
			}
		})
	}
}

// TestDecisionsAndAccountsByKey: the inbox's batched reads return what
// GetDecision and ListBudgets return one at a time, and leave out what does
// not exist.
func TestDecisionsAndAccountsByKey(t *testing.T) {
	const budgetPolicy = `
currency: EUR
actions:
  - id: gift
    label: {es: "Cortesía", en: "Gift"}
roles:
  - id: staff
    label: {es: "Personal", en: "Staff"}
budgets:
  - id: daily
    scope: member
    period: day
    limit: 1000
grants:
  - id: small
    role: staff
    actions: [gift]
    max_amount: 100
    budgets: [daily]
`
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			org := &margen.Org{ID: margen.NewID("org"), Slug: "bykey", Name: "By key", Currency: "EUR", Timezone: "UTC", Language: "es"}
			boss := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
				Access: margen.AccessOwner, Role: "staff", Active: true}
			if err := db.CreateOrg(ctx, org, boss, "test"); err != nil {
				t.Fatal(err)
			}
			ana := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "ana", Name: "Ana",
				Access: margen.AccessFrontline, Role: "staff", Active: true}
			if err := db.CreateMember(ctx, ana, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: budgetPolicy, CreatedBy: "test"}, nil); err != nil {
				t.Fatal(err)
			}
			eng := decision.New(db, decision.Options{})
			defer eng.Close()
			var decs []*margen.Decision
			for _, m := range []*margen.Member{ana, boss, ana} {
				res, err := eng.Decide(ctx, &decision.Request{Org: org, Member: m, Action: "gift", Amount: 30,
					Customer: decision.CustomerInput{Ref: "c1"}})
				if err != nil {
					t.Fatal(err)
				}
				decs = append(decs, res.Decision)
			}
			got, err := db.DecisionsByID(ctx, org.ID, []string{decs[2].ID, decs[0].ID, decs[2].ID, "dec_unknown"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[decs[0].ID] == nil || got[decs[2].ID] == nil {
				t.Fatalf("decisions: %v", got)
			}
			for _, d := range []*margen.Decision{decs[0], decs[2]} {
				one, err := db.GetDecision(ctx, org.ID, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				if g := got[d.ID]; g.Reason != one.Reason || g.Amount != one.Amount || len(g.Budgets) != len(one.Budgets) || len(g.Budgets) != 1 {
					t.Errorf("decision %s: %+v, want %+v", d.ID, g, one)
				}
			}
			var keys []margen.BudgetKey
			for _, d := range decs {
				for _, b := range d.Budgets {
					keys = append(keys, margen.BudgetKey{BudgetID: b.Budget, Subject: b.Subject, Period: b.Period})
				}
			}
			keys = append(keys, margen.BudgetKey{BudgetID: "daily", Subject: ana.ID, Period: "1999-01-01"})
			accs, err := db.BudgetAccounts(ctx, org.ID, keys)
			if err != nil {
				t.Fatal(err)
			}
			if len(accs) != 2 {
				t.Fatalf("accounts: %v, want ana's and the boss's", accs)
			}
			for _, k := range keys[:3] {
				want, err := db.ListBudgets(ctx, org.ID, margen.BudgetFilter{BudgetID: k.BudgetID, Subject: k.Subject, Period: k.Period})
				if err != nil || len(want) != 1 {
					t.Fatalf("ListBudgets %v: %v, %v", k, want, err)
				}
				if a := accs[k]; a.BudgetKey != k || a.Limit != want[0].Limit || a.Used() != want[0].Used() {
					t.Errorf("account %v: %+v, want %+v", k, a, want[0])
				}
			}
			if a := accs[keys[0]]; a.Used() != 60 {
				t.Errorf("ana's account used %d, want 60", a.Used())
			}
		})
	}
}
