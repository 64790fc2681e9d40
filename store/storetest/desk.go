package storetest

import (
	"encoding/json"
	"testing"
	"time"

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
	if e.Action != margen.ActionMemberUpdate || e.Actor != owner.ID || e.Subject != ana.ID || data["role"] != "supervisor" || was["role"] != "waiter" {
		t.Fatalf("audit entry = %+v %s", e, e.Data)
	}
	wantCode(t, db.UpdateMember(ctx, org.ID, ana.ID, margen.AccessFrontline, "waiter", "cocina", owner.ID), margen.ENOTFOUND, "")
	wantCode(t, db.UpdateMember(ctx, other.ID, ana.ID, margen.AccessFrontline, "waiter", "", owner.ID), margen.ENOTFOUND, "")
	if got, _ := db.MemberByID(ctx, org.ID, ana.ID); got.Role != "supervisor" || got.Team != "salon" {
		t.Fatalf("a refused update changed the member: %+v", got)
	}
	verifyAudit(t, db, org.ID)
	checkSeal(t, db, org.ID)
}

// testInvitations: an invitation is found by its hash, accepted once
// before it expires (creating the member with the invitation's access,
// role and team, with audit entries); a second use, an expired link or a
// taken login are refused and change nothing.
func testInvitations(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "invite")
	if err := db.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "salon", Name: "Salón"}, owner.ID); err != nil {
		t.Fatal(err)
	}
	at := clockAt
	inv := &margen.Invitation{OrgID: org.ID, TokenHash: []byte("hash-one-0123456789012345678901"), Name: "Lucía", Access: margen.AccessFrontline,
		Role: "waiter", Team: "salon", CreatedBy: owner.ID, CreatedAt: at, ExpiresAt: at.Add(72 * time.Hour)}
	if err := db.CreateInvitation(ctx, inv, owner.ID); err != nil {
		t.Fatal(err)
	}
	if e := lastAudit(t, db, org.ID); e.Action != margen.ActionInvitationCreate || e.Subject != inv.ID {
		t.Fatalf("audit after create = %+v", e)
	}
	bad := *inv
	bad.ID, bad.TokenHash, bad.Team = "", []byte("hash-two"), "cocina"
	wantCode(t, db.CreateInvitation(ctx, &bad, owner.ID), margen.ENOTFOUND, "")
	got, err := db.InvitationByHash(ctx, inv.TokenHash)
	if err != nil || got.ID != inv.ID || got.UsedAt != nil || !got.ExpiresAt.Equal(inv.ExpiresAt) || got.Team != "salon" {
		t.Fatalf("InvitationByHash = %+v, %v", got, err)
	}
	_, err = db.InvitationByHash(ctx, []byte("nope"))
	wantCode(t, err, margen.ENOTFOUND, "")

	// A login already taken leaves the invitation unused.
	_, err = db.AcceptInvitation(ctx, inv.TokenHash, &margen.Member{Login: "owner", Name: "Lucía"}, at.Add(time.Hour))
	wantCode(t, err, margen.ECONFLICT, "error.login_taken")
	m := &margen.Member{Login: "lucia", Name: "Lucía", PasswordHash: "$argon2id$x", Language: "en"}
	used, err := db.AcceptInvitation(ctx, inv.TokenHash, m, at.Add(time.Hour))
	if err != nil || used.UsedAt == nil || used.MemberID != m.ID {
		t.Fatalf("AcceptInvitation = %+v, %v", used, err)
	}
	mem, err := db.MemberByLogin(ctx, org.ID, "lucia")
	if err != nil || mem.Access != margen.AccessFrontline || mem.Role != "waiter" || mem.Team != "salon" || !mem.Active || mem.PasswordHash != "$argon2id$x" || mem.Language != "en" {
		t.Fatalf("invited member = %+v, %v", mem, err)
	}
	if e := lastAudit(t, db, org.ID); e.Action != margen.ActionInvitationAccept || e.Subject != inv.ID || e.Actor != mem.ID {
		t.Fatalf("audit after accept = %+v", e)
	}
	_, err = db.AcceptInvitation(ctx, inv.TokenHash, &margen.Member{Login: "lucia2", Name: "x"}, at.Add(2*time.Hour))
	wantCode(t, err, margen.ECONFLICT, "error.invitation_used")

	late := &margen.Invitation{OrgID: org.ID, TokenHash: []byte("hash-three"), Name: "Pedro", Access: margen.AccessFrontline,
		Role: "waiter", CreatedBy: owner.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := db.CreateInvitation(ctx, late, owner.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.AcceptInvitation(ctx, late.TokenHash, &margen.Member{Login: "pedro", Name: "Pedro"}, at.Add(time.Hour))
	wantCode(t, err, margen.ECONFLICT, "error.invitation_expired")
	if _, err := db.MemberByLogin(ctx, org.ID, "pedro"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("an expired invitation created a member: %v", err)
	}
	list, err := db.ListInvitations(ctx, org.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListInvitations = %d, %v", len(list), err)
	}
	verifyAudit(t, db, org.ID)
	checkSeal(t, db, org.ID)
}

// checkSeal fails unless every sealed row matches what the audit chain
// committed to (a change not named with t.touch breaks it).
func checkSeal(t *testing.T, db *store.DB, orgID string) {
	t.Helper()
	rep, err := db.CheckAudit(ctxT(t), orgID)
	if err != nil || !rep.OK() {
		t.Fatalf("CheckAudit = %+v, %v", rep, err)
	}
}
