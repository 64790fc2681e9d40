package storetest

import (
	"encoding/json"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// testUpdateMember: UpdateMember sets access, role and team with an audit
// entry that says what they were; an unknown team or another
// organisation's member is not found and changes nothing.
func testUpdateMember(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "people")
	other, _ := newOrg(t, db, "people-other")
	if err := db.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "salon", Name: "Salón"}, owner.ID); err != nil {
		t.Fatal(err)
	}
	ana := newMember(t, db, org.ID, "ana")
	before := margen.MemberStamp(ana)
	if err := db.UpdateMember(ctx, org.ID, ana.ID, margen.AccessSupervisor, "supervisor", "salon", owner.ID); err != nil {
		t.Fatal(err)
	}
	got, err := db.MemberByID(ctx, org.ID, ana.ID)
	if err != nil || got.Access != margen.AccessSupervisor || got.Role != "supervisor" || got.Team != "salon" {
		t.Fatalf("member after update = %+v, %v", got, err)
	}
	if margen.MemberStamp(got) == before {
		t.Fatal("a new role must change the member's stamp (and so end their sessions)")
	}
	e := lastAudit(t, db, org.ID)
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	was, _ := data["was"].(map[string]any)
	if e.Action != "member.update" || e.Actor != owner.ID || e.Subject != ana.ID || data["role"] != "supervisor" || was["role"] != "waiter" {
		t.Fatalf("audit entry = %+v %s", e, e.Data)
	}
	wantCode(t, db.UpdateMember(ctx, org.ID, ana.ID, margen.AccessFrontline, "waiter", "cocina", owner.ID), margen.ENOTFOUND, "")
	wantCode(t, db.UpdateMember(ctx, other.ID, ana.ID, margen.AccessFrontline, "waiter", "", owner.ID), margen.ENOTFOUND, "")
	if got, _ := db.MemberByID(ctx, org.ID, ana.ID); got.Role != "supervisor" || got.Team != "salon" {
		t.Fatalf("a refused update changed the member: %+v", got)
	}
	verifyAudit(t, db, org.ID)
}
