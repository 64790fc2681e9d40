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

// testClock is an injected clock that advances a microsecond per reading
// (so ids and times stay ordered) and can be moved forward.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

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
	ctx := ctxT(t)
	clk := &testClock{t: t0}
	f := &fixture{t: t, st: st, clock: clk, m: map[string]*margen.Member{}, observed: map[string]int{}}
	f.org = &margen.Org{ID: margen.NewID("org"), Slug: slug("o"), Name: "Test", Currency: "EUR",
		Timezone: "Europe/Madrid", Language: "es", CreatedAt: t0}
	owner := &margen.Member{ID: margen.NewID("mem"), OrgID: f.org.ID, Login: "owner", Name: "Owner",
		Access: margen.AccessOwner, Role: "manager", Active: true, CreatedAt: t0}
	if err := st.CreateOrg(ctx, f.org, owner, "test"); err != nil {
		t.Fatal(err)
	}
	f.m["owner"] = owner
	for _, x := range []struct{ login, access, role, team string }{
		{"mgr", margen.AccessManager, "manager", ""},
		{"sup", margen.AccessSupervisor, "supervisor", "a"},
		{"sup2", margen.AccessSupervisor, "supervisor", "b"},
		{"fl1", margen.AccessFrontline, "frontline", "a"},
		{"fl2", margen.AccessFrontline, "frontline", "a"},
		{"fl3", margen.AccessFrontline, "frontline", "c"},
	} {
		m := &margen.Member{ID: margen.NewID("mem"), OrgID: f.org.ID, Login: x.login, Name: x.login,
			Access: x.access, Role: x.role, Team: x.team, Active: true, CreatedAt: t0}
		if err := st.CreateMember(ctx, m, "test"); err != nil {
			t.Fatal(err)
		}
		f.m[x.login] = m
	}
	if err := st.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: f.org.ID, Source: src, CreatedBy: "test", CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	f.eng = decision.New(st, decision.Options{Clock: clk})
	t.Cleanup(f.eng.Close)
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
