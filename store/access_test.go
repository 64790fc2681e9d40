package store_test

import (
	"context"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/store/storetest"
)

func TestRevokeAndDeactivate(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			mk := func(slug string) (*margen.Org, *margen.Member) {
				org := &margen.Org{ID: margen.NewID("org"), Slug: slug, Name: slug, Currency: "EUR", Timezone: "UTC", Language: "es"}
				owner := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
					Access: margen.AccessOwner, Role: "owner", Active: true}
				if err := db.CreateOrg(ctx, org, owner, "test"); err != nil {
					t.Fatal(err)
				}
				return org, owner
			}
			a, ownerA := mk("a")
			b, _ := mk("b")
			_, hash := auth.NewToken()
			tok := &margen.Token{OrgID: a.ID, MemberID: ownerA.ID, Hash: hash, Name: "cli"}
			if err := db.CreateToken(ctx, tok, "test"); err != nil {
				t.Fatal(err)
			}
			if toks, err := db.ListTokens(ctx, a.ID, ownerA.ID); err != nil || len(toks) != 1 {
				t.Fatalf("ListTokens = %v, %v", toks, err)
			}
			// Another organisation cannot revoke it: same answer as a missing id.
			if err := db.RevokeToken(ctx, b.ID, tok.ID, "intruder"); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("cross-tenant revoke: %v", err)
			}
			if _, err := db.TokenByHash(ctx, hash); err != nil {
				t.Fatalf("token gone before revoke: %v", err)
			}
			if err := db.RevokeToken(ctx, a.ID, tok.ID, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.RevokeToken(ctx, a.ID, tok.ID, "test"); err != nil {
				t.Fatalf("second revoke: %v", err)
			}
			if _, err := db.TokenByHash(ctx, hash); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("revoked token still found: %v", err)
			}
			if err := db.SetMemberActive(ctx, b.ID, ownerA.ID, false, "intruder"); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("cross-tenant deactivate: %v", err)
			}
			if err := db.SetMemberActive(ctx, a.ID, ownerA.ID, false, "test"); err != nil {
				t.Fatal(err)
			}
			if m, err := db.MemberByID(ctx, a.ID, ownerA.ID); err != nil || m.Active {
				t.Fatalf("member after deactivate: %+v %v", m, err)
			}
			if broken, _, err := db.VerifyAudit(ctx, a.ID); err != nil || broken != 0 {
				t.Fatalf("audit chain: %d %v", broken, err)
			}
			entries, err := db.ListAudit(ctx, a.ID, 0, 500)
			if err != nil || len(entries) == 0 {
				t.Fatalf("ListAudit: %d entries, %v", len(entries), err)
			}
			if last, err := db.LastAuditSeq(ctx, a.ID); err != nil || last != entries[len(entries)-1].Seq {
				t.Fatalf("LastAuditSeq = %d, %v; want %d", last, err, entries[len(entries)-1].Seq)
			}
			if _, err := db.LastAuditSeq(ctx, "org_missing"); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("LastAuditSeq of a missing organisation: %v", err)
			}
		})
	}
}
