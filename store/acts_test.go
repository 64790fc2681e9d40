package store_test

import (
	"context"
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
