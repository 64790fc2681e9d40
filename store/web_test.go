package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

// TestWebAccounts: first-run detection, a member's own password and
// language, customer search (wildcards typed are text) and the session
// store, on both engines.
func TestWebAccounts(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.Open(t)
			if any, err := db.AnyOrg(ctx); err != nil || any {
				t.Fatalf("AnyOrg on an empty database = %v, %v", any, err)
			}
			o := testsupport.NewOrg(t, db, testsupport.OrgOptions{Members: []testsupport.Member{{Login: "ana"}}})
			other := testsupport.NewOrg(t, db, testsupport.OrgOptions{})
			if any, err := db.AnyOrg(ctx); err != nil || !any {
				t.Fatalf("AnyOrg = %v, %v", any, err)
			}
			ana := o.Members["ana"]
			before := margen.MemberStamp(ana)
			if err := db.SetMemberPassword(ctx, o.ID, ana.ID, "hash2", ana.ID); err != nil {
				t.Fatal(err)
			}
			if err := db.SetMemberLanguage(ctx, o.ID, ana.ID, "en", ana.ID); err != nil {
				t.Fatal(err)
			}
			got, err := db.MemberByID(ctx, o.ID, ana.ID)
			if err != nil || got.PasswordHash != "hash2" || got.Language != "en" {
				t.Fatalf("member after settings = %+v, %v", got, err)
			}
			if rep, err := db.CheckAudit(ctx, o.ID); err != nil || !rep.OK() {
				t.Fatalf("audit after a member's own settings: %+v, %v", rep, err)
			}
			if margen.MemberStamp(got) == before {
				t.Fatal("a new password must change the member's stamp")
			}
			if err := db.SetMemberLanguage(ctx, other.ID, ana.ID, "en", "x"); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("another organisation's member: %v, want not found", err)
			}

			for _, c := range []margen.Customer{{Ref: "mesa-12", Name: "Mesa 12"}, {Ref: "c-1", Name: "Lucía 100%"}, {Ref: "c-2", Name: "Lucía 1000"}} {
				c.OrgID = o.ID
				if err := db.UpsertCustomer(ctx, &c, "test"); err != nil {
					t.Fatal(err)
				}
			}
			x := margen.Customer{OrgID: other.ID, Ref: "mesa-13", Name: "Mesa 13"}
			if err := db.UpsertCustomer(ctx, &x, "test"); err != nil {
				t.Fatal(err)
			}
			for q, want := range map[string]int{"mesa": 1, "MESA-1": 1, "lucía": 2, "0%": 1, "_": 0, "": 3} {
				cs, err := db.SearchCustomers(ctx, o.ID, q, 10)
				if err != nil || len(cs) != want {
					t.Errorf("SearchCustomers(%q) = %d customers (%v), want %d", q, len(cs), err, want)
				}
			}

			s := db.Sessions()
			exp := time.Now().Add(time.Hour)
			if err := s.CommitCtx(ctx, "tok", []byte("one"), exp); err != nil {
				t.Fatal(err)
			}
			if err := s.CommitCtx(ctx, "tok", []byte("two"), exp); err != nil {
				t.Fatal(err)
			}
			if b, ok, err := s.FindCtx(ctx, "tok"); err != nil || !ok || string(b) != "two" {
				t.Fatalf("Find = %q, %v, %v", b, ok, err)
			}
			if err := s.CommitCtx(ctx, "old", []byte("x"), time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := s.FindCtx(ctx, "old"); ok {
				t.Fatal("an expired session was found")
			}
			if n, err := s.DeleteExpired(ctx, time.Now()); err != nil || n != 1 {
				t.Fatalf("DeleteExpired = %d, %v", n, err)
			}
			if err := s.DeleteCtx(ctx, "tok"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := s.FindCtx(ctx, "tok"); ok {
				t.Fatal("a deleted session was found")
			}
		})
	}
}
