package approval_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// testPolicy: frontline < supervisor < manager, each with its own latitude
// on refunds; above it, frontline goes to a supervisor (escalating to a
// manager after 10 minutes), a supervisor to a manager, a manager to the
// default route (another manager, then deny). Gifts above 100 are approved
// on timeout.
const testPolicy = `
currency: EUR
actions:
  - id: refund
    label: {es: "Reembolso", en: "Refund"}
  - id: gift
    label: {es: "Cortesía", en: "Gift"}
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: supervisor
    label: {es: "Supervisor", en: "Supervisor"}
    inherits: [frontline]
  - id: manager
    label: {es: "Gerente", en: "Manager"}
    inherits: [supervisor]
budgets:
  - id: member_daily
    scope: member
    period: day
    limit: 100000000
approval:
  approver: manager
  sla: 30m
  on_timeout: deny
grants:
  - id: refund_frontline
    role: frontline
    actions: [refund]
    max_amount: 1000
    budgets: [member_daily]
    above: {approver: supervisor, sla: 10m, on_timeout: escalate, escalate_to: manager}
  - id: refund_supervisor
    role: supervisor
    actions: [refund]
    max_amount: 5000
    budgets: [member_daily]
    above: {approver: manager, sla: 10m, on_timeout: deny}
  - id: refund_manager
    role: manager
    actions: [refund]
    max_amount: 20000
    budgets: [member_daily]
  - id: gift_frontline
    role: frontline
    actions: [gift]
    max_amount: 100
    budgets: [member_daily]
    above: {approver: supervisor, sla: 5m, on_timeout: approve}
`

// noDefaultPolicy has no default approval route: exceptions go to owner.
const noDefaultPolicy = `
currency: EUR
actions:
  - id: refund
    label: {es: "Reembolso", en: "Refund"}
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: manager
    label: {es: "Gerente", en: "Manager"}
    inherits: [frontline]
grants:
  - id: refund_frontline
    role: frontline
    actions: [refund]
    max_amount: 1000
    above: none
`

// t0 is the test clock's start: microsecond-precise, as both engines store.
var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// testClock is the shared test clock; newFixture's advances a microsecond
// per reading (so ids and times stay ordered) and can be moved forward.
type testClock = testsupport.Clock

type fixture struct {
	t     testing.TB
	st    *store.DB
	eng   *decision.Engine
	svc   *approval.Service
	clock *testClock
	org   *margen.Org
	m     map[string]*margen.Member // by login

	mu       sync.Mutex
	observed map[string]int
	notified int
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var seq struct {
	sync.Mutex
	n int
}

func slug(prefix string) string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.n)
}

// newFixture creates an organisation on st with the policy and the members
// owner (access owner, role manager), mgr (manager, no team), sup (team a),
// sup2 (team b), fl1 and fl2 (frontline, team a), fl3 (frontline, team c).
func newFixture(t testing.TB, st *store.DB, src string) *fixture {
	t.Helper()
	clk := testsupport.NewClock(t0, time.Microsecond)
	f := &fixture{t: t, st: st, clock: clk, observed: map[string]int{}}
	o := testsupport.NewOrg(t, st, testsupport.OrgOptions{Slug: slug("o"), At: t0, Policy: src,
		Owner: testsupport.Member{Login: "owner", Role: "manager"},
		Members: []testsupport.Member{
			{Login: "mgr", Access: margen.AccessManager, Role: "manager"},
			{Login: "sup", Access: margen.AccessSupervisor, Role: "supervisor", Team: "a"},
			{Login: "sup2", Access: margen.AccessSupervisor, Role: "supervisor", Team: "b"},
			{Login: "fl1", Access: margen.AccessFrontline, Role: "frontline", Team: "a"},
			{Login: "fl2", Access: margen.AccessFrontline, Role: "frontline", Team: "a"},
			{Login: "fl3", Access: margen.AccessFrontline, Role: "frontline", Team: "c"},
		}})
	f.org, f.m = o.Org, o.Members
	f.eng = testsupport.Engine(t, st, decision.Options{Clock: clk})
	f.svc = f.service(st, nil)
	return f
}

// service returns another approval service (as another process would run)
// on st; onObserve, when set, is called after each observation.
func (f *fixture) service(st *store.DB, onObserve func()) *approval.Service {
	return approval.New(st, f.eng, approval.Options{
		Clock: f.clock,
		Notify: func(string) {
			f.mu.Lock()
			f.notified++
			f.mu.Unlock()
		},
		Observe: func(org, kind string, secs float64) {
			f.mu.Lock()
			f.observed[kind]++
			f.mu.Unlock()
			if onObserve != nil {
				onObserve()
			}
		},
	})
}

// ask makes a decision for member login and returns it.
func (f *fixture) ask(login, action string, amount int64, ref string) *margen.Decision {
	f.t.Helper()
	res, err := f.eng.Decide(context.Background(), &decision.Request{Org: f.org, Member: f.m[login],
		Action: action, Amount: amount, Customer: decision.CustomerInput{Ref: ref}})
	if err != nil {
		f.t.Fatalf("decide %s %s %d: %v", login, action, amount, err)
	}
	return res.Decision
}

// request makes a decision that must need approval and returns its request.
func (f *fixture) request(login, action string, amount int64) *margen.Approval {
	f.t.Helper()
	d := f.ask(login, action, amount, "c-"+login)
	if d.Outcome != margen.OutcomeNeedsApproval {
		f.t.Fatalf("%s %s %d: outcome %s (%s), want needs_approval", login, action, amount, d.Outcome, d.Explanation.Code)
	}
	return f.approval(d.ApprovalID)
}

func (f *fixture) approval(id string) *margen.Approval {
	f.t.Helper()
	a, err := f.st.GetApprovalWithHistory(context.Background(), f.org.ID, id)
	if err != nil {
		f.t.Fatalf("get approval %s: %v", id, err)
	}
	return a
}

func (f *fixture) answer(login, id string, approve bool) (*margen.Approval, error) {
	return f.svc.Answer(context.Background(), f.org, f.m[login], id, approve, "", nil)
}

// balance returns the member_daily account of a member.
func (f *fixture) balance(login string) margen.Balance {
	f.t.Helper()
	accts, err := f.st.ListBudgets(context.Background(), f.org.ID, margen.BudgetFilter{BudgetID: "member_daily", Subject: f.m[login].ID})
	if err != nil {
		f.t.Fatal(err)
	}
	var b margen.Balance
	for _, a := range accts {
		b.Posted += a.Posted
		b.Pending += a.Pending
	}
	return b
}

func (f *fixture) checkLedger() {
	f.t.Helper()
	rep, err := f.st.CheckLedger(context.Background(), f.org.ID)
	if err != nil || !rep.OK() {
		f.t.Fatalf("ledger check: %v %+v", err, rep.Mismatches)
	}
	if broken, _, err := f.st.VerifyAudit(context.Background(), f.org.ID); err != nil || broken != 0 {
		f.t.Fatalf("audit chain: broken at %d, %v", broken, err)
	}
}

func wantErr(t testing.TB, err error, code, key string) *margen.Error {
	t.Helper()
	var e *margen.Error
	if !errors.As(err, &e) || e.Code != code || (key != "" && e.Key != key) {
		t.Fatalf("err = %v, want %s %s", err, code, key)
	}
	return e
}

func kinds(a *margen.Approval) []string {
	var out []string
	for _, e := range a.History {
		out = append(out, e.Kind)
	}
	return out
}

func count(a *margen.Approval, kind string) int {
	n := 0
	for _, e := range a.History {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// openPair opens two store handles on one database of the engine, as two
// processes would.
func openPair(t testing.TB, engine string) (*store.DB, *store.DB) {
	t.Helper()
	var dsn string
	if engine == store.EnginePostgres {
		dsn = storetest.PostgresURL(t)
	} else {
		dsn = storetest.SQLitePath(t)
	}
	open := func() *store.DB {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db, err := store.Open(ctx, dsn, store.Options{Migrate: true})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a := open()
	return a, open()
}
