package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/store"
)

// RunControl runs the conformance suite of margen.ApprovalStore and
// margen.WebhookStore. newDSN returns a fresh database (a SQLite path or a
// PostgreSQL URL); every test gets its own, and tests that play two server
// processes open theirs twice.
func RunControl(t *testing.T, newDSN func(*testing.T) string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB, reopen func() *store.DB)
	}{
		{"ApprovalRead", testApprovalRead},
		{"ApprovalApprove", testApprovalApprove},
		{"ApprovalRejectExpire", testApprovalRejectExpire},
		{"ApprovalEscalation", testApprovalEscalation},
		{"ApprovalIdempotency", testApprovalIdempotency},
		{"DueApprovals", testDueApprovals},
		{"RequestException", testRequestException},
		{"ControlTenancy", testControlTenancy},
		{"ApprovalRace", testApprovalRace},
		{"Webhooks", testWebhooks},
		{"WebhookRollback", testWebhookRollback},
		{"DispatchConcurrent", testDispatchConcurrent},
		{"DeliveryClaimConcurrent", testDeliveryClaimConcurrent},
		{"DeliveryLifecycle", testDeliveryLifecycle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dsn := newDSN(t)
			tt.fn(t, open(t, dsn), func() *store.DB { return open(t, dsn) })
		})
	}
}

// --- helpers ---

// newTeamMember creates a member in a team (created on first use).
func newTeamMember(t *testing.T, db *store.DB, orgID, login, team string) *margen.Member {
	t.Helper()
	teams, err := db.ListTeams(ctxT(t), orgID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(teams, func(x margen.Team) bool { return x.Slug == team }) {
		if err := db.CreateTeam(ctxT(t), &margen.Team{OrgID: orgID, Slug: team, Name: team}, "test"); err != nil {
			t.Fatalf("CreateTeam: %v", err)
		}
	}
	m := &margen.Member{OrgID: orgID, Login: login, Name: login, Access: margen.AccessFrontline, Role: "waiter",
		Team: team, Active: true}
	if err := db.CreateMember(ctxT(t), m, "test"); err != nil {
		t.Fatalf("CreateMember %s: %v", login, err)
	}
	return m
}

// ask opens approval requests (Decider "ask": 15 minutes to the manager,
// escalating to the owner) and returns their decisions.
func ask(t *testing.T, db *store.DB, orgID, memberID string, at time.Time, amounts ...int64) []margen.Decision {
	t.Helper()
	d := &Decider{Limit: 1 << 50, At: at}
	for i, a := range amounts {
		d.Reqs = append(d.Reqs, Request{OrgID: orgID, MemberID: memberID, CustomerRef: fmt.Sprint("c", i%3), Amount: a, Action: "ask"})
	}
	decide(t, db, d)
	return d.Out
}

func resolve(t *testing.T, db *store.DB, orgID string, r margen.Resolution) *margen.Approval {
	t.Helper()
	a, err := ApplyResolution(ctxT(t), db, orgID, r, nil)
	if err != nil {
		t.Fatalf("ResolveApproval %s %s: %v", r.Status, r.ApprovalID, err)
	}
	return a
}

func lastAudit(t *testing.T, db *store.DB, orgID string) margen.AuditEntry {
	t.Helper()
	var last margen.AuditEntry
	var after int64
	for {
		es, err := db.ListAudit(ctxT(t), orgID, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return last
		}
		last = es[len(es)-1]
		after = last.Seq
	}
}

// eventTypes is the types of the events an entry announces.
func eventTypes(t *testing.T, e *margen.AuditEntry) []margen.EventType {
	t.Helper()
	evs, err := margen.EventsOf(e)
	if err != nil {
		t.Fatal(err)
	}
	var types []margen.EventType
	for _, ev := range evs {
		types = append(types, ev.EventType())
	}
	return types
}

func eventData(t *testing.T, e margen.AuditEntry) margen.EventData {
	t.Helper()
	var ed margen.EventData
	if err := json.Unmarshal(e.Data, &ed); err != nil {
		t.Fatalf("audit data %s: %v", e.Data, err)
	}
	return ed
}

func historyKinds(a *margen.Approval) []string {
	var ks []string
	for _, e := range a.History {
		ks = append(ks, e.Kind)
	}
	return ks
}

// count runs a COUNT or SUM query written with ? placeholders.
func count(t *testing.T, db *store.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.SQL().QueryRowContext(ctxT(t), db.Rebind(query), args...).Scan(&n); err != nil {
		t.Fatalf("%q: %v", query, err)
	}
	return n
}

// allApprovals pages through every request of an organisation.
func allApprovals(t *testing.T, db *store.DB, orgID string, f margen.ApprovalFilter) []margen.Approval {
	t.Helper()
	var out []margen.Approval
	f.Limit = 500
	for {
		page, err := db.ListApprovals(ctxT(t), orgID, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out
		}
		f.After = page[len(page)-1].ID
	}
}

func allDeliveries(t *testing.T, db *store.DB, orgID string, f margen.DeliveryFilter) []margen.Delivery {
	t.Helper()
	var out []margen.Delivery
	f.Limit = 500
	for {
		page, err := db.ListDeliveries(ctxT(t), orgID, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out
		}
		f.After = page[len(page)-1].ID
	}
}

// announce writes one audited decision per outcome the way the decision
// engine does (audit action "decision.create", data margen.EventData), in
// one DecideBatch.
func announce(t *testing.T, db *store.DB, orgID, memberID string, outcomes ...string) {
	t.Helper()
	err := db.DecideBatch(ctxT(t), margen.BatchQuery{OrgIDs: []string{orgID}}, announceFunc(orgID, memberID, outcomes...))
	if err != nil {
		t.Fatalf("DecideBatch: %v", err)
	}
}

func announceFunc(orgID, memberID string, outcomes ...string) func(*margen.BatchState) (*margen.BatchWrite, error) {
	return func(*margen.BatchState) (*margen.BatchWrite, error) {
		w := &margen.BatchWrite{}
		for _, o := range outcomes {
			d := margen.Decision{ID: margen.NewID("dec"), OrgID: orgID, MemberID: memberID, Action: "gift", Amount: 0,
				Currency: "EUR", Outcome: o, CreatedAt: clockAt}
			w.Decisions = append(w.Decisions, d)
			data, _ := json.Marshal(margen.EventData{Outcome: o, Action: d.Action, Member: memberID, DecisionID: d.ID})
			w.Audit = append(w.Audit, margen.AuditEntry{OrgID: orgID, At: clockAt, Actor: memberID,
				Action: margen.ActionDecisionCreate, Subject: d.ID, Data: data})
		}
		return w, nil
	}
}

// typesOf is how many deliveries an outcome's decision.create makes
// for an endpoint subscribed to everything.
func typesOf(outcome string) int {
	if outcome == margen.OutcomeAllowed {
		return 1
	}
	return 2
}

func newWebhook(t *testing.T, db *store.DB, orgID string, types ...margen.EventType) *margen.Webhook {
	t.Helper()
	events := make([]string, len(types))
	for i, typ := range types {
		events[i] = string(typ)
	}
	w := &margen.Webhook{OrgID: orgID, URL: "https://example.test/hook", Events: events}
	if err := db.CreateWebhook(ctxT(t), w, "test", nil); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	return w
}

func dispatch(t *testing.T, db *store.DB, orgID string, limit int) int {
	t.Helper()
	n, err := db.DispatchWebhooks(ctxT(t), orgID, margen.SystemClock{}.Now(), limit)
	if err != nil {
		t.Fatalf("DispatchWebhooks: %v", err)
	}
	return n
}

// retry repeats fn while it fails with a transient error.
func retry(fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !store.IsRetryable(err) || attempt == 50 {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

// --- approvals ---

func testApprovalRead(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, _ := newOrg(t, db, "approval-read")
	ana := newTeamMember(t, db, org.ID, "ana", "sala")
	bea := newTeamMember(t, db, org.ID, "bea", "barra")
	asked := ask(t, db, org.ID, ana.ID, clockAt, 100, 200, 300)
	asked = append(asked, ask(t, db, org.ID, bea.ID, clockAt.Add(time.Minute), 400)...)

	a, err := db.GetApproval(ctx, org.ID, asked[0].ApprovalID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != margen.ApprovalKindAmount || a.Level != 0 || a.DecidedAt != nil || a.DecidedBy != "" ||
		a.ActID != "" || a.Status != margen.ApprovalPending || a.Amount != 100 || a.ApproverRole != "manager" {
		t.Fatalf("approval = %+v", a)
	}
	h, err := db.GetApprovalWithHistory(ctx, org.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.History) != 1 || h.History[0].Kind != margen.EventRequested || h.History[0].Actor != ana.ID ||
		h.History[0].ToRole != "manager" || !h.History[0].At.Equal(clockAt) || h.History[0].ApprovalID != a.ID ||
		h.History[0].ID == "" {
		t.Fatalf("history of a decided-by-engine request = %+v", h.History)
	}

	ids := func(as []margen.Approval) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	want := []string{asked[3].ApprovalID, asked[2].ApprovalID, asked[1].ApprovalID, asked[0].ApprovalID}
	for _, f := range []margen.ApprovalFilter{{}, {Status: margen.ApprovalPending}, {ApproverRoles: []string{"manager"}},
		{ApproverRoles: []string{"owner", "manager"}}} {
		list, err := db.ListApprovals(ctx, org.ID, f)
		if err != nil || !reflect.DeepEqual(ids(list), want) {
			t.Fatalf("ListApprovals(%+v) = %v, %v; want newest first %v", f, ids(list), err, want)
		}
	}
	for _, f := range []margen.ApprovalFilter{{Status: margen.ApprovalApproved}, {ApproverRoles: []string{"owner"}}, {MemberID: "mem_missing"}} {
		list, err := db.ListApprovals(ctx, org.ID, f)
		if err != nil || len(list) != 0 {
			t.Fatalf("ListApprovals(%+v) = %v, %v; want none", f, ids(list), err)
		}
	}
	list, err := db.ListApprovals(ctx, org.ID, margen.ApprovalFilter{MemberID: bea.ID})
	if err != nil || !reflect.DeepEqual(ids(list), want[:1]) {
		t.Fatalf("requests of bea = %v, %v", ids(list), err)
	}
	p1, err := db.ListApprovals(ctx, org.ID, margen.ApprovalFilter{Page: margen.Page{Limit: 3}})
	if err != nil || !reflect.DeepEqual(ids(p1), want[:3]) {
		t.Fatalf("page 1 = %v, %v", ids(p1), err)
	}
	p2, err := db.ListApprovals(ctx, org.ID, margen.ApprovalFilter{Page: margen.Page{Limit: 3, After: p1[2].ID}})
	if err != nil || !reflect.DeepEqual(ids(p2), want[3:]) {
		t.Fatalf("page 2 = %v, %v", ids(p2), err)
	}
	if n, err := db.PendingApprovals(ctx); err != nil || n != 4 {
		t.Fatalf("PendingApprovals = %d, %v", n, err)
	}
	if _, err := db.GetApprovalWithHistory(ctx, org.ID, "apr_missing"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("missing approval: %v", err)
	}
}

func testApprovalApprove(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "approve")
	ana := newTeamMember(t, db, org.ID, "ana", "sala")
	d := &Decider{Limit: 1000, At: clockAt, Reqs: []Request{
		{OrgID: org.ID, MemberID: ana.ID, CustomerRef: "c1", Amount: 250, Action: "ask"},
		{OrgID: org.ID, MemberID: ana.ID, CustomerRef: "c1", Amount: 100},
	}}
	decide(t, db, d)
	x := d.Out[0]
	at := clockAt.Add(90 * time.Second)
	actID := margen.NewID("act")
	// The resolution is computed under the request's lock: its error
	// (bad input here) rolls everything back and comes back unchanged.
	pristine := snap(t, db, org.ID)
	_, err := ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: x.ApprovalID, Status: "maybe"}, nil)
	wantCode(t, err, margen.EINVALID, "")
	boom := errors.New("boom")
	_, err = db.ResolveApproval(ctx, org.ID, x.ApprovalID, 0, func(st *margen.ResolutionState) (*margen.ResolutionWrite, error) {
		if st.Approval.ID != x.ApprovalID || st.Team != "sala" || len(st.Holds) == 0 {
			t.Errorf("resolution state = %+v", st)
		}
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("resolve error = %v, want it unchanged", err)
	}
	sameSnap(t, "a failed resolution", pristine, snap(t, db, org.ID))
	// A write outside the request's organisation is refused.
	other, _ := newOrg(t, db, "approve-other")
	otherBefore := snap(t, db, other.ID)
	_, err = db.ResolveApproval(ctx, org.ID, x.ApprovalID, 0, func(st *margen.ResolutionState) (*margen.ResolutionWrite, error) {
		w, err := approval.Resolve(st, margen.Resolution{ApprovalID: x.ApprovalID, Status: margen.ApprovalRejected, At: at}, nil)
		if err == nil && len(w.Accounts) > 0 {
			w.Accounts[0].OrgID = other.ID
		}
		return w, err
	})
	if err == nil {
		t.Fatal("a resolution moving another organisation's account was applied")
	}
	sameSnap(t, "a resolution outside its organisation", pristine, snap(t, db, org.ID))
	sameSnap(t, "the other organisation", otherBefore, snap(t, db, other.ID))
	a := resolve(t, db, org.ID, margen.Resolution{ApprovalID: x.ApprovalID, Status: margen.ApprovalApproved,
		Actor: owner.ID, Comment: "ok, good customer", At: at, ActID: actID})
	if a.Status != margen.ApprovalApproved || a.DecidedBy != owner.ID || a.DecidedAt == nil || !a.DecidedAt.Equal(at) ||
		a.Comment != "ok, good customer" || a.ActID != actID || a.Level != 0 {
		t.Fatalf("approved = %+v", a)
	}
	if got := historyKinds(a); !reflect.DeepEqual(got, []string{margen.EventRequested, margen.EventApproved}) {
		t.Fatalf("history = %v", got)
	}
	if e := a.History[1]; e.Actor != owner.ID || e.Comment != "ok, good customer" || !e.At.Equal(at) {
		t.Fatalf("approved event = %+v", e)
	}
	g, err := db.GetApprovalWithHistory(ctx, org.ID, a.ID)
	if err != nil || !reflect.DeepEqual(g, a) {
		t.Fatalf("GetApprovalWithHistory = %+v, %v\nresolve returned %+v", g, err, a)
	}
	// The hold became a posting on the same accounts.
	for _, k := range d.keys(d.Reqs[0], clockAt) {
		acct := balance(t, db, org.ID, k.BudgetID, k.Subject)
		if acct.Posted != 350 || acct.Pending != 0 {
			t.Fatalf("account %s = %+v, want posted 350 pending 0", k.BudgetID, acct)
		}
	}
	act, err := db.GetAct(ctx, org.ID, actID)
	if err != nil {
		t.Fatal(err)
	}
	if act.DecisionID != x.ID || act.Amount != 250 || act.MemberID != ana.ID || act.CustomerID != x.CustomerID ||
		act.Currency != "EUR" || act.Reason != x.Reason || act.Action != "ask" || !act.CreatedAt.Equal(at) {
		t.Fatalf("act = %+v", act)
	}
	dec, err := db.GetDecision(ctx, org.ID, x.ID)
	if err != nil || dec.ActID != actID || dec.ApprovalID != a.ID || dec.Outcome != margen.OutcomeNeedsApproval {
		t.Fatalf("decision = %+v, %v", dec, err)
	}
	last := lastAudit(t, db, org.ID)
	ed := eventData(t, last)
	if last.Action != margen.ActionApprovalApproved || last.Subject != a.ID || last.Actor != owner.ID ||
		!reflect.DeepEqual(eventTypes(t, &last), []margen.EventType{margen.EventApprovalDecided}) {
		t.Fatalf("audit = %+v", last)
	}
	if ed.Member != ana.ID || ed.Team != "sala" || ed.ApprovalID != a.ID || ed.DecisionID != x.ID || ed.ApproverRole != "manager" ||
		ed.Status != margen.ApprovalApproved || ed.DecidedBy != owner.ID || ed.TimeToAnswer != 90_000 || ed.ActID != actID ||
		ed.Amount != 250 || ed.Customer != x.CustomerID {
		t.Fatalf("audit data = %+v", ed)
	}

	// A second answer changes nothing.
	before := snap(t, db, org.ID)
	for _, st := range []string{margen.ApprovalRejected, margen.ApprovalApproved, margen.ApprovalExpired, margen.Escalated} {
		_, err := ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: a.ID, Status: st, Actor: owner.ID, At: at,
			Approver: "owner", DueAt: at.Add(time.Hour)}, nil)
		wantCode(t, err, margen.ECONFLICT, "error.approval_already_decided")
	}
	sameSnap(t, "answering a decided request", before, snap(t, db, org.ID))
	_, err = ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: "apr_missing", Status: margen.ApprovalApproved}, nil)
	wantCode(t, err, margen.ENOTFOUND, "error.not_found")
	checkLedger(t, db, org.ID)
	verifyAudit(t, db, org.ID)

	// CheckLedger notices an approved request that lost its act.
	exec(t, db, "UPDATE decisions SET act_id = '' WHERE org_id = ? AND id = ?", org.ID, x.ID)
	rep, err := db.CheckLedger(ctx, org.ID)
	if err != nil || len(rep.Mismatches) != 1 || rep.Mismatches[0].What != "approval_act" {
		t.Fatalf("CheckLedger after unlinking the act = %+v, %v", rep, err)
	}
}

func testApprovalRejectExpire(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "reject")
	ana := newMember(t, db, org.ID, "ana")
	asked := ask(t, db, org.ID, ana.ID, clockAt, 300, 40)
	r := resolve(t, db, org.ID, margen.Resolution{ApprovalID: asked[0].ApprovalID, Status: margen.ApprovalRejected,
		Actor: owner.ID, Comment: "not today", At: clockAt.Add(time.Minute)})
	x := resolve(t, db, org.ID, margen.Resolution{ApprovalID: asked[1].ApprovalID, Status: margen.ApprovalExpired,
		Actor: "system", At: clockAt.Add(15 * time.Minute)})
	if r.Status != margen.ApprovalRejected || r.ActID != "" || r.Comment != "not today" ||
		!reflect.DeepEqual(historyKinds(r), []string{margen.EventRequested, margen.EventRejected}) {
		t.Fatalf("rejected = %+v", r)
	}
	if x.Status != margen.ApprovalExpired || x.DecidedBy != "system" ||
		!reflect.DeepEqual(historyKinds(x), []string{margen.EventRequested, margen.EventExpired}) {
		t.Fatalf("expired = %+v", x)
	}
	accts, err := db.ListBudgets(ctx, org.ID, margen.BudgetFilter{})
	if err != nil || len(accts) == 0 {
		t.Fatalf("ListBudgets = %v, %v", accts, err)
	}
	for _, a := range accts {
		if a.Posted != 0 || a.Pending != 0 {
			t.Fatalf("account %+v: a voided hold must leave nothing", a)
		}
	}
	for _, d := range asked {
		dec, err := db.GetDecision(ctx, org.ID, d.ID)
		if err != nil || dec.ActID != "" {
			t.Fatalf("decision = %+v, %v", dec, err)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM acts WHERE org_id = ?", org.ID); n != 0 {
		t.Fatalf("%d acts after reject and expiry", n)
	}
	last := lastAudit(t, db, org.ID)
	if ed := eventData(t, last); last.Action != margen.ActionApprovalExpired || last.Actor != "system" || ed.TimeToAnswer != 15*60*1000 ||
		ed.Status != margen.ApprovalExpired || ed.DecidedBy != "system" {
		t.Fatalf("audit %+v data %+v", last, ed)
	}
	checkLedger(t, db, org.ID)
	verifyAudit(t, db, org.ID)

	// CheckLedger notices a reversal that went missing, even with the
	// balances adjusted to match the entries.
	exec(t, db, "DELETE FROM ledger_entries WHERE org_id = ? AND decision_id = ? AND amount < 0", org.ID, asked[0].ID)
	exec(t, db, "UPDATE budget_accounts SET pending = pending + 300 WHERE org_id = ?", org.ID)
	rep, err := db.CheckLedger(ctx, org.ID)
	if err != nil || len(rep.Mismatches) == 0 || !slices.ContainsFunc(rep.Mismatches, func(m margen.LedgerMismatch) bool {
		return m.What == "decision_pending" && m.Want == 0 && m.Got == 300
	}) {
		t.Fatalf("CheckLedger after losing a reversal = %+v, %v", rep, err)
	}
}

func testApprovalEscalation(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "escalate")
	ana := newTeamMember(t, db, org.ID, "ana", "sala")
	x := ask(t, db, org.ID, ana.ID, clockAt, 250)[0]
	due := clockAt.Add(75 * time.Minute)
	at := clockAt.Add(15 * time.Minute)
	e := resolve(t, db, org.ID, margen.Resolution{ApprovalID: x.ApprovalID, Level: 0, Status: margen.Escalated,
		Actor: "system", At: at, Approver: "owner", DueAt: due, OnTimeout: "deny"})
	if e.Status != margen.ApprovalPending || e.Level != 1 || e.ApproverRole != "owner" || !e.DueAt.Equal(due) ||
		e.OnTimeout != "deny" || e.EscalateTo != "" || e.SLA != time.Hour || e.DecidedAt != nil {
		t.Fatalf("escalated = %+v", e)
	}
	if got := historyKinds(e); !reflect.DeepEqual(got, []string{margen.EventRequested, margen.EventEscalated}) {
		t.Fatalf("history = %v", got)
	}
	if h := e.History; h[0].ToRole != "manager" || h[1].FromRole != "manager" || h[1].ToRole != "owner" || h[1].Actor != "system" {
		t.Fatalf("history = %+v", h)
	}
	// The hold stays.
	if acct := balance(t, db, org.ID, "daily", ana.ID); acct.Pending != 250 || acct.Posted != 0 {
		t.Fatalf("account after escalation = %+v", acct)
	}
	last := lastAudit(t, db, org.ID)
	if ed := eventData(t, last); last.Action != margen.ActionApprovalEscalated || ed.ApproverRole != "owner" || ed.FromRole != "manager" ||
		ed.DueAt != due.Format(time.RFC3339) || ed.Member != ana.ID || ed.Team != "sala" || ed.TimeToAnswer != 0 ||
		!reflect.DeepEqual(eventTypes(t, &last), []margen.EventType{margen.EventApprovalEscalated}) {
		t.Fatalf("audit %+v data %+v", last, ed)
	}
	list, err := db.ListApprovals(ctx, org.ID, margen.ApprovalFilter{ApproverRoles: []string{"owner"}, Status: margen.ApprovalPending})
	if err != nil || len(list) != 1 || list[0].ID != x.ApprovalID {
		t.Fatalf("owner's queue = %+v, %v", list, err)
	}
	if list, _ := db.ListApprovals(ctx, org.ID, margen.ApprovalFilter{ApproverRoles: []string{"manager"}}); len(list) != 0 {
		t.Fatalf("manager still sees the escalated request: %+v", list)
	}
	dueList, err := db.DueApprovals(ctx, due, margen.DueAfter{}, 10)
	if err != nil || len(dueList) != 1 || dueList[0].Level != 1 {
		t.Fatalf("DueApprovals = %+v, %v", dueList, err)
	}
	if dueList, _ := db.DueApprovals(ctx, due.Add(-time.Microsecond), margen.DueAfter{}, 10); len(dueList) != 0 {
		t.Fatalf("due before its time: %+v", dueList)
	}

	// Whoever saw level 0 is too late, for any answer.
	before := snap(t, db, org.ID)
	for _, st := range []string{margen.ApprovalApproved, margen.ApprovalRejected, margen.ApprovalExpired, margen.Escalated} {
		_, err := ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: x.ApprovalID, Level: 0, Status: st,
			Actor: owner.ID, At: at, Approver: "owner", DueAt: due, ActID: margen.NewID("act")}, nil)
		wantCode(t, err, margen.ECONFLICT, "error.approval_already_decided")
	}
	sameSnap(t, "a stale level", before, snap(t, db, org.ID))

	a := resolve(t, db, org.ID, margen.Resolution{ApprovalID: x.ApprovalID, Level: 1, Status: margen.ApprovalApproved,
		Actor: owner.ID, At: at.Add(time.Minute)})
	if a.ActID == "" || a.Level != 1 || a.ApproverRole != "owner" ||
		!reflect.DeepEqual(historyKinds(a), []string{margen.EventRequested, margen.EventEscalated, margen.EventApproved}) {
		t.Fatalf("approved after escalation = %+v", a)
	}
	if ed := eventData(t, lastAudit(t, db, org.ID)); ed.ApproverRole != "owner" || ed.TimeToAnswer != 16*60*1000 {
		t.Fatalf("audit data = %+v", ed)
	}
	if acct := balance(t, db, org.ID, "daily", ana.ID); acct.Pending != 0 || acct.Posted != 250 {
		t.Fatalf("account after approval = %+v", acct)
	}
	// Escalating needs a role and a due time.
	y := ask(t, db, org.ID, ana.ID, clockAt, 5)[0]
	_, err = ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: y.ApprovalID, Status: margen.Escalated, DueAt: due}, nil)
	wantCode(t, err, margen.EINVALID, "")
	_, err = ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: y.ApprovalID, Status: margen.Escalated, Approver: "owner"}, nil)
	wantCode(t, err, margen.EINVALID, "")
	checkLedger(t, db, org.ID)
	verifyAudit(t, db, org.ID)
}

func testApprovalIdempotency(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "approval-idem")
	ana := newMember(t, db, org.ID, "ana")
	asked := ask(t, db, org.ID, ana.ID, clockAt, 10, 20)
	idem := &margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "answer-1", RequestHash: "h1", Response: []byte(`{}`)}
	if _, err := ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: asked[0].ApprovalID, Status: margen.ApprovalApproved,
		Actor: owner.ID}, idem); err != nil {
		t.Fatal(err)
	}
	rec, err := db.Idempotency(ctx, org.ID, owner.ID, "answer-1")
	if err != nil || rec.RequestHash != "h1" {
		t.Fatalf("stored answer = %+v, %v", rec, err)
	}
	before := snap(t, db, org.ID)
	_, err = ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: asked[1].ApprovalID, Status: margen.ApprovalApproved,
		Actor: owner.ID}, &margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "answer-1", RequestHash: "h2", Response: []byte("r")})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "a reused key", before, snap(t, db, org.ID))
	if a, _ := db.GetApproval(ctx, org.ID, asked[1].ApprovalID); a.Status != margen.ApprovalPending {
		t.Fatalf("request answered despite the key conflict: %+v", a)
	}
	checkLedger(t, db, org.ID)
}

func testDueApprovals(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	orgA, _ := newOrg(t, db, "due-a")
	orgB, ownerB := newOrg(t, db, "due-b")
	a := newMember(t, db, orgA.ID, "ana")
	b := newMember(t, db, orgB.ID, "bea")
	// Due 15 minutes after asking: A at +0 and +2m, B at +1m and +3m.
	a0 := ask(t, db, orgA.ID, a.ID, clockAt, 1)[0]
	b1 := ask(t, db, orgB.ID, b.ID, clockAt.Add(time.Minute), 1)[0]
	a2 := ask(t, db, orgA.ID, a.ID, clockAt.Add(2*time.Minute), 1)[0]
	b3 := ask(t, db, orgB.ID, b.ID, clockAt.Add(3*time.Minute), 1)[0]
	ids := func(as []margen.Approval) []string {
		out := []string{}
		for _, x := range as {
			out = append(out, x.ID)
		}
		return out
	}
	at := clockAt.Add(17 * time.Minute)
	due, err := db.DueApprovals(ctx, at, margen.DueAfter{}, 10)
	if err != nil || !reflect.DeepEqual(ids(due), []string{a0.ApprovalID, b1.ApprovalID, a2.ApprovalID}) {
		t.Fatalf("DueApprovals = %v, %v", ids(due), err)
	}
	if due[1].OrgID != orgB.ID {
		t.Fatalf("due approval without its organisation: %+v", due[1])
	}
	first, _ := db.DueApprovals(ctx, at, margen.DueAfter{}, 2)
	if len(first) != 2 {
		t.Fatalf("limit 2 = %d", len(first))
	}
	// Resuming after the second gives the third, and nothing after it.
	next, err := db.DueApprovals(ctx, at, margen.DueAfter{DueAt: first[1].DueAt, ID: first[1].ID}, 2)
	if err != nil || !reflect.DeepEqual(ids(next), []string{a2.ApprovalID}) {
		t.Fatalf("DueApprovals after %s = %v, %v; want [%s]", first[1].ID, ids(next), err, a2.ApprovalID)
	}
	// Two requests due at the same time: the cursor's id decides.
	same := ask(t, db, orgA.ID, a.ID, clockAt.Add(4*time.Minute), 1, 2)
	lo, hi := same[0].ApprovalID, same[1].ApprovalID
	if hi < lo {
		lo, hi = hi, lo
	}
	sameDue := clockAt.Add(19 * time.Minute)
	rest, err := db.DueApprovals(ctx, sameDue, margen.DueAfter{DueAt: sameDue, ID: lo}, 10)
	if err != nil || !reflect.DeepEqual(ids(rest), []string{hi}) {
		t.Fatalf("DueApprovals after %s at the same due time = %v, %v; want [%s]", lo, ids(rest), err, hi)
	}
	resolve(t, db, orgB.ID, margen.Resolution{ApprovalID: b1.ApprovalID, Status: margen.ApprovalRejected, Actor: ownerB.ID})
	due, err = db.DueApprovals(ctx, clockAt.Add(time.Hour), margen.DueAfter{}, 10)
	if err != nil || !reflect.DeepEqual(ids(due), []string{a0.ApprovalID, a2.ApprovalID, b3.ApprovalID, lo, hi}) {
		t.Fatalf("DueApprovals after an answer = %v, %v", ids(due), err)
	}
	if n, err := db.PendingApprovals(ctx); err != nil || n != 5 {
		t.Fatalf("PendingApprovals = %d, %v", n, err)
	}
}

func testRequestException(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "exception")
	ana := newTeamMember(t, db, org.ID, "ana", "recepcion")
	cust := &margen.Customer{OrgID: org.ID, Ref: "stranded-1", Tags: []string{}}
	if err := db.UpsertCustomer(ctx, cust, ana.ID); err != nil {
		t.Fatal(err)
	}
	newReq := func(key string) (*margen.Decision, *margen.Approval, *margen.Idempotency) {
		d := &margen.Decision{OrgID: org.ID, MemberID: ana.ID, CustomerID: cust.ID, Action: "staff_atm", Currency: "EUR",
			Reason: "stranded customer, card blocked", PolicyVersion: 0, CreatedAt: clockAt}
		a := &margen.Approval{ApproverRole: "supervisor", SLA: 10 * time.Minute, OnTimeout: "escalate", EscalateTo: "owner",
			Description: "let them use the staff ATM"}
		var idem *margen.Idempotency
		if key != "" {
			idem = &margen.Idempotency{OrgID: org.ID, MemberID: ana.ID, Key: key, RequestHash: "h", Response: []byte(`{}`)}
		}
		return d, a, idem
	}
	d, a, idem := newReq("exc-1")
	if err := RequestException(ctx, db, d, a, nil, idem); err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || d.Outcome != margen.OutcomeNeedsApproval || d.ApprovalID != a.ID || a.DecisionID != d.ID ||
		a.Kind != margen.ApprovalKindException || a.Status != margen.ApprovalPending || !a.DueAt.Equal(clockAt.Add(10*time.Minute)) ||
		a.MemberID != ana.ID || a.CustomerID != cust.ID || a.Action != "staff_atm" {
		t.Fatalf("exception = %+v / %+v", d, a)
	}
	g, err := db.GetApprovalWithHistory(ctx, org.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Kind != margen.ApprovalKindException || g.Description != "let them use the staff ATM" || g.ApproverRole != "supervisor" ||
		g.SLA != 10*time.Minute || !g.CreatedAt.Equal(clockAt) || len(g.History) != 1 ||
		g.History[0].Kind != margen.EventRequested || g.History[0].ToRole != "supervisor" || g.History[0].Actor != ana.ID ||
		g.History[0].ID != a.History[0].ID {
		t.Fatalf("stored exception = %+v", g)
	}
	dec, err := db.GetDecision(ctx, org.ID, d.ID)
	if err != nil || dec.Outcome != margen.OutcomeNeedsApproval || dec.ApprovalID != a.ID || len(dec.Budgets) != 0 ||
		dec.Reason != d.Reason {
		t.Fatalf("decision = %+v, %v", dec, err)
	}
	last := lastAudit(t, db, org.ID)
	ed := eventData(t, last)
	if last.Action != margen.ActionExceptionRequest || last.Actor != ana.ID || last.Subject != a.ID ||
		!reflect.DeepEqual(eventTypes(t, &last), []margen.EventType{margen.EventApprovalRequested}) {
		t.Fatalf("audit = %+v", last)
	}
	if ed.Member != ana.ID || ed.Team != "recepcion" || ed.DecisionID != d.ID || ed.ApprovalID != a.ID ||
		ed.ApproverRole != "supervisor" || ed.DueAt != a.DueAt.Format(time.RFC3339) || ed.Outcome != margen.OutcomeNeedsApproval {
		t.Fatalf("audit data = %+v", ed)
	}
	if rec, err := db.Idempotency(ctx, org.ID, ana.ID, "exc-1"); err != nil || string(rec.Response) != `{}` {
		t.Fatalf("idempotency = %+v, %v", rec, err)
	}

	// Refused requests leave nothing behind.
	before := snap(t, db, org.ID)
	pending := len(allApprovals(t, db, org.ID, margen.ApprovalFilter{}))
	d2, a2, idem2 := newReq("exc-1")
	wantCode(t, RequestException(ctx, db, d2, a2, nil, idem2), margen.ECONFLICT, "error.idempotency_exists")
	d3, a3, _ := newReq("")
	d3.MemberID = "mem_missing"
	wantCode(t, RequestException(ctx, db, d3, a3, nil, nil), margen.ENOTFOUND, "")
	d4, a4, _ := newReq("")
	d4.CustomerID = "cus_missing"
	wantCode(t, RequestException(ctx, db, d4, a4, nil, nil), margen.ENOTFOUND, "")
	sameSnap(t, "refused exceptions", before, snap(t, db, org.ID))
	if n := len(allApprovals(t, db, org.ID, margen.ApprovalFilter{})); n != pending {
		t.Fatalf("approvals %d, want %d", n, pending)
	}

	// An approved exception becomes an act with no money moved.
	ok := resolve(t, db, org.ID, margen.Resolution{ApprovalID: a.ID, Status: margen.ApprovalApproved, Actor: owner.ID,
		At: clockAt.Add(3 * time.Minute)})
	act, err := db.GetAct(ctx, org.ID, ok.ActID)
	if err != nil || act.Action != "staff_atm" || act.Amount != 0 || act.CustomerID != cust.ID || act.DecisionID != d.ID {
		t.Fatalf("act = %+v, %v", act, err)
	}
	if got := historyKinds(ok); !reflect.DeepEqual(got, []string{margen.EventRequested, margen.EventApproved}) {
		t.Fatalf("history = %v", got)
	}
	checkLedger(t, db, org.ID)
	verifyAudit(t, db, org.ID)
}

func testControlTenancy(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	a := seedOrg(t, db, "ctl-a")
	b := seedOrg(t, db, "ctl-b")
	A, B := a.org.ID, b.org.ID
	w := newWebhook(t, db, A, "*")
	announce(t, db, A, a.member.ID, margen.OutcomeAllowed)
	if n := dispatch(t, db, A, 100); n != 1 {
		t.Fatalf("dispatched %d", n)
	}
	del := allDeliveries(t, db, A, margen.DeliveryFilter{})[0]

	check := func(what string, other, missing func() error) {
		t.Helper()
		sameAsMissing(t, what, other(), missing())
	}
	check("approval with history",
		func() error { _, err := db.GetApprovalWithHistory(ctx, B, a.asked.ApprovalID); return err },
		func() error { _, err := db.GetApprovalWithHistory(ctx, B, "apr_missing"); return err })
	check("resolve",
		func() error {
			_, err := ApplyResolution(ctx, db, B, margen.Resolution{ApprovalID: a.asked.ApprovalID, Status: margen.ApprovalApproved, Actor: b.owner.ID}, nil)
			return err
		},
		func() error {
			_, err := ApplyResolution(ctx, db, B, margen.Resolution{ApprovalID: "apr_missing", Status: margen.ApprovalApproved, Actor: b.owner.ID}, nil)
			return err
		})
	check("webhook",
		func() error { _, err := db.GetWebhook(ctx, B, w.ID); return err },
		func() error { _, err := db.GetWebhook(ctx, B, "whk_missing"); return err })
	check("delete webhook",
		func() error { return db.DeleteWebhook(ctx, B, w.ID, "x") },
		func() error { return db.DeleteWebhook(ctx, B, "whk_missing", "x") })
	check("delivery",
		func() error { _, err := db.GetDelivery(ctx, B, del.ID); return err },
		func() error { _, err := db.GetDelivery(ctx, B, "msg_missing"); return err })
	check("replay",
		func() error { _, err := db.ReplayDelivery(ctx, B, del.ID, "x", margen.SystemClock{}.Now()); return err },
		func() error {
			_, err := db.ReplayDelivery(ctx, B, "msg_missing", "x", margen.SystemClock{}.Now())
			return err
		})
	check("finish",
		func() error {
			x := del
			x.OrgID = B
			return db.FinishDelivery(ctx, &x, margen.DeliveryAttempt{StatusCode: 200}, nil, margen.JobResult{})
		},
		func() error {
			return db.FinishDelivery(ctx, &margen.Delivery{OrgID: B, ID: "msg_missing"}, margen.DeliveryAttempt{StatusCode: 200}, nil, margen.JobResult{})
		})
	if l, err := db.ListApprovals(ctx, B, margen.ApprovalFilter{MemberID: a.member.ID}); err != nil || len(l) != 0 {
		t.Fatalf("B lists A's approvals: %+v, %v", l, err)
	}
	if l, err := db.ListWebhooks(ctx, B); err != nil || len(l) != 0 {
		t.Fatalf("B lists A's webhooks: %+v, %v", l, err)
	}
	if l, err := db.ListDeliveries(ctx, B, margen.DeliveryFilter{WebhookID: w.ID}); err != nil || len(l) != 0 {
		t.Fatalf("B lists A's deliveries: %+v, %v", l, err)
	}
	// B has no endpoint: dispatching B creates nothing, and A's endpoint never sees B's events.
	announce(t, db, B, b.member.ID, margen.OutcomeAllowed)
	if n := dispatch(t, db, B, 100); n != 0 {
		t.Fatalf("B dispatched %d", n)
	}
	if n := dispatch(t, db, A, 100); n != 0 {
		t.Fatalf("A dispatched %d after B's event", n)
	}
	if g, err := db.GetApproval(ctx, A, a.asked.ApprovalID); err != nil || g.Status != margen.ApprovalPending {
		t.Fatalf("A's approval after B's attempts = %+v, %v", g, err)
	}
	if g, err := db.GetWebhook(ctx, A, w.ID); err != nil || !g.Active {
		t.Fatalf("A's webhook after B's attempts = %+v, %v", g, err)
	}
	verifyAudit(t, db, A)
	verifyAudit(t, db, B)
}

// testApprovalRace is the race: every pending request answered at
// once by approve, reject and expiry. Each must end in exactly one terminal
// state, and posted plus voided must equal what was held, to the unit.
func testApprovalRace(t *testing.T, db *store.DB, _ func() *store.DB) {
	// Longer than ctxT: a loaded machine must report its time, not a deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	// Three groups (approve, reject, expire) walk the requests in the same
	// order, so every request is answered three times at once. Within a
	// group, workers keep several requests in flight; more workers than
	// about two per core only add CPU contention (measured on 2 cores: 3×8
	// racers take about twice as long on PostgreSQL as 3×4).
	const batch = 200
	workers := max(4, 2*runtime.GOMAXPROCS(0))
	org, owner := newOrg(t, db, "race")
	var members []*margen.Member
	for i := range 4 {
		members = append(members, newMember(t, db, org.ID, fmt.Sprint("m", i)))
	}
	start := time.Now()
	ids := make([]string, 0, n)
	amounts := make([]int64, 0, n)
	var held int64
	for b := 0; b < n; b += batch {
		d := &Decider{Limit: 1 << 50, At: clockAt}
		for i := b; i < min(b+batch, n); i++ {
			amt := int64(1 + (i*7919)%5000)
			d.Reqs = append(d.Reqs, Request{OrgID: org.ID, MemberID: members[i%len(members)].ID,
				CustomerRef: fmt.Sprint("c", i%97), Amount: amt, Action: "ask"})
		}
		decide(t, db, d)
		for _, x := range d.Out {
			ids = append(ids, x.ApprovalID)
			amounts = append(amounts, x.Amount)
			held += x.Amount
		}
	}
	created := time.Since(start)
	auditBefore := verifyAudit(t, db, org.ID)

	statuses := [3]string{margen.ApprovalApproved, margen.ApprovalRejected, margen.ApprovalExpired}
	results := make([][3]error, n)
	var retries atomic.Int64
	start = time.Now()
	var wg sync.WaitGroup
	for g, st := range statuses {
		var next atomic.Int64
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					r := margen.Resolution{ApprovalID: ids[i], Level: 0, Status: st, Actor: owner.ID, At: clockAt.Add(time.Minute)}
					switch st {
					case margen.ApprovalApproved:
						r.ActID = margen.NewID("act")
					case margen.ApprovalExpired:
						r.Actor = "system"
					}
					results[i][g] = retry(func() error {
						_, err := ApplyResolution(ctx, db, org.ID, r, nil)
						if store.IsRetryable(err) {
							retries.Add(1)
						}
						return err
					})
				}
			})
		}
	}
	wg.Wait()
	raced := time.Since(start)

	won := make([]string, n)
	var approved, voided int64
	var nApproved int64
	for i, res := range results {
		for g, err := range res {
			switch {
			case err == nil:
				if won[i] != "" {
					t.Fatalf("request %d answered twice: %s and %s", i, won[i], statuses[g])
				}
				won[i] = statuses[g]
			default:
				var e *margen.Error
				if !errors.As(err, &e) || e.Code != margen.ECONFLICT || e.Key != "error.approval_already_decided" {
					t.Fatalf("request %d, %s: %v", i, statuses[g], err)
				}
			}
		}
		switch won[i] {
		case "":
			t.Fatalf("request %d: no answer succeeded: %v", i, res)
		case margen.ApprovalApproved:
			approved += amounts[i]
			nApproved++
		default:
			voided += amounts[i]
		}
	}
	if approved+voided != held {
		t.Fatalf("approved %d + voided %d != held %d", approved, voided, held)
	}
	// The stored states are the winners'.
	byID := map[string]int{}
	for i, id := range ids {
		byID[id] = i
	}
	all := allApprovals(t, db, org.ID, margen.ApprovalFilter{})
	if len(all) != n {
		t.Fatalf("%d approvals, want %d", len(all), n)
	}
	tally := map[string]int{}
	for _, a := range all {
		i := byID[a.ID]
		if a.Status != won[i] || a.DecidedAt == nil {
			t.Fatalf("approval %s is %s, the winning answer was %s", a.ID, a.Status, won[i])
		}
		if (a.Status == margen.ApprovalApproved) != (a.ActID != "") {
			t.Fatalf("approval %+v: act id iff approved", a)
		}
		tally[a.Status]++
	}
	// The money: every account's posted is what was approved, nothing is
	// still pending, and the ledger holds, releases and posts to the unit.
	accts, err := db.ListBudgets(ctx, org.ID, margen.BudgetFilter{})
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]margen.Balance{}
	for _, a := range accts {
		s := sums[a.BudgetID]
		s.Posted += a.Posted
		s.Pending += a.Pending
		sums[a.BudgetID] = s
	}
	for _, budget := range []string{"daily", "customer_month"} {
		if s := sums[budget]; s.Posted != approved || s.Pending != 0 {
			t.Fatalf("%s: posted %d pending %d; want posted %d (approved) pending 0", budget, s.Posted, s.Pending, approved)
		}
	}
	heldEntries := count(t, db, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE org_id = ? AND kind = 'pending' AND amount > 0", org.ID)
	released := -count(t, db, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE org_id = ? AND kind = 'pending' AND amount < 0", org.ID)
	posted := count(t, db, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE org_id = ? AND kind = 'posted'", org.ID)
	if heldEntries != 2*held || released != heldEntries || posted != 2*approved || posted+2*voided != heldEntries {
		t.Fatalf("ledger: held %d released %d posted %d; want held %d, all released, posted %d", heldEntries, released, posted, 2*held, 2*approved)
	}
	if acts := count(t, db, "SELECT COUNT(*) FROM acts WHERE org_id = ?", org.ID); acts != nApproved {
		t.Fatalf("%d acts for %d approvals", acts, nApproved)
	}
	if linked := count(t, db, `SELECT COUNT(*) FROM approvals a JOIN decisions d ON d.org_id = a.org_id AND d.id = a.decision_id
		JOIN acts x ON x.org_id = a.org_id AND x.id = a.act_id
		WHERE a.org_id = ? AND a.status = 'approved' AND d.act_id = a.act_id AND x.amount = a.amount`, org.ID); linked != nApproved {
		t.Fatalf("%d approved requests linked to their act, want %d", linked, nApproved)
	}
	if evs := count(t, db, "SELECT COUNT(*) FROM approval_events WHERE org_id = ?", org.ID); evs != int64(n) {
		t.Fatalf("%d history events, want one answer per request (%d)", evs, n)
	}
	if p, err := db.PendingApprovals(ctx); err != nil || p != 0 {
		t.Fatalf("PendingApprovals = %d, %v", p, err)
	}
	rep := checkLedger(t, db, org.ID)
	if checked := verifyAudit(t, db, org.ID); checked != auditBefore+int64(n) {
		t.Fatalf("audit has %d entries, want %d + one per answer (%d)", checked, auditBefore, n)
	}
	t.Logf("%s: %d requests held %d: created in %v; 3×%d racers answered in %v (%.0f answers/s, %d retries): approved %d (%d), rejected %d, expired %d (voided %d); ledger %d entries",
		db.Engine(), n, held, created.Round(time.Millisecond), workers, raced.Round(time.Millisecond), float64(3*n)/raced.Seconds(), retries.Load(),
		tally[margen.ApprovalApproved], approved, tally[margen.ApprovalRejected], tally[margen.ApprovalExpired], voided, rep.Entries)
}

// --- webhooks ---

func testWebhooks(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "hooks")
	ana := newTeamMember(t, db, org.ID, "ana", "sala")
	// History before the first endpoint is never sent.
	announce(t, db, org.ID, ana.ID, margen.OutcomeAllowed, margen.OutcomeDenied)
	if n := dispatch(t, db, org.ID, 100); n != 0 {
		t.Fatalf("dispatch without endpoints = %d", n)
	}
	w1 := &margen.Webhook{OrgID: org.ID, URL: "https://one.test/hook", Events: []string{string(margen.EventApprovalRequested), string(margen.EventApprovalDecided)}}
	idem := &margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "wh-1", RequestHash: "h", Response: []byte("r")}
	if err := db.CreateWebhook(ctx, w1, owner.ID, idem); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w1.Secret, "whsec_") || !w1.Active || w1.ID == "" || w1.CreatedAt.IsZero() {
		t.Fatalf("created = %+v", w1)
	}
	wantCode(t, db.CreateWebhook(ctx, &margen.Webhook{OrgID: org.ID, URL: "https://x.test"}, owner.ID,
		&margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "wh-1", RequestHash: "h"}), margen.ECONFLICT, "error.idempotency_exists")
	if last := lastAudit(t, db, org.ID); last.Action != margen.ActionWebhookCreate || last.Subject != w1.ID || strings.Contains(string(last.Data), w1.Secret) {
		t.Fatalf("audit = %+v", last)
	}
	w2 := newWebhook(t, db, org.ID, "*")
	if n := dispatch(t, db, org.ID, 100); n != 0 {
		t.Fatalf("dispatch of history = %d", n)
	}
	g, err := db.GetWebhook(ctx, org.ID, w1.ID)
	if err != nil || !reflect.DeepEqual(g, w1) {
		t.Fatalf("GetWebhook = %+v, %v\nwant %+v", g, err, w1)
	}
	list, err := db.ListWebhooks(ctx, org.ID)
	if err != nil || len(list) != 2 || list[0].ID != w2.ID || list[1].Secret != "" || list[1].URL != w1.URL ||
		!reflect.DeepEqual(list[1].Events, w1.Events) {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}
	if orgs, err := db.OrgsWithWebhooks(ctx); err != nil || !reflect.DeepEqual(orgs, []string{org.ID}) {
		t.Fatalf("OrgsWithWebhooks = %v, %v", orgs, err)
	}

	// Events: refusal (w2), exception requested (both), approval decided
	// (both), decision needing approval (w2: made + requested, w1: requested).
	if err := db.RecordRefusal(ctx, &margen.Refusal{OrgID: org.ID, MemberID: ana.ID, ReasonKind: margen.RefusalNoRule,
		Wanted: "a table by the window", Left: margen.LeftNeutral}, nil, nil); err != nil {
		t.Fatal(err)
	}
	exc := &margen.Approval{ApproverRole: "manager", SLA: time.Minute, Description: "staff ATM"}
	if err := RequestException(ctx, db, &margen.Decision{OrgID: org.ID, MemberID: ana.ID, Action: "staff_atm", Currency: "EUR"}, exc, nil, nil); err != nil {
		t.Fatal(err)
	}
	resolve(t, db, org.ID, margen.Resolution{ApprovalID: exc.ID, Status: margen.ApprovalRejected, Actor: owner.ID})
	announce(t, db, org.ID, ana.ID, margen.OutcomeNeedsApproval)
	if n, err := db.PendingDeliveries(ctx); err != nil || n != 0 {
		t.Fatalf("PendingDeliveries before dispatch = %d, %v", n, err)
	}
	if n := dispatch(t, db, org.ID, 2); n != 3 { // the refusal and the exception
		t.Fatalf("first dispatch = %d, want 3", n)
	}
	if n := dispatch(t, db, org.ID, 100); n != 5 {
		t.Fatalf("second dispatch = %d, want 5", n)
	}
	if n := dispatch(t, db, org.ID, 100); n != 0 {
		t.Fatalf("dispatch again = %d", n)
	}
	if n, err := db.PendingDeliveries(ctx); err != nil || n != 8 {
		t.Fatalf("PendingDeliveries = %d, %v", n, err)
	}
	d1 := allDeliveries(t, db, org.ID, margen.DeliveryFilter{WebhookID: w1.ID})
	var types []margen.EventType
	for _, d := range d1 {
		types = append(types, d.EventType)
	}
	want := []margen.EventType{margen.EventApprovalRequested, margen.EventApprovalDecided, margen.EventApprovalRequested} // newest first
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("w1 deliveries = %v, want %v", types, want)
	}
	d2 := allDeliveries(t, db, org.ID, margen.DeliveryFilter{WebhookID: w2.ID})
	if len(d2) != 5 {
		t.Fatalf("w2 deliveries = %d", len(d2))
	}
	// The payload of the exception's request.
	x := d1[2]
	if x.URL != w1.URL || x.Status != margen.DeliveryPending || x.Attempts != 0 || x.Secret != "" || !strings.HasPrefix(x.ID, "msg_") {
		t.Fatalf("delivery = %+v", x)
	}
	var p struct {
		Type      margen.EventType `json:"type"`
		Timestamp string           `json:"timestamp"`
		Data      map[string]any   `json:"data"`
	}
	if err := json.Unmarshal(x.Payload, &p); err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse(time.RFC3339, p.Timestamp)
	if p.Type != margen.EventApprovalRequested || err != nil || ts.IsZero() || p.Data["approval_id"] != exc.ID ||
		p.Data["subject"] != exc.ID || p.Data["actor"] != ana.ID || p.Data["seq"] != float64(x.AuditSeq) ||
		p.Data["team"] != "sala" || p.Data["approver_role"] != "manager" {
		t.Fatalf("payload = %s", x.Payload)
	}
	if all := allDeliveries(t, db, org.ID, margen.DeliveryFilter{Status: margen.DeliveryPending}); len(all) != 8 {
		t.Fatalf("pending deliveries listed = %d", len(all))
	}

	// Deleting an endpoint gives up its pending deliveries; it gets no new ones.
	if err := db.DeleteWebhook(ctx, org.ID, w1.ID, owner.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteWebhook(ctx, org.ID, w1.ID, owner.ID); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if g, err := db.GetWebhook(ctx, org.ID, w1.ID); err != nil || g.Active {
		t.Fatalf("deleted webhook = %+v, %v", g, err)
	}
	if gone := allDeliveries(t, db, org.ID, margen.DeliveryFilter{WebhookID: w1.ID, Status: margen.DeliveryFailed}); len(gone) != 3 {
		t.Fatalf("failed deliveries of the deleted endpoint = %d", len(gone))
	}
	_, err = db.ReplayDelivery(ctx, org.ID, d1[0].ID, owner.ID, margen.SystemClock{}.Now())
	wantCode(t, err, margen.ECONFLICT, "error.webhook_inactive")
	announce(t, db, org.ID, ana.ID, margen.OutcomeNeedsApproval)
	if n := dispatch(t, db, org.ID, 100); n != 2 {
		t.Fatalf("dispatch after delete = %d, want 2 (w2 only)", n)
	}
	if err := db.DeleteWebhook(ctx, org.ID, w2.ID, owner.ID); err != nil {
		t.Fatal(err)
	}
	if orgs, err := db.OrgsWithWebhooks(ctx); err != nil || len(orgs) != 0 {
		t.Fatalf("OrgsWithWebhooks after deleting all = %v, %v", orgs, err)
	}
	if n, err := db.PendingDeliveries(ctx); err != nil || n != 0 {
		t.Fatalf("PendingDeliveries = %d, %v", n, err)
	}
	if n, err := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour)); err != nil || n != 0 {
		t.Fatalf("PendingJobs after deleting the endpoints = %d, %v (their jobs are cancelled)", n, err)
	}
	// A new endpoint after a quiet spell starts from now.
	announce(t, db, org.ID, ana.ID, margen.OutcomeAllowed)
	w3 := newWebhook(t, db, org.ID, margen.EventDecisionMade)
	if n := dispatch(t, db, org.ID, 100); n != 0 {
		t.Fatalf("new endpoint got history: %d", n)
	}
	announce(t, db, org.ID, ana.ID, margen.OutcomeAllowed)
	if n := dispatch(t, db, org.ID, 100); n != 1 {
		t.Fatalf("new endpoint got %d", n)
	}
	if l := allDeliveries(t, db, org.ID, margen.DeliveryFilter{WebhookID: w3.ID}); len(l) != 1 {
		t.Fatalf("w3 deliveries = %d", len(l))
	}
	verifyAudit(t, db, org.ID)
}

// testWebhookRollback: a change that does not commit has no audit entry and
// so never produces a delivery, wherever it failed.
func testWebhookRollback(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "hooks-rollback")
	ana := newMember(t, db, org.ID, "ana")
	newWebhook(t, db, org.ID, "*")
	asked := ask(t, db, org.ID, ana.ID, clockAt, 10)[0]
	if n := dispatch(t, db, org.ID, 100); n != 2 { // decision.made, approval.requested
		t.Fatalf("dispatch = %d, want 2", n)
	}
	before := snap(t, db, org.ID)
	q := margen.BatchQuery{OrgIDs: []string{org.ID}}
	// The decide function fails after building its write.
	boom := errors.New("boom")
	err := db.DecideBatch(ctx, q, func(st *margen.BatchState) (*margen.BatchWrite, error) {
		if _, err := announceFunc(org.ID, ana.ID, margen.OutcomeAllowed)(st); err != nil {
			return nil, err
		}
		return nil, boom
	})
	if err != boom {
		t.Fatalf("DecideBatch = %v", err)
	}
	// The last statement (idempotency, after the audit entries) fails.
	err = db.DecideBatch(ctx, q, func(st *margen.BatchState) (*margen.BatchWrite, error) {
		w, err := announceFunc(org.ID, ana.ID, margen.OutcomeDenied, margen.OutcomeNeedsApproval)(st)
		k := margen.Idempotency{OrgID: org.ID, MemberID: ana.ID, Key: "dup", RequestHash: "h", Response: []byte("r")}
		w.Idem = append(w.Idem, k, k)
		return w, err
	})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "failed batches", before, snap(t, db, org.ID))
	// A resolution refused by its idempotency key.
	if err := db.RecordRefusal(ctx, &margen.Refusal{OrgID: org.ID, MemberID: ana.ID, ReasonKind: margen.RefusalOther,
		Left: margen.LeftUnknown}, nil, &margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "used", RequestHash: "h"}); err != nil {
		t.Fatal(err)
	}
	before = snap(t, db, org.ID)
	_, err = ApplyResolution(ctx, db, org.ID, margen.Resolution{ApprovalID: asked.ApprovalID, Status: margen.ApprovalApproved,
		Actor: owner.ID}, &margen.Idempotency{OrgID: org.ID, MemberID: owner.ID, Key: "used", RequestHash: "h"})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	sameSnap(t, "a refused resolution", before, snap(t, db, org.ID))

	if n := dispatch(t, db, org.ID, 100); n != 1 { // the refusal only
		t.Fatalf("dispatch = %d, want 1 (the committed refusal)", n)
	}
	ds := allDeliveries(t, db, org.ID, margen.DeliveryFilter{})
	if len(ds) != 3 || ds[0].EventType != margen.EventRefusalRecorded { // newest first, after the request's two
		t.Fatalf("deliveries = %+v", ds)
	}
	// A committed decision afterwards is announced.
	announce(t, db, org.ID, ana.ID, margen.OutcomeDenied)
	if n := dispatch(t, db, org.ID, 100); n != 2 {
		t.Fatalf("dispatch = %d, want 2", n)
	}
	verifyAudit(t, db, org.ID)
}

// testDispatchConcurrent: two processes dispatch while decisions are being
// written; every committed event reaches each subscribed endpoint exactly
// once.
func testDispatchConcurrent(t *testing.T, db *store.DB, reopen func() *store.DB) {
	ctx := ctxT(t)
	db2 := reopen()
	org, _ := newOrg(t, db, "hooks-race")
	ana := newMember(t, db, org.ID, "ana")
	newWebhook(t, db, org.ID, "*")
	newWebhook(t, db2, org.ID, margen.EventDecisionMade)
	outcomes := []string{margen.OutcomeAllowed, margen.OutcomeDenied, margen.OutcomeNeedsApproval}
	const writers, perWriter, batch = 4, 25, 3
	want := 0
	for range writers * perWriter {
		for _, o := range outcomes[:batch] {
			want += typesOf(o) + 1
		}
	}
	var written atomic.Int64
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range writers {
		wg.Go(func() {
			defer written.Add(1)
			h := []*store.DB{db, db2}[w%2]
			for range perWriter {
				err := retry(func() error {
					return h.DecideBatch(ctx, margen.BatchQuery{OrgIDs: []string{org.ID}}, announceFunc(org.ID, ana.ID, outcomes...))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var dg sync.WaitGroup
	for p := range 4 {
		dg.Go(func() {
			h := []*store.DB{db, db2}[p%2]
			for {
				done := written.Load() == writers
				var n int
				err := retry(func() error {
					var err error
					n, err = h.DispatchWebhooks(ctx, org.ID, margen.SystemClock{}.Now(), 16)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				total.Add(int64(n))
				if n == 0 {
					if done {
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	dg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ds := allDeliveries(t, db2, org.ID, margen.DeliveryFilter{})
	type key struct {
		hook string
		seq  int64
		typ  margen.EventType
	}
	seen := map[key]bool{}
	for _, d := range ds {
		k := key{d.WebhookID, d.AuditSeq, d.EventType}
		if seen[k] {
			t.Fatalf("delivery %+v created twice", k)
		}
		seen[k] = true
	}
	if len(ds) != want || total.Load() != int64(want) {
		t.Fatalf("%d deliveries (dispatch reported %d), want %d", len(ds), total.Load(), want)
	}
}

// deliveryClaim claims due delivery jobs.
func deliveryClaim(t *testing.T, db *store.DB, at time.Time, lease time.Duration, limit int) ([]margen.Job, error) {
	t.Helper()
	return db.ClaimJobs(ctxT(t), margen.JobClaim{Kinds: []string{margen.JobWebhookDelivery}, Owner: "test",
		Now: at, Lease: lease, Limit: limit})
}

// testDeliveryClaimConcurrent: every delivery has one job, and claimers in
// two processes never get the same one.
func testDeliveryClaimConcurrent(t *testing.T, db *store.DB, reopen func() *store.DB) {
	ctx := ctxT(t)
	db2 := reopen()
	org, _ := newOrg(t, db, "claims")
	ana := newMember(t, db, org.ID, "ana")
	hook := newWebhook(t, db, org.ID, "*")
	var outcomes []string
	for range 100 {
		outcomes = append(outcomes, margen.OutcomeDenied) // 2 events each
	}
	announce(t, db, org.ID, ana.ID, outcomes...)
	for dispatch(t, db, org.ID, 500) > 0 {
	}
	const total = 200
	if n, err := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour)); err != nil || n != total {
		t.Fatalf("PendingJobs = %d, %v; want %d", n, err, total)
	}
	now := time.Now().Add(time.Second)
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := range 6 {
		wg.Go(func() {
			h := []*store.DB{db, db2}[c%2]
			for {
				var js []margen.Job
				err := retry(func() error {
					var err error
					js, err = deliveryClaim(t, h, now, time.Minute, 7)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if len(js) == 0 {
					return
				}
				mu.Lock()
				for _, j := range js {
					claimed[j.UniqueKey]++
					if j.Attempts != 1 || j.OrgID != org.ID || string(j.Payload) != `{"delivery":"`+j.UniqueKey+`"}` {
						errs <- fmt.Errorf("claimed %+v", j)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != total {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(claimed), total)
	}
	for id, k := range claimed {
		if k != 1 {
			t.Fatalf("delivery %s claimed %d times", id, k)
		}
		d, err := db.DeliveryForAttempt(ctx, org.ID, id)
		if err != nil || d.URL != hook.URL || d.Secret != hook.Secret || d.Status != margen.DeliveryPending || len(d.Payload) == 0 {
			t.Fatalf("DeliveryForAttempt = %+v, %v", d, err)
		}
	}
	// All are leased: nothing more until the lease runs out.
	if js, err := deliveryClaim(t, db, now.Add(59*time.Second), time.Minute, 500); err != nil || len(js) != 0 {
		t.Fatalf("claim under lease = %d, %v", len(js), err)
	}
	js, err := deliveryClaim(t, db2, now.Add(time.Minute), time.Minute, 500)
	if err != nil || len(js) != total || js[0].Attempts != 2 {
		t.Fatalf("claim after the lease = %d, %v", len(js), err)
	}
	for i := 1; i < len(js); i++ {
		if js[i].RunAt.Before(js[i-1].RunAt) {
			t.Fatalf("claims not in due order")
		}
	}
}

func testDeliveryLifecycle(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, owner := newOrg(t, db, "delivery")
	ana := newMember(t, db, org.ID, "ana")
	hook := newWebhook(t, db, org.ID, margen.EventDecisionMade)
	announce(t, db, org.ID, ana.ID, margen.OutcomeAllowed)
	if n := dispatch(t, db, org.ID, 100); n != 1 {
		t.Fatalf("dispatch = %d", n)
	}
	now := time.Now().UTC().Truncate(time.Microsecond).Add(time.Second)
	claim := func(at time.Time, want int) []margen.Job {
		t.Helper()
		js, err := deliveryClaim(t, db, at, 30*time.Second, 10)
		if err != nil || len(js) != want {
			t.Fatalf("claim at %v = %d, %v; want %d", at.Sub(now), len(js), err, want)
		}
		return js
	}
	delivery := func(j margen.Job) *margen.Delivery {
		t.Helper()
		d, err := db.DeliveryForAttempt(ctx, org.ID, j.UniqueKey)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := claim(now, 1)[0]
	claim(now.Add(10*time.Second), 0) // leased
	second := claim(now.Add(31*time.Second), 1)[0]
	if first.ID != second.ID || first.Attempts != 1 || second.Attempts != 2 || first.LeaseOwner == second.LeaseOwner {
		t.Fatalf("claims = %+v / %+v", first, second)
	}
	if d := delivery(first); d.URL != hook.URL || d.Secret != hook.Secret || d.Attempts != 0 {
		t.Fatalf("delivery to send = %+v", d)
	}
	// The first worker's lease ran out: its failure is recorded but cannot
	// reschedule the delivery the second worker holds, nor its job.
	stale := now.Add(5 * time.Second)
	d1 := delivery(first)
	if err := db.FinishDelivery(ctx, d1, margen.DeliveryAttempt{At: now.Add(32 * time.Second), Error: "timeout", DurationMS: 30000},
		&first, margen.JobResult{At: now.Add(32 * time.Second), Error: "timeout", RetryAt: &stale}); err != nil {
		t.Fatal(err)
	}
	if d1.Status != margen.DeliveryPending || d1.Attempts != 1 || !d1.NextAt.Before(stale) {
		t.Fatalf("after a stale attempt = %+v", d1)
	}
	claim(now.Add(40*time.Second), 0)
	long := strings.Repeat("é", 1500) // 3000 bytes
	retryAt := now.Add(2 * time.Minute)
	d2 := delivery(second)
	if err := db.FinishDelivery(ctx, d2, margen.DeliveryAttempt{At: now.Add(33 * time.Second), StatusCode: 500,
		Response: long, DurationMS: 12}, &second, margen.JobResult{Error: "receiver answered 500", RetryAt: &retryAt}); err != nil {
		t.Fatal(err)
	}
	if d2.Status != margen.DeliveryPending || !d2.NextAt.Equal(retryAt) || d2.LastStatus != 500 || d2.Attempts != 2 {
		t.Fatalf("after a retryable failure = %+v", d2)
	}
	if j, err := db.GetJob(ctx, second.ID); err != nil || j.Status != margen.JobPending || !j.RunAt.Equal(retryAt) ||
		j.LastError != "receiver answered 500" || j.LeaseOwner != "" {
		t.Fatalf("job after a retryable failure = %+v, %v", j, err)
	}
	claim(now.Add(time.Minute), 0)
	third := claim(retryAt, 1)[0]
	if third.Attempts != 3 {
		t.Fatalf("third attempt = %+v", third)
	}
	d3 := delivery(third)
	if err := db.FinishDelivery(ctx, d3, margen.DeliveryAttempt{At: retryAt.Add(time.Second), StatusCode: 204, DurationMS: 3},
		&third, margen.JobResult{At: retryAt.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if d3.Status != margen.DeliveryDelivered {
		t.Fatalf("after success = %+v", d3)
	}
	if j, err := db.GetJob(ctx, third.ID); err != nil || j.Status != margen.JobDone || !j.FinishedAt.Equal(retryAt.Add(time.Second)) {
		t.Fatalf("job after success = %+v, %v", j, err)
	}
	g, err := db.GetDelivery(ctx, org.ID, d3.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Status != margen.DeliveryDelivered || g.Attempts != 3 || g.LastStatus != 204 || len(g.History) != 3 {
		t.Fatalf("delivered = %+v", g)
	}
	h := g.History
	if h[0].Error != "timeout" || h[0].StatusCode != 0 || h[1].StatusCode != 500 || len(h[1].Response) > 1024 ||
		!strings.HasPrefix(long, h[1].Response) || len(h[1].Response) < 1000 || h[1].DurationMS != 12 || h[2].StatusCode != 204 ||
		!h[2].At.Equal(retryAt.Add(time.Second)) {
		t.Fatalf("history = %+v", h)
	}
	claim(retryAt.Add(time.Hour), 0)
	if n, _ := db.PendingDeliveries(ctx); n != 0 {
		t.Fatalf("PendingDeliveries = %d", n)
	}
	if n, _ := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour)); n != 0 {
		t.Fatalf("PendingJobs = %d", n)
	}

	// Replay: queued again now with a fresh attempt budget, audited.
	r, err := db.ReplayDelivery(ctx, org.ID, g.ID, owner.ID, margen.SystemClock{}.Now())
	if err != nil || r.Status != margen.DeliveryPending || len(r.History) != 3 {
		t.Fatalf("replayed = %+v, %v", r, err)
	}
	if last := lastAudit(t, db, org.ID); last.Action != margen.ActionWebhookReplay || last.Subject != g.ID || last.Actor != owner.ID {
		t.Fatalf("audit = %+v", last)
	}
	again := claim(time.Now().Add(time.Second), 1)[0]
	if again.UniqueKey != g.ID || again.ID != third.ID || again.Attempts != 1 {
		t.Fatalf("claim after replay = %+v", again)
	}
	// Giving up: a transport error and no next attempt.
	da := delivery(again)
	if err := db.FinishDelivery(ctx, da, margen.DeliveryAttempt{Error: "connection refused"}, &again,
		margen.JobResult{Error: "connection refused"}); err != nil {
		t.Fatal(err)
	}
	if da.Status != margen.DeliveryFailed {
		t.Fatalf("given up = %+v", da)
	}
	if j, err := db.GetJob(ctx, again.ID); err != nil || j.Status != margen.JobDead || j.LastError != "connection refused" {
		t.Fatalf("dead job = %+v, %v", j, err)
	}
	failed := allDeliveries(t, db, org.ID, margen.DeliveryFilter{Status: margen.DeliveryFailed})
	if len(failed) != 1 || failed[0].LastStatus != 0 || failed[0].Attempts != 4 {
		t.Fatalf("failed = %+v", failed)
	}
	if n, _ := db.PendingDeliveries(ctx); n != 0 {
		t.Fatalf("PendingDeliveries = %d", n)
	}
	verifyAudit(t, db, org.ID)
}

// ApplyResolution resolves as the approval service does: the store applies
// the write approval.Resolve computes. A zero r.At is the present.
func ApplyResolution(ctx context.Context, db *store.DB, orgID string, r margen.Resolution, idem *margen.Idempotency) (*margen.Approval, error) {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	return db.ResolveApproval(ctx, orgID, r.ApprovalID, r.Level, approval.Resolver(r, idem))
}

// RequestException records an exception request as the approval service
// does: the store writes what approval.Exception computes. d and a are
// updated in place; a zero d.CreatedAt is the present.
func RequestException(ctx context.Context, db *store.DB, d *margen.Decision, a *margen.Approval, cus *margen.Customer, idem *margen.Idempotency) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	var w *margen.ExceptionWrite
	err := db.RequestException(ctx, d.OrgID, d.MemberID, func(st *margen.ExceptionState) (*margen.ExceptionWrite, error) {
		var err error
		w, err = approval.Exception(st, *d, *a, cus, idem)
		return w, err
	})
	if err != nil {
		return err
	}
	*d, *a = w.Decision, w.Approval
	return nil
}
