package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// Run runs the conformance suite against the engine that open returns.
// Every test opens its own database, so they run in parallel.
func Run(t *testing.T, open func(testing.TB) *store.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *store.DB)
	}{
		{"Orgs", testOrgs},
		{"Members", testMembers},
		{"Teams", testTeams},
		{"UpdateMember", testUpdateMember},
		{"Invitations", testInvitations},
		{"Tokens", testTokens},
		{"Customers", testCustomers},
		{"Tenancy", testTenancy},
		{"Policies", testPolicies},
		{"PolicyIdempotency", testPolicyIdempotency},
		{"DecideBatch", testDecideBatch},
		{"DecideBatchRollsBackOnDecideError", testDecideError},
		{"DecideBatchRollsBackOnFailedInsert", testDecideFailedInsert},
		{"DecideBatchIdempotency", testDecideIdempotency},
		{"IdempotencyExpiry", testIdempotencyExpiry},
		{"DecideBatchApprovals", testDecideApprovals},
		{"DecideBatchConcurrent", testDecideConcurrent},
		{"DecideBatchConcurrentOrgs", testDecideConcurrentOrgs},
		{"Reactions", testReactions},
		{"Refusals", testRefusals},
		{"Pagination", testPagination},
		{"AuditChain", testAuditChain},
		{"AuditTamper", testAuditTamper},
		{"SealTamper", testSealTamper},
		{"LedgerCorruption", testLedgerCorruption},
		{"AuditCheckPartitioned", testAuditCheckPartitioned},
		{"AuditCheckFrom", testAuditCheckFrom},
		{"LedgerCheckReports", testLedgerCheckReports},
		{"TimesRoundTrip", testTimes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// --- helpers ---

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// clockAt is a fixed, microsecond-precise instant.
var clockAt = time.Date(2026, 11, 25, 9, 30, 15, 123456000, time.UTC)

// newOrg creates an organisation with its owner and returns both.
func newOrg(t *testing.T, db *store.DB, slug string) (*margen.Org, *margen.Member) {
	t.Helper()
	org := &margen.Org{Slug: slug, Name: "Org " + slug, Currency: "EUR", Timezone: "Europe/Madrid", Language: "es"}
	owner := &margen.Member{Login: "owner", Name: "Owner", Role: "manager", Active: true, PasswordHash: "$argon2id$secret-hash"}
	if err := db.CreateOrg(ctxT(t), org, owner, ""); err != nil {
		t.Fatalf("CreateOrg %s: %v", slug, err)
	}
	return org, owner
}

func newMember(t *testing.T, db *store.DB, orgID, login string) *margen.Member {
	t.Helper()
	m := &margen.Member{OrgID: orgID, Login: login, Name: login, Access: margen.AccessFrontline, Role: "waiter", Active: true}
	if err := db.CreateMember(ctxT(t), m, "test"); err != nil {
		t.Fatalf("CreateMember %s: %v", login, err)
	}
	return m
}

func wantCode(t *testing.T, err error, code, key string) {
	t.Helper()
	var e *margen.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want %s %s", err, code, key)
	}
	if e.Code != code || (key != "" && e.Key != key) {
		t.Fatalf("err = %s/%s (%v), want %s/%s", e.Code, e.Key, err, code, key)
	}
}

// sameAsMissing checks that err is the exact not-found answer a missing id
// gets, so ids of other organisations leak nothing.
func sameAsMissing(t *testing.T, what string, err, missing error) {
	t.Helper()
	var a, b *margen.Error
	if !errors.As(err, &a) || !errors.As(missing, &b) {
		t.Fatalf("%s: errors %v / %v are not *margen.Error", what, err, missing)
	}
	if a.Code != margen.ENOTFOUND || a.Code != b.Code || a.Key != b.Key || !reflect.DeepEqual(a.Args, b.Args) || a.Field != b.Field {
		t.Fatalf("%s: other org's id answers %v, missing id answers %v", what, err, missing)
	}
}

func decide(t *testing.T, db *store.DB, d *Decider) {
	t.Helper()
	if err := db.DecideBatch(ctxT(t), d.Query(), d.Decide); err != nil {
		t.Fatalf("DecideBatch: %v", err)
	}
}

func balance(t *testing.T, db *store.DB, orgID, budget, subject string) margen.BudgetAccount {
	t.Helper()
	accts, err := db.ListBudgets(ctxT(t), orgID, margen.BudgetFilter{BudgetID: budget, Subject: subject})
	if err != nil {
		t.Fatalf("ListBudgets: %v", err)
	}
	if len(accts) != 1 {
		t.Fatalf("ListBudgets(%s, %s) = %d accounts, want 1", budget, subject, len(accts))
	}
	return accts[0]
}

// snapshot counts what a failed write must not have changed.
type snapshot struct {
	AuditSeq  int64
	Decisions int
	Acts      int
	Refusals  int
	Customers int
	Budgets   string
	Policies  int
	Reactions int
}

func snap(t *testing.T, db *store.DB, orgID string) snapshot {
	t.Helper()
	ctx := ctxT(t)
	var s snapshot
	must := func(err error) {
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
	}
	audit, err := db.ListAudit(ctx, orgID, 0, 500)
	must(err)
	if len(audit) > 0 {
		s.AuditSeq = audit[len(audit)-1].Seq
	}
	ds, err := db.ListDecisions(ctx, orgID, margen.DecisionFilter{Page: margen.Page{Limit: 500}})
	must(err)
	s.Decisions = len(ds)
	as, err := db.ListActs(ctx, orgID, margen.ActFilter{Page: margen.Page{Limit: 500}})
	must(err)
	s.Acts = len(as)
	for _, a := range as {
		s.Reactions += len(a.Reactions)
	}
	rs, err := db.ListRefusals(ctx, orgID, margen.RefusalFilter{Page: margen.Page{Limit: 500}})
	must(err)
	s.Refusals = len(rs)
	cs, err := db.ListCustomers(ctx, orgID, margen.Page{Limit: 500})
	must(err)
	s.Customers = len(cs)
	bs, err := db.ListBudgets(ctx, orgID, margen.BudgetFilter{})
	must(err)
	for _, b := range bs {
		s.Budgets += fmt.Sprintf("%s/%s/%s=%d+%d;", b.BudgetID, b.Subject, b.Period, b.Posted, b.Pending)
	}
	ps, err := db.ListPolicies(ctx, orgID)
	must(err)
	s.Policies = len(ps)
	return s
}

func sameSnap(t *testing.T, what string, before, after snapshot) {
	t.Helper()
	if before != after {
		t.Fatalf("%s changed the database:\nbefore %+v\nafter  %+v", what, before, after)
	}
}

func verifyAudit(t *testing.T, db *store.DB, orgID string) int64 {
	t.Helper()
	broken, checked, err := db.VerifyAudit(ctxT(t), orgID)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if broken != 0 {
		t.Fatalf("VerifyAudit: chain broken at %d after %d entries", broken, checked)
	}
	return checked
}

func checkLedger(t *testing.T, db *store.DB, orgID string) margen.LedgerReport {
	t.Helper()
	rep, err := db.CheckLedger(ctxT(t), orgID)
	if err != nil {
		t.Fatalf("CheckLedger: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("CheckLedger: %+v", rep.Mismatches)
	}
	return rep
}

// exec runs raw SQL written with ? placeholders (tests tamper with rows).
func exec(t *testing.T, db *store.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.SQL().ExecContext(ctxT(t), db.Rebind(query), args...); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}

// --- tests ---

func testOrgs(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "cafe")
	if org.ID == "" || owner.ID == "" || owner.OrgID != org.ID || owner.Access != margen.AccessOwner {
		t.Fatalf("CreateOrg did not fill ids: %+v %+v", org, owner)
	}
	got, err := db.OrgByID(ctx, org.ID)
	if err != nil || !reflect.DeepEqual(got, org) {
		t.Fatalf("OrgByID = %+v, %v; want %+v", got, err, org)
	}
	got, err = db.OrgBySlug(ctx, "cafe")
	if err != nil || got.ID != org.ID {
		t.Fatalf("OrgBySlug = %+v, %v", got, err)
	}
	m, err := db.MemberByLogin(ctx, org.ID, "owner")
	if err != nil || !reflect.DeepEqual(m, owner) {
		t.Fatalf("owner = %+v, %v; want %+v", m, err, owner)
	}
	_, err = db.OrgBySlug(ctx, "nope")
	wantCode(t, err, margen.ENOTFOUND, "error.not_found")
	_, err = db.OrgByID(ctx, "org_missing")
	wantCode(t, err, margen.ENOTFOUND, "error.not_found")

	// A taken slug: conflict, and nothing of the second org remains.
	dup := &margen.Org{Slug: "cafe", Name: "Other", Currency: "USD", Timezone: "UTC", Language: "en"}
	err = db.CreateOrg(ctx, dup, &margen.Member{Login: "x", Name: "x", Role: "r"}, "")
	wantCode(t, err, margen.ECONFLICT, "error.slug_taken")

	audit, err := db.ListAudit(ctx, org.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 || audit[0].Action != margen.ActionOrgCreate || audit[1].Action != margen.ActionMemberCreate || audit[0].Seq != 1 || audit[0].PrevHash != "" {
		t.Fatalf("audit after CreateOrg = %+v", audit)
	}
	if strings.Contains(string(audit[1].Data), "argon2") {
		t.Fatalf("audit data leaks the password hash: %s", audit[1].Data)
	}
	verifyAudit(t, db, org.ID)
}

func testMembers(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "bar")
	m := &margen.Member{OrgID: org.ID, Login: "ana", Name: "Ana", Access: margen.AccessFrontline, Role: "waiter",
		Team: "terraza", Language: "es", Active: true, PasswordHash: "$argon2id$very-secret"}
	if err := db.CreateMember(ctx, m, owner.ID); err != nil {
		t.Fatal(err)
	}
	got, err := db.MemberByID(ctx, org.ID, m.ID)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("MemberByID = %+v, %v; want %+v", got, err, m)
	}
	err = db.CreateMember(ctx, &margen.Member{OrgID: org.ID, Login: "ana", Name: "Other Ana", Role: "waiter"}, owner.ID)
	wantCode(t, err, margen.ECONFLICT, "error.login_taken")
	err = db.CreateMember(ctx, &margen.Member{OrgID: "org_missing", Login: "zoe", Name: "Zoe", Role: "waiter"}, owner.ID)
	wantCode(t, err, margen.ENOTFOUND, "")

	list, err := db.ListMembers(ctx, org.ID)
	if err != nil || len(list) != 2 || list[0].Login != "ana" || list[1].Login != "owner" {
		t.Fatalf("ListMembers = %+v, %v", list, err)
	}
	audit, _ := db.ListAudit(ctx, org.ID, 0, 0)
	last := audit[len(audit)-1]
	if last.Action != margen.ActionMemberCreate || last.Actor != owner.ID || last.Subject != m.ID {
		t.Fatalf("member audit = %+v", last)
	}
	for _, e := range audit {
		if strings.Contains(string(e.Data), "secret") || strings.Contains(string(e.Data), "argon2") {
			t.Fatalf("audit data leaks a password hash: %s", e.Data)
		}
	}
}

func testTeams(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "tienda")
	for _, slug := range []string{"norte", "centro"} {
		if err := db.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: slug, Name: "Tienda " + slug}, owner.ID); err != nil {
			t.Fatal(err)
		}
	}
	err := db.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "norte", Name: "again"}, owner.ID)
	wantCode(t, err, margen.ECONFLICT, "error.team_taken")
	teams, err := db.ListTeams(ctx, org.ID)
	if err != nil || len(teams) != 2 || teams[0].Slug != "centro" || teams[1].Slug != "norte" {
		t.Fatalf("ListTeams = %+v, %v", teams, err)
	}
}

func testTokens(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "tokens")
	other, _ := newOrg(t, db, "tokens-other")
	tok := &margen.Token{OrgID: org.ID, MemberID: owner.ID, Hash: []byte("sha256-of-secret-1"), Name: "ci"}
	if err := db.CreateToken(ctx, tok, owner.ID); err != nil {
		t.Fatal(err)
	}
	got, err := db.TokenByHash(ctx, []byte("sha256-of-secret-1"))
	if err != nil || !reflect.DeepEqual(got, tok) {
		t.Fatalf("TokenByHash = %+v, %v; want %+v", got, err, tok)
	}
	err = db.CreateToken(ctx, &margen.Token{OrgID: org.ID, MemberID: owner.ID, Hash: []byte("sha256-of-secret-1"), Name: "dup"}, owner.ID)
	wantCode(t, err, margen.ECONFLICT, "error.token_exists")

	revokedAt := clockAt
	revoked := &margen.Token{OrgID: org.ID, MemberID: owner.ID, Hash: []byte("sha256-of-secret-2"), Name: "old", RevokedAt: &revokedAt}
	if err := db.CreateToken(ctx, revoked, owner.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.TokenByHash(ctx, []byte("sha256-of-secret-2"))
	wantCode(t, err, margen.ENOTFOUND, "")
	_, err = db.TokenByHash(ctx, []byte("nope"))
	wantCode(t, err, margen.ENOTFOUND, "")

	// A member of another organisation cannot receive a token here.
	err = db.CreateToken(ctx, &margen.Token{OrgID: other.ID, MemberID: owner.ID, Hash: []byte("h3"), Name: "x"}, owner.ID)
	wantCode(t, err, margen.ENOTFOUND, "")

	audit, _ := db.ListAudit(ctx, org.ID, 0, 0)
	for _, e := range audit {
		if strings.Contains(string(e.Data), "secret") || strings.Contains(string(e.Data), "hash") {
			t.Fatalf("audit data leaks the token hash: %s", e.Data)
		}
	}
}

func testCustomers(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "clientes")
	c := &margen.Customer{OrgID: org.ID, Ref: "loyalty-42", Name: "Lucía", Contact: "+34 600", Tags: []string{"vip"}}
	if err := db.UpsertCustomer(ctx, c, owner.ID); err != nil {
		t.Fatal(err)
	}
	if c.ID != margen.CustomerID(org.ID, "loyalty-42") {
		t.Fatalf("customer id = %s", c.ID)
	}
	created := c.CreatedAt
	upd := &margen.Customer{OrgID: org.ID, Ref: "loyalty-42", Name: "Lucía P.", Tags: []string{"vip", "regular"}}
	if err := db.UpsertCustomer(ctx, upd, owner.ID); err != nil {
		t.Fatal(err)
	}
	got, err := db.CustomerByID(ctx, org.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Lucía P." || !reflect.DeepEqual(got.Tags, []string{"vip", "regular"}) || !got.CreatedAt.Equal(created) || upd.ID != c.ID {
		t.Fatalf("after upsert: %+v (created %v)", got, created)
	}
	plain := &margen.Customer{OrgID: org.ID, Ref: "table-7"}
	if err := db.UpsertCustomer(ctx, plain, owner.ID); err != nil {
		t.Fatal(err)
	}
	got, err = db.CustomerByID(ctx, org.ID, plain.ID)
	if err != nil || got.Tags == nil || len(got.Tags) != 0 {
		t.Fatalf("customer without tags = %+v, %v", got, err)
	}
	list, err := db.ListCustomers(ctx, org.ID, margen.Page{})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListCustomers = %+v, %v", list, err)
	}
	audit, _ := db.ListAudit(ctx, org.ID, 0, 0)
	for _, e := range audit {
		if strings.Contains(string(e.Data), "+34") {
			t.Fatalf("audit data leaks contact details: %s", e.Data)
		}
	}
}

// seedOrg creates an org with a member, a policy, and one allowed, one
// denied and one approval decision; it returns their ids.
type seeded struct {
	org      *margen.Org
	owner    *margen.Member
	member   *margen.Member
	decision margen.Decision // allowed
	denied   margen.Decision
	asked    margen.Decision
}

func seedOrg(t *testing.T, db *store.DB, slug string) seeded {
	t.Helper()
	org, owner := newOrg(t, db, slug)
	m := newMember(t, db, org.ID, "waiter")
	if err := db.PublishPolicy(ctxT(t), &margen.PolicyVersion{OrgID: org.ID, Source: "version: 1", CreatedBy: owner.ID}, nil); err != nil {
		t.Fatal(err)
	}
	d := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 600},
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 600}, // over the limit: denied
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c2", Amount: 100, Action: "ask"},
	}}
	decide(t, db, d)
	return seeded{org: org, owner: owner, member: m, decision: d.Out[0], denied: d.Out[1], asked: d.Out[2]}
}

func testTenancy(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	a := seedOrg(t, db, "org-a")
	b := seedOrg(t, db, "org-b")
	B := b.org.ID

	_, err := db.GetDecision(ctx, a.org.ID, a.decision.ID)
	if err != nil {
		t.Fatalf("own decision: %v", err)
	}
	check := func(what string, other, missing func() error) {
		t.Helper()
		sameAsMissing(t, what, other(), missing())
	}
	check("decision",
		func() error { _, err := db.GetDecision(ctx, B, a.decision.ID); return err },
		func() error { _, err := db.GetDecision(ctx, B, "dec_missing"); return err })
	check("act",
		func() error { _, err := db.GetAct(ctx, B, a.decision.ActID); return err },
		func() error { _, err := db.GetAct(ctx, B, "act_missing"); return err })
	check("refusal",
		func() error { _, err := db.GetRefusal(ctx, B, a.denied.RefusalID); return err },
		func() error { _, err := db.GetRefusal(ctx, B, "ref_missing"); return err })
	check("approval",
		func() error { _, err := db.GetApproval(ctx, B, a.asked.ApprovalID); return err },
		func() error { _, err := db.GetApproval(ctx, B, "apr_missing"); return err })
	check("member",
		func() error { _, err := db.MemberByID(ctx, B, a.member.ID); return err },
		func() error { _, err := db.MemberByID(ctx, B, "mem_missing"); return err })
	check("member login",
		func() error { _, err := db.MemberByLogin(ctx, B, "nobody-in-b"); return err },
		func() error { _, err := db.MemberByLogin(ctx, B, "nobody"); return err })
	check("customer",
		func() error { _, err := db.CustomerByID(ctx, B, a.decision.CustomerID); return err },
		func() error { _, err := db.CustomerByID(ctx, B, "cus_missing"); return err })
	check("reaction on another org's act",
		func() error {
			return db.RecordReaction(ctx, &margen.Reaction{OrgID: B, ActID: a.decision.ActID, Source: margen.SourceEmployee,
				Sentiment: margen.SentimentPositive, MemberID: b.member.ID}, nil)
		},
		func() error {
			return db.RecordReaction(ctx, &margen.Reaction{OrgID: B, ActID: "act_missing", Source: margen.SourceEmployee,
				Sentiment: margen.SentimentPositive, MemberID: b.member.ID}, nil)
		})

	// Budgets and lists of B never show A's rows.
	accts, err := db.ListBudgets(ctx, B, margen.BudgetFilter{Subject: a.member.ID})
	if err != nil || len(accts) != 0 {
		t.Fatalf("B sees A's budget accounts: %+v, %v", accts, err)
	}
	ds, err := db.ListDecisions(ctx, B, margen.DecisionFilter{MemberID: a.member.ID})
	if err != nil || len(ds) != 0 {
		t.Fatalf("B lists A's decisions: %+v, %v", ds, err)
	}
	as, err := db.ListActs(ctx, B, margen.ActFilter{CustomerID: a.decision.CustomerID})
	if err != nil || len(as) != 0 {
		t.Fatalf("B lists A's acts: %+v, %v", as, err)
	}
	if _, err := db.Idempotency(ctx, B, a.member.ID, "k"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("Idempotency of other org: %v", err)
	}
	// The ledger and audit of each org are their own.
	checkLedger(t, db, a.org.ID)
	checkLedger(t, db, B)
	verifyAudit(t, db, a.org.ID)
	verifyAudit(t, db, B)
}

func testPolicies(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "politicas")
	_, err := db.ActivePolicy(ctx, org.ID)
	wantCode(t, err, margen.ENOTFOUND, "")
	for i := 1; i <= 3; i++ {
		pv := &margen.PolicyVersion{OrgID: org.ID, Source: fmt.Sprintf("version: %d", i), CreatedBy: owner.ID, Note: fmt.Sprint("v", i)}
		if err := db.PublishPolicy(ctx, pv, nil); err != nil {
			t.Fatal(err)
		}
		if pv.Version != i || !pv.Active {
			t.Fatalf("published %+v, want version %d active", pv, i)
		}
	}
	active, err := db.ActivePolicy(ctx, org.ID)
	if err != nil || active.Version != 3 || active.Source != "version: 3" {
		t.Fatalf("ActivePolicy = %+v, %v", active, err)
	}
	v1, err := db.PolicyByVersion(ctx, org.ID, 1)
	if err != nil || v1.Active || v1.Note != "v1" {
		t.Fatalf("v1 = %+v, %v", v1, err)
	}
	list, err := db.ListPolicies(ctx, org.ID)
	if err != nil || len(list) != 3 || list[0].Version != 3 || !list[0].Active || list[1].Active || list[2].Active {
		t.Fatalf("ListPolicies = %+v, %v", list, err)
	}
	// Another org numbers its own versions.
	org2, owner2 := newOrg(t, db, "politicas-2")
	pv := &margen.PolicyVersion{OrgID: org2.ID, Source: "x", CreatedBy: owner2.ID}
	if err := db.PublishPolicy(ctx, pv, nil); err != nil || pv.Version != 1 {
		t.Fatalf("other org's first version = %d, %v", pv.Version, err)
	}
	// DecideBatch reads the active version.
	m := newMember(t, db, org.ID, "w")
	d := &Decider{Limit: 100, At: clockAt, Reqs: []Request{{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c", Amount: 1}}}
	decide(t, db, d)
	if d.Out[0].PolicyVersion != 3 {
		t.Fatalf("decision saw policy version %d, want 3", d.Out[0].PolicyVersion)
	}
	audit, _ := db.ListAudit(ctx, org.ID, 0, 0)
	n := 0
	for _, e := range audit {
		if e.Action == margen.ActionPolicyPublish {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d policy.publish audit entries, want 3", n)
	}
	_, err = db.PolicyByVersion(ctx, org2.ID, 3)
	wantCode(t, err, margen.ENOTFOUND, "")
}

func testPolicyIdempotency(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "idem-policy")
	// The answer is rendered from the version the store numbered.
	idem := &margen.IdemWrite[*margen.PolicyVersion]{
		Record: margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "publish-1", RequestHash: "abc"},
		Respond: func(pv *margen.PolicyVersion) ([]byte, error) {
			return fmt.Appendf(nil, `{"version":%d}`, pv.Version), nil
		}}
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: "a", CreatedBy: owner.ID}, idem); err != nil {
		t.Fatal(err)
	}
	got, err := db.Idempotency(ctx, org.ID, owner.ID, "publish-1")
	if err != nil || string(got.Response) != `{"version":1}` || got.RequestHash != "abc" ||
		!got.ExpiresAt.Equal(got.CreatedAt.Add(margen.DefaultIdempotencyTTL)) {
		t.Fatalf("Idempotency = %+v, %v", got, err)
	}
	before := snap(t, db, org.ID)
	again := fixedIdem(margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "publish-1", RequestHash: "abc"})
	err = db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: "b", CreatedBy: owner.ID}, again)
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "a replayed PublishPolicy", before, snap(t, db, org.ID))
	active, _ := db.ActivePolicy(ctx, org.ID)
	if active.Version != 1 || active.Source != "a" {
		t.Fatalf("active after replay = %+v", active)
	}
	// The same key of another member is another key.
	m := newMember(t, db, org.ID, "manager")
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: "c", CreatedBy: m.ID},
		fixedIdem(margen.Idempotency{OrgID: org.ID, MemberID: m.ID, Key: "publish-1", RequestHash: "x"})); err != nil {
		t.Fatal(err)
	}
	verifyAudit(t, db, org.ID)
}

// fixedIdem is an idempotency write whose answer does not depend on the
// version published.
func fixedIdem(rec margen.Idempotency) *margen.IdemWrite[*margen.PolicyVersion] {
	return &margen.IdemWrite[*margen.PolicyVersion]{Record: rec,
		Respond: func(*margen.PolicyVersion) ([]byte, error) { return []byte("r"), nil }}
}

func testDecideBatch(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "decide")
	m := newMember(t, db, org.ID, "ana")
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: "v1", CreatedBy: owner.ID}, nil); err != nil {
		t.Fatal(err)
	}
	d := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 300, IdemKey: "k1", Team: "sala"},
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c2", Amount: 400, IdemKey: "k2"},
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 500, IdemKey: "k3"}, // daily: 700+500 > 1000
	}}
	var seen *margen.BatchState
	err := db.DecideBatch(ctx, d.Query(), func(st *margen.BatchState) (*margen.BatchWrite, error) {
		seen = st
		return d.Decide(st)
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen.PolicyVersions[org.ID] != 1 || len(seen.Customers) != 0 || len(seen.Idem) != 0 {
		t.Fatalf("first state = %+v", seen)
	}
	for _, k := range d.Query().Budgets {
		if b, ok := seen.Balances[k]; !ok || b != (margen.Balance{}) {
			t.Fatalf("state balance %v = %+v, %v; want zero and present", k, b, ok)
		}
	}
	want := d.Out[0]
	got, err := db.GetDecision(ctx, org.ID, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	// JSON round-trips normalise numbers to float64.
	var wantArgs map[string]any
	b, _ := json.Marshal(want.Explanation.Args)
	json.Unmarshal(b, &wantArgs)
	want.Explanation.Args = wantArgs
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("GetDecision =\n%+v\nwant\n%+v", got, &want)
	}
	if d.Out[2].Outcome != margen.OutcomeDenied {
		t.Fatalf("third decision = %s, want denied", d.Out[2].Outcome)
	}
	ref, err := db.GetRefusal(ctx, org.ID, d.Out[2].RefusalID)
	if err != nil || ref.DecisionID != d.Out[2].ID || ref.Rule != "budget.daily" {
		t.Fatalf("refusal = %+v, %v", ref, err)
	}
	act, err := db.GetAct(ctx, org.ID, want.ActID)
	if err != nil || act.DecisionID != want.ID || act.Amount != 300 || len(act.Reactions) != 0 || act.Team != "sala" || got.Team != "sala" {
		t.Fatalf("act = %+v, %v", act, err)
	}
	daily := balance(t, db, org.ID, "daily", m.ID)
	if daily.Posted != 700 || daily.Pending != 0 || daily.Limit != 1000 || daily.Scope != "member" || daily.PeriodKind != "day" {
		t.Fatalf("daily account = %+v", daily)
	}

	// A second batch sees the balances, customers and keys of the first.
	d2 := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 200, IdemKey: "k4"},
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c2", Amount: 1, IdemKey: "k1"}, // replay
	}}
	err = db.DecideBatch(ctx, d2.Query(), func(st *margen.BatchState) (*margen.BatchWrite, error) {
		seen = st
		return d2.Decide(st)
	})
	if err != nil {
		t.Fatal(err)
	}
	k := d2.keys(d2.Reqs[0], clockAt)
	if seen.Balances[k[0]] != (margen.Balance{Posted: 700}) || seen.Balances[k[1]] != (margen.Balance{Posted: 300}) {
		t.Fatalf("second state balances = %+v", seen.Balances)
	}
	if c, ok := seen.Customers[margen.OrgRef{OrgID: org.ID, Ref: "c1"}]; !ok || c.ID != margen.CustomerID(org.ID, "c1") {
		t.Fatalf("second state customers = %+v", seen.Customers)
	}
	if rec, ok := seen.Idem[margen.IdemKey{OrgID: org.ID, MemberID: m.ID, Key: "k1"}]; !ok || len(rec.Response) == 0 {
		t.Fatalf("second state idem = %+v", seen.Idem)
	}
	if d2.Out[0].Outcome != margen.OutcomeAllowed || d2.Out[1].ID != "" {
		t.Fatalf("second batch = %+v", d2.Out)
	}
	if got := balance(t, db, org.ID, "daily", m.ID); got.Posted != 900 {
		t.Fatalf("daily posted = %d, want 900", got.Posted)
	}
	rep := checkLedger(t, db, org.ID)
	if rep.Entries != 6 || rep.Accounts != 3 {
		t.Fatalf("ledger report = %+v, want 6 entries on 3 accounts", rep)
	}
	verifyAudit(t, db, org.ID)
	audit, _ := db.ListAudit(ctx, org.ID, 0, 500)
	last := audit[len(audit)-1]
	if last.Action != margen.ActionDecisionCreate || last.Subject != d2.Out[0].ID || last.Actor != m.ID {
		t.Fatalf("last audit = %+v", last)
	}
}

func testDecideError(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, _ := newOrg(t, db, "decide-error")
	m := newMember(t, db, org.ID, "ana")
	before := snap(t, db, org.ID)
	boom := errors.New("policy blew up")
	d := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{{OrgID: org.ID, MemberID: m.ID, CustomerRef: "new", Amount: 5, IdemKey: "k"}}}
	err := db.DecideBatch(ctx, d.Query(), func(st *margen.BatchState) (*margen.BatchWrite, error) {
		return nil, boom
	})
	if err != boom {
		t.Fatalf("DecideBatch = %v, want the decide error itself", err)
	}
	sameSnap(t, "a failed decide", before, snap(t, db, org.ID))
	if _, err := db.Idempotency(ctx, org.ID, m.ID, "k"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("idempotency after failed decide: %v", err)
	}
	// Not even the budget accounts the batch opened for reading remain.
	if accts, _ := db.ListBudgets(ctx, org.ID, margen.BudgetFilter{}); len(accts) != 0 {
		t.Fatalf("accounts left behind: %+v", accts)
	}
	// A nil write commits nothing harmful either.
	if err := db.DecideBatch(ctx, d.Query(), func(*margen.BatchState) (*margen.BatchWrite, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	verifyAudit(t, db, org.ID)
}

func testDecideFailedInsert(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, _ := newOrg(t, db, "decide-rollback")
	m := newMember(t, db, org.ID, "ana")
	d := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 5}}}
	decide(t, db, d)
	first := d.Out[0]
	before := snap(t, db, org.ID)

	// The second batch reuses the first decision's id in its last decision:
	// its insert fails after customers were written, and everything goes.
	d2 := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c9", Amount: 7, IdemKey: "k9"},
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c8", Amount: 7},
	}}
	err := db.DecideBatch(ctx, d2.Query(), func(st *margen.BatchState) (*margen.BatchWrite, error) {
		w, err := d2.Decide(st)
		if err != nil {
			return nil, err
		}
		w.Decisions[len(w.Decisions)-1].ID = first.ID
		return w, nil
	})
	wantCode(t, err, margen.ECONFLICT, "")
	sameSnap(t, "a batch with a failing insert", before, snap(t, db, org.ID))

	// Same when the last statement (idempotency) is the one that fails.
	d3 := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c7", Amount: 7, IdemKey: "dup"}}}
	err = db.DecideBatch(ctx, d3.Query(), func(st *margen.BatchState) (*margen.BatchWrite, error) {
		w, err := d3.Decide(st)
		if err != nil {
			return nil, err
		}
		w.Idem = append(w.Idem, w.Idem[0]) // the same key twice
		return w, nil
	})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "a batch with a duplicate key", before, snap(t, db, org.ID))
	checkLedger(t, db, org.ID)
	verifyAudit(t, db, org.ID)
}

func testDecideIdempotency(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, _ := newOrg(t, db, "decide-idem")
	m := newMember(t, db, org.ID, "ana")
	d := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 5, IdemKey: "once"}}}
	decide(t, db, d)
	before := snap(t, db, org.ID)
	// A decide that ignores the state and writes the key again conflicts.
	d2 := &Decider{Limit: 1000, At: clockAt, Reqs: d.Reqs}
	err := db.DecideBatch(ctx, d2.Query(), func(st *margen.BatchState) (*margen.BatchWrite, error) {
		delete(st.Idem, margen.IdemKey{OrgID: org.ID, MemberID: m.ID, Key: "once"})
		return d2.Decide(st)
	})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "a replayed decision key", before, snap(t, db, org.ID))
	rec, err := db.Idempotency(ctx, org.ID, m.ID, "once")
	if err != nil || !strings.Contains(string(rec.Response), d.Out[0].ID) {
		t.Fatalf("stored answer = %+v, %v", rec, err)
	}
}

// testIdempotencyExpiry: a record answers for its key until it expires;
// then a write may take the key again, and the purge deletes what expired.
func testIdempotencyExpiry(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "idem-expiry")
	expires := clockAt.Add(time.Hour)
	rec := func(hash string, at time.Time) *margen.Idempotency {
		return &margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "k", RequestHash: hash,
			Response: []byte(hash), CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	}
	refusal := func(idem *margen.Idempotency) error {
		return db.RecordRefusal(ctx, &margen.Refusal{OrgID: org.ID, MemberID: owner.ID, ReasonKind: margen.RefusalOther,
			Left: margen.LeftUnknown}, nil, idem)
	}
	if err := refusal(rec("first", clockAt)); err != nil {
		t.Fatal(err)
	}
	got, err := db.Idempotency(ctx, org.ID, owner.ID, "k")
	if err != nil || !got.ExpiresAt.Equal(expires) || !got.Live(expires.Add(-time.Microsecond)) || got.Live(expires) {
		t.Fatalf("record = %+v, %v", got, err)
	}
	wantCode(t, refusal(rec("early", expires.Add(-time.Microsecond))), margen.ECONFLICT, "error.idempotency_exists")
	// Expired: the key is free again, on every write path (the approval
	// resolution writes its record its own way on PostgreSQL).
	if err := refusal(rec("second", expires)); err != nil {
		t.Fatalf("reusing an expired key: %v", err)
	}
	if got, _ := db.Idempotency(ctx, org.ID, owner.ID, "k"); got.RequestHash != "second" || string(got.Response) != "second" {
		t.Fatalf("replaced record = %+v", got)
	}
	asked := ask(t, db, org.ID, owner.ID, clockAt, 10)[0]
	later := expires.Add(time.Hour)
	_, err = ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: asked.ApprovalID, Status: margen.ApprovalRejected,
		Actor: owner.ID, At: later}, rec("third", later.Add(-time.Minute)))
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	if _, err := ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: asked.ApprovalID, Status: margen.ApprovalRejected,
		Actor: owner.ID, At: later}, rec("third", later)); err != nil {
		t.Fatalf("resolving with an expired key: %v", err)
	}
	if got, _ := db.Idempotency(ctx, org.ID, owner.ID, "k"); got.RequestHash != "third" {
		t.Fatalf("record after the resolution = %+v", got)
	}
	// The purge deletes what expired, and only that.
	other := &margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "other", RequestHash: "h", Response: []byte("r"),
		CreatedAt: clockAt, ExpiresAt: later.Add(2 * time.Hour)}
	if err := refusal(other); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PurgeIdempotency(ctx, later.Add(time.Hour-time.Microsecond), 100); err != nil || n != 0 {
		t.Fatalf("purge before the expiry = %d, %v", n, err)
	}
	if n, err := db.PurgeIdempotency(ctx, later.Add(time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
	if _, err := db.Idempotency(ctx, org.ID, owner.ID, "k"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("purged record: %v", err)
	}
	if _, err := db.Idempotency(ctx, org.ID, owner.ID, "other"); err != nil {
		t.Fatalf("live record purged: %v", err)
	}
}

func testDecideApprovals(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, _ := newOrg(t, db, "approvals")
	m := newMember(t, db, org.ID, "ana")
	d := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 250, Action: "ask"},
		{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c1", Amount: 100},
	}}
	decide(t, db, d)
	x := d.Out[0]
	if x.Outcome != margen.OutcomeNeedsApproval {
		t.Fatalf("outcome = %s", x.Outcome)
	}
	a, err := db.GetApproval(ctx, org.ID, x.ApprovalID)
	if err != nil {
		t.Fatal(err)
	}
	if a.DecisionID != x.ID || a.Status != margen.ApprovalPending || a.SLA != 15*time.Minute ||
		!a.DueAt.Equal(clockAt.Add(15*time.Minute)) || a.EscalateTo != "owner" || a.Amount != 250 {
		t.Fatalf("approval = %+v", a)
	}
	acct := balance(t, db, org.ID, "daily", m.ID)
	if acct.Pending != 250 || acct.Posted != 100 || acct.Used() != 350 {
		t.Fatalf("account = %+v", acct)
	}
	checkLedger(t, db, org.ID)
	// The hold counts against the next batch.
	var seen margen.Balance
	d2 := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{{OrgID: org.ID, MemberID: m.ID, CustomerRef: "c2", Amount: 1}}}
	err = db.DecideBatch(ctx, d2.Query(), func(st *margen.BatchState) (*margen.BatchWrite, error) {
		seen = st.Balances[d2.keys(d2.Reqs[0], clockAt)[0]]
		return d2.Decide(st)
	})
	if err != nil || seen != (margen.Balance{Posted: 100, Pending: 250}) {
		t.Fatalf("state balance = %+v, %v", seen, err)
	}
}

func testDecideConcurrent(t *testing.T, db *store.DB) {
	org, _ := newOrg(t, db, "concurrent")
	m := newMember(t, db, org.ID, "ana")
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ctx := context.Background()
			d := &Decider{Limit: 1 << 40, At: clockAt, Reqs: []Request{{OrgID: org.ID, MemberID: m.ID,
				CustomerRef: fmt.Sprint("c", i%7), Amount: 1, IdemKey: fmt.Sprint("k", i)}}}
			for attempt := 0; ; attempt++ {
				err := db.DecideBatch(ctx, d.Query(), d.Decide)
				if err == nil {
					return
				}
				if !store.IsRetryable(err) || attempt == 20 {
					errs <- err
					return
				}
				time.Sleep(time.Duration(attempt+1) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := balance(t, db, org.ID, "daily", m.ID); got.Posted != n {
		t.Fatalf("posted = %d after %d concurrent batches of 1", got.Posted, n)
	}
	rep := checkLedger(t, db, org.ID)
	if rep.Entries != 2*n {
		t.Fatalf("entries = %d, want %d", rep.Entries, 2*n)
	}
	if checked := verifyAudit(t, db, org.ID); checked != n+3 {
		t.Fatalf("audit entries = %d, want %d", checked, n+3)
	}
}

// testDecideConcurrentOrgs runs batches that span two organisations, with
// their requests in either order, from many goroutines: the store's fixed
// lock order must keep them free of deadlocks and lost updates.
func testDecideConcurrentOrgs(t *testing.T, db *store.DB) {
	a, _ := newOrg(t, db, "multi-a")
	b, _ := newOrg(t, db, "multi-b")
	ma := newMember(t, db, a.ID, "ana")
	mb := newMember(t, db, b.ID, "bea")
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			reqs := []Request{
				{OrgID: a.ID, MemberID: ma.ID, CustomerRef: fmt.Sprint("c", i%5), Amount: 1},
				{OrgID: b.ID, MemberID: mb.ID, CustomerRef: fmt.Sprint("c", i%3), Amount: 2},
				{OrgID: a.ID, MemberID: ma.ID, CustomerRef: fmt.Sprint("c", i%4), Amount: 1},
			}
			if i%2 == 1 {
				reqs[0], reqs[1] = reqs[1], reqs[0]
			}
			d := &Decider{Limit: 1 << 40, At: clockAt, Reqs: reqs}
			for attempt := 0; ; attempt++ {
				err := db.DecideBatch(context.Background(), d.Query(), d.Decide)
				if err == nil {
					return
				}
				if !store.IsRetryable(err) || attempt == 20 {
					errs <- err
					return
				}
				time.Sleep(time.Duration(attempt+1) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := balance(t, db, a.ID, "daily", ma.ID); got.Posted != 2*n {
		t.Fatalf("org A posted = %d, want %d", got.Posted, 2*n)
	}
	if got := balance(t, db, b.ID, "daily", mb.ID); got.Posted != 2*n {
		t.Fatalf("org B posted = %d, want %d", got.Posted, 2*n)
	}
	for _, org := range []string{a.ID, b.ID} {
		checkLedger(t, db, org)
		verifyAudit(t, db, org)
	}
}

func testReactions(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	s := seedOrg(t, db, "reactions")
	actID := s.decision.ActID
	r := &margen.Reaction{OrgID: s.org.ID, ActID: actID, Source: margen.SourceEmployee, Sentiment: margen.SentimentPositive,
		Note: "smiled", MemberID: s.member.ID}
	idem := &margen.Idempotency{OrgID: s.org.ID, MemberID: s.member.ID, Key: "react-1", RequestHash: "h", Response: []byte("r")}
	if err := db.RecordReaction(ctx, r, idem); err != nil {
		t.Fatal(err)
	}
	before := snap(t, db, s.org.ID)
	// The same key again: conflict, nothing written (even for a valid reaction).
	err := db.RecordReaction(ctx, &margen.Reaction{OrgID: s.org.ID, ActID: actID, Source: margen.SourceCustomer,
		Sentiment: margen.SentimentPositive}, &margen.Idempotency{OrgID: s.org.ID, MemberID: s.member.ID, Key: "react-1", RequestHash: "h", Response: []byte("r")})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "a replayed reaction", before, snap(t, db, s.org.ID))
	// A second employee reaction: conflict.
	err = db.RecordReaction(ctx, &margen.Reaction{OrgID: s.org.ID, ActID: actID, Source: margen.SourceEmployee,
		Sentiment: margen.SentimentNeutral, MemberID: s.member.ID}, nil)
	wantCode(t, err, margen.ECONFLICT, "error.reaction_exists")
	sameSnap(t, "a second employee reaction", before, snap(t, db, s.org.ID))
	// Customers may react more than once (survey and QR).
	for i, sent := range []string{margen.SentimentPositive, margen.SentimentNegative} {
		score := []int{10, 0}[i] // an NPS answer, 0 included
		if err := db.RecordReaction(ctx, &margen.Reaction{OrgID: s.org.ID, ActID: actID, Source: margen.SourceCustomer, Sentiment: sent, Score: &score}, nil); err != nil {
			t.Fatal(err)
		}
	}
	err = db.RecordReaction(ctx, &margen.Reaction{OrgID: s.org.ID, ActID: "act_missing", Source: margen.SourceCustomer, Sentiment: "positive"}, nil)
	wantCode(t, err, margen.ENOTFOUND, "error.not_found")
	act, err := db.GetAct(ctx, s.org.ID, actID)
	if err != nil || len(act.Reactions) != 3 || act.Reactions[0].ID != r.ID || act.Reactions[0].Note != "smiled" {
		t.Fatalf("act reactions = %+v, %v", act, err)
	}
	if rs := act.Reactions; rs[0].Score != nil || rs[1].Score == nil || *rs[1].Score != 10 || rs[2].Score == nil || *rs[2].Score != 0 {
		t.Fatalf("reaction scores: %v %v %v", rs[0].Score, rs[1].Score, rs[2].Score)
	}
	acts, err := db.ListActs(ctx, s.org.ID, margen.ActFilter{})
	if err != nil || len(acts) != 1 || len(acts[0].Reactions) != 3 {
		t.Fatalf("ListActs = %+v, %v", acts, err)
	}
	audit, _ := db.ListAudit(ctx, s.org.ID, before.AuditSeq-1, 1)
	if len(audit) != 1 || audit[0].Action != margen.ActionReactionRecord || audit[0].Subject != r.ID || audit[0].Actor != s.member.ID {
		t.Fatalf("reaction audit = %+v", audit)
	}
	// The desk's day: the newest reactions first, each with its act.
	for _, n := range []int{2, 10} {
		day, err := db.Today(ctx, s.org.ID, clockAt.Add(-time.Hour), clockAt.Add(time.Hour), n)
		if err != nil {
			t.Fatal(err)
		}
		want := []margen.Reaction{act.Reactions[2], act.Reactions[1], act.Reactions[0]}[:min(n, 3)]
		if len(day.Reactions) != len(want) {
			t.Fatalf("Today(%d) reactions = %+v", n, day.Reactions)
		}
		for i, x := range day.Reactions {
			if x.ID != want[i].ID || x.Sentiment != want[i].Sentiment || x.ActID != actID ||
				x.ActMember != act.MemberID || x.ActAction != act.Action || x.ActAmount != act.Amount {
				t.Errorf("Today(%d) reaction %d = %+v, want %+v of act %+v", n, i, x, want[i], act)
			}
		}
	}
	verifyAudit(t, db, s.org.ID)
}

func testRefusals(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	s := seedOrg(t, db, "refusals")
	r := &margen.Refusal{OrgID: s.org.ID, MemberID: s.member.ID, Wanted: "pay with an ATM nearby", ReasonKind: margen.RefusalNoRule,
		Left: margen.LeftLost, Note: "stranded tourist", CreatedAt: clockAt}
	idem := &margen.Idempotency{OrgID: s.org.ID, MemberID: s.member.ID, Key: "no-1", RequestHash: "h", Response: []byte("r")}
	if err := db.RecordRefusal(ctx, r, nil, idem); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetRefusal(ctx, s.org.ID, r.ID)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("GetRefusal = %+v, %v; want %+v", got, err, r)
	}
	before := snap(t, db, s.org.ID)
	err = db.RecordRefusal(ctx, &margen.Refusal{OrgID: s.org.ID, MemberID: s.member.ID, Wanted: "again", ReasonKind: margen.RefusalNoRule}, nil,
		&margen.Idempotency{OrgID: s.org.ID, MemberID: s.member.ID, Key: "no-1", RequestHash: "h", Response: []byte("r")})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "a replayed refusal", before, snap(t, db, s.org.ID))

	list, err := db.ListRefusals(ctx, s.org.ID, margen.RefusalFilter{ReasonKind: margen.RefusalNoRule})
	if err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("ListRefusals(no_rule) = %+v, %v", list, err)
	}
	list, err = db.ListRefusals(ctx, s.org.ID, margen.RefusalFilter{Rule: "budget.daily"})
	if err != nil || len(list) != 1 || list[0].ID != s.denied.RefusalID {
		t.Fatalf("ListRefusals(rule) = %+v, %v", list, err)
	}
	list, err = db.ListRefusals(ctx, s.org.ID, margen.RefusalFilter{MemberID: s.member.ID})
	if err != nil || len(list) != 2 || list[0].ID != r.ID {
		t.Fatalf("ListRefusals(member) newest first = %+v, %v", list, err)
	}
	verifyAudit(t, db, s.org.ID)
}

func testPagination(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	org, _ := newOrg(t, db, "pages")
	m := newMember(t, db, org.ID, "ana")
	m2 := newMember(t, db, org.ID, "bea")
	var ids, actIDs []string
	for i := range 7 {
		mem := m
		if i%2 == 1 {
			mem = m2
		}
		d := &Decider{Limit: 1 << 40, At: clockAt.Add(time.Duration(i) * time.Hour),
			Reqs: []Request{{OrgID: org.ID, MemberID: mem.ID, CustomerRef: fmt.Sprint("c", i), Amount: 1}}}
		decide(t, db, d)
		ids = append(ids, d.Out[0].ID)
		actIDs = append(actIDs, d.Out[0].ActID)
	}
	var got []string
	page := margen.Page{Limit: 3}
	for range 4 {
		ds, err := db.ListDecisions(ctx, org.ID, margen.DecisionFilter{Page: page})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			got = append(got, d.ID)
		}
		if len(ds) < 3 {
			break
		}
		page.After = ds[len(ds)-1].ID
	}
	for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
		ids[i], ids[j] = ids[j], ids[i]
	}
	if !reflect.DeepEqual(got, ids) {
		t.Fatalf("pages = %v\nwant newest first %v", got, ids)
	}
	ds, err := db.ListDecisions(ctx, org.ID, margen.DecisionFilter{MemberID: m2.ID})
	if err != nil || len(ds) != 3 {
		t.Fatalf("member filter = %d, %v", len(ds), err)
	}
	ds, err = db.ListDecisions(ctx, org.ID, margen.DecisionFilter{Since: clockAt.Add(2 * time.Hour), Until: clockAt.Add(5 * time.Hour)})
	if err != nil || len(ds) != 3 {
		t.Fatalf("time filter = %d, %v", len(ds), err)
	}
	ds, err = db.ListDecisions(ctx, org.ID, margen.DecisionFilter{Outcome: margen.OutcomeDenied})
	if err != nil || len(ds) != 0 {
		t.Fatalf("outcome filter = %d, %v", len(ds), err)
	}
	// Newest first: after the second newest act come the 5th and 4th created.
	acts, err := db.ListActs(ctx, org.ID, margen.ActFilter{Page: margen.Page{Limit: 2, After: actIDs[5]}})
	if err != nil || len(acts) != 2 || acts[0].ID != actIDs[4] || acts[1].ID != actIDs[3] {
		t.Fatalf("ListActs page = %+v, %v", acts, err)
	}
	flagged := true
	acts, err = db.ListActs(ctx, org.ID, margen.ActFilter{Flagged: &flagged})
	if err != nil || len(acts) != 0 {
		t.Fatalf("flagged acts = %+v, %v", acts, err)
	}
	cs, err := db.ListCustomers(ctx, org.ID, margen.Page{Limit: 4})
	if err != nil || len(cs) != 4 {
		t.Fatalf("customers page 1 = %d, %v", len(cs), err)
	}
	cs2, err := db.ListCustomers(ctx, org.ID, margen.Page{Limit: 4, After: cs[3].ID})
	if err != nil || len(cs2) != 3 || cs2[0].ID >= cs[3].ID {
		t.Fatalf("customers page 2 = %d, %v", len(cs2), err)
	}
	audit, err := db.ListAudit(ctx, org.ID, 2, 3)
	if err != nil || len(audit) != 3 || audit[0].Seq != 3 {
		t.Fatalf("ListAudit page = %+v, %v", audit, err)
	}
}

func testAuditChain(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	s := seedOrg(t, db, "audit")
	checked := verifyAudit(t, db, s.org.ID)
	// org, owner, member, policy, 3 decisions
	if checked != 7 {
		t.Fatalf("checked %d entries, want 7", checked)
	}
	audit, _ := db.ListAudit(ctx, s.org.ID, 0, 0)
	prev := ""
	for i, e := range audit {
		if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != TestAuditKey.Hash(&e) {
			t.Fatalf("entry %d does not chain: %+v", i, e)
		}
		prev = e.Hash
	}
	if _, _, err := db.VerifyAudit(ctx, "org_missing"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("VerifyAudit(missing org) = %v", err)
	}
}

func testAuditTamper(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	a := seedOrg(t, db, "tamper-a")
	b := seedOrg(t, db, "tamper-b")

	exec(t, db, "UPDATE audit_log SET data = ? WHERE org_id = ? AND seq = 5", `{"amount":1}`, a.org.ID)
	broken, _, err := db.VerifyAudit(ctx, a.org.ID)
	if err != nil || broken != 5 {
		t.Fatalf("after editing entry 5: broken = %d, %v", broken, err)
	}
	verifyAudit(t, db, b.org.ID) // the other chain is untouched

	// Re-hashing the edited entry without the key does not help: its link
	// does not verify under the key.
	audit, _ := db.ListAudit(ctx, b.org.ID, 0, 0)
	e := audit[3]
	e.Actor = "someone-else"
	exec(t, db, "UPDATE audit_log SET actor = ?, hash = ? WHERE org_id = ? AND seq = ?", e.Actor, margen.ChainHash(&e), b.org.ID, e.Seq)
	broken, _, err = db.VerifyAudit(ctx, b.org.ID)
	if err != nil || broken != 4 {
		t.Fatalf("after re-hashing entry 4: broken = %d, %v", broken, err)
	}

	// Cutting the tail is found through the head kept on the org row.
	c := seedOrg(t, db, "tamper-c")
	exec(t, db, "DELETE FROM audit_log WHERE org_id = ? AND seq = 7", c.org.ID)
	broken, checked, err := db.VerifyAudit(ctx, c.org.ID)
	if err != nil || broken != 7 || checked != 6 {
		t.Fatalf("after deleting the last entry: broken = %d, checked %d, %v", broken, checked, err)
	}
	// Deleting from the middle too.
	d := seedOrg(t, db, "tamper-d")
	exec(t, db, "DELETE FROM audit_log WHERE org_id = ? AND seq = 3", d.org.ID)
	broken, _, err = db.VerifyAudit(ctx, d.org.ID)
	if err != nil || broken != 3 {
		t.Fatalf("after deleting entry 3: broken = %d, %v", broken, err)
	}
}

func testLedgerCorruption(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	s := seedOrg(t, db, "ledger")
	checkLedger(t, db, s.org.ID)

	exec(t, db, "UPDATE budget_accounts SET posted = posted + 5 WHERE org_id = ? AND budget_id = 'daily'", s.org.ID)
	rep, err := db.CheckLedger(ctx, s.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Mismatches) != 1 || rep.Mismatches[0].What != "posted" || rep.Mismatches[0].Got != rep.Mismatches[0].Want+5 ||
		rep.Mismatches[0].Key.BudgetID != "daily" {
		t.Fatalf("after corrupting a balance: %+v", rep.Mismatches)
	}
	exec(t, db, "UPDATE budget_accounts SET posted = posted - 5 WHERE org_id = ? AND budget_id = 'daily'", s.org.ID)
	checkLedger(t, db, s.org.ID)

	// An entry that no decision explains (and the balance that follows it).
	exec(t, db, "UPDATE ledger_entries SET amount = amount + 1 WHERE org_id = ? AND decision_id = ? AND budget_id = 'daily'",
		s.org.ID, s.decision.ID)
	exec(t, db, "UPDATE budget_accounts SET posted = posted + 1 WHERE org_id = ? AND budget_id = 'daily'", s.org.ID)
	rep, err = db.CheckLedger(ctx, s.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Mismatches) != 1 || rep.Mismatches[0].What != "decision_posted" || !strings.Contains(rep.Mismatches[0].Detail, s.decision.ID) {
		t.Fatalf("after inflating an entry: %+v", rep.Mismatches)
	}
	// A pending hold that lost its entries.
	exec(t, db, "DELETE FROM ledger_entries WHERE org_id = ? AND decision_id = ?", s.org.ID, s.asked.ID)
	rep, _ = db.CheckLedger(ctx, s.org.ID)
	var pendingAccount, pendingDecision bool
	for _, m := range rep.Mismatches {
		pendingAccount = pendingAccount || m.What == "pending"
		pendingDecision = pendingDecision || m.What == "decision_pending"
	}
	if !pendingAccount || !pendingDecision {
		t.Fatalf("after deleting a hold's entries: %+v", rep.Mismatches)
	}
}

func testTimes(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	at := time.Date(2026, 3, 29, 1, 59, 59, 999999000, time.FixedZone("CET", 3600))
	org := &margen.Org{Slug: "times", Name: "T", Currency: "COP", Timezone: "America/Bogota", Language: "es", CreatedAt: at}
	if err := db.CreateOrg(ctx, org, &margen.Member{Login: "o", Name: "o", Role: "r", CreatedAt: at}, ""); err != nil {
		t.Fatal(err)
	}
	got, err := db.OrgByID(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(at) || got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond() != 999999000 {
		t.Fatalf("created_at = %v, want %v in UTC", got.CreatedAt, at)
	}
	audit, _ := db.ListAudit(ctx, org.ID, 0, 0)
	if !audit[0].At.Equal(at) || audit[0].At.Location() != time.UTC {
		t.Fatalf("audit at = %v", audit[0].At)
	}
	verifyAudit(t, db, org.ID)
}
