package decision_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

const testPolicy = `
currency: EUR
actions:
  - id: courtesy_gift
    label: {es: "Cortesía", en: "Courtesy gift"}
  - id: refund
    label: {es: "Reembolso", en: "Refund"}
  - id: rule_exception
    label: {es: "Excepción", en: "Exception"}
    monetary: false
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: supervisor
    label: {es: "Supervisor", en: "Supervisor"}
    inherits: [frontline]
budgets:
  - id: member_daily
    scope: member
    period: day
    limit: 10000
grants:
  - id: gift
    role: frontline
    actions: [courtesy_gift]
    max_amount: 100
    budgets: [member_daily]
    above: none
  - id: refund_small
    role: frontline
    actions: [refund]
    max_amount: 2000
    above: {approver: supervisor, sla: 10m, on_timeout: deny}
forbid:
  - id: no_exceptions
    actions: [rule_exception]
    reason: {es: "No se hacen excepciones.", en: "No exceptions."}
`

type fixture struct {
	st     margen.Store
	eng    *decision.Engine
	org    *margen.Org
	member *margen.Member
}

func setup(t testing.TB, open func(testing.TB) margen.Store, src string) *fixture {
	t.Helper()
	st := open(t)
	o := testsupport.NewOrg(t, st, testsupport.OrgOptions{Policy: src, Owner: testsupport.Member{Role: "supervisor"},
		Members: []testsupport.Member{{Login: "ana"}}})
	eng := decision.New(st, decision.Options{})
	t.Cleanup(eng.Close)
	return &fixture{st: st, eng: eng, org: o.Org, member: o.Members["ana"]}
}

func engines(t testing.TB) []struct {
	name string
	open func(testing.TB) margen.Store
} {
	var out []struct {
		name string
		open func(testing.TB) margen.Store
	}
	for _, e := range storetest.Engines(t) {
		open := e.Open
		out = append(out, struct {
			name string
			open func(testing.TB) margen.Store
		}{e.Name, func(t testing.TB) margen.Store { return open(t) }})
	}
	return out
}

func (f *fixture) req(action string, amount int64, ref string) *decision.Request {
	return &decision.Request{Org: f.org, Member: f.member, Action: action, Amount: amount,
		Customer: decision.CustomerInput{Ref: ref}}
}

// TestBudgetNeverExceeded: 1,000 concurrent 37-unit decisions against a
// 10,000-unit budget allow exactly 270.
func TestBudgetNeverExceeded(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			f := setup(t, e.open, testPolicy)
			var allowed, denied atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 1000)
			for i := range 1000 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := f.eng.Decide(context.Background(), f.req("courtesy_gift", 37, fmt.Sprintf("c%d", i%50)))
					if err != nil {
						errs <- err
						return
					}
					switch res.Decision.Outcome {
					case margen.OutcomeAllowed:
						allowed.Add(1)
					case margen.OutcomeDenied:
						denied.Add(1)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if allowed.Load() != 270 || denied.Load() != 730 {
				t.Fatalf("allowed %d, denied %d; want 270 and 730", allowed.Load(), denied.Load())
			}
			accts, err := f.st.ListBudgets(context.Background(), f.org.ID, margen.BudgetFilter{BudgetID: "member_daily"})
			if err != nil {
				t.Fatal(err)
			}
			if len(accts) != 1 || accts[0].Posted != 270*37 || accts[0].Pending != 0 {
				t.Fatalf("accounts = %+v; want one with posted %d", accts, 270*37)
			}
			checkLedger(t, f)
		})
	}
}

func checkLedger(t testing.TB, f *fixture) {
	t.Helper()
	rep, err := f.st.CheckLedger(context.Background(), f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("ledger mismatches: %+v", rep.Mismatches)
	}
	broken, _, err := f.st.VerifyAudit(context.Background(), f.org.ID)
	if err != nil || broken != 0 {
		t.Fatalf("audit chain broken at %d (%v)", broken, err)
	}
}

func TestOutcomes(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			f := setup(t, e.open, testPolicy)
			ctx := context.Background()
			cases := []struct {
				action  string
				amount  int64
				outcome string
				code    string
				rule    string
			}{
				{"courtesy_gift", 100, margen.OutcomeAllowed, "within_latitude", "gift"},
				{"courtesy_gift", 101, margen.OutcomeDenied, "over_max", "gift"},
				{"refund", 2500, margen.OutcomeNeedsApproval, "over_max", "refund_small"},
				{"refund", 1500, margen.OutcomeAllowed, "within_latitude", "refund_small"},
				{"rule_exception", 0, margen.OutcomeDenied, "forbidden", "no_exceptions"},
			}
			for _, c := range cases {
				res, err := f.eng.Decide(ctx, f.req(c.action, c.amount, "cust-1"))
				if err != nil {
					t.Fatalf("%s %d: %v", c.action, c.amount, err)
				}
				d := res.Decision
				if d.Outcome != c.outcome || d.Explanation.Code != c.code || d.Rule != c.rule {
					t.Errorf("%s %d: got %s/%s/%s, want %s/%s/%s", c.action, c.amount,
						d.Outcome, d.Explanation.Code, d.Rule, c.outcome, c.code, c.rule)
				}
				if d.PolicyVersion != 1 {
					t.Errorf("policy version %d, want 1", d.PolicyVersion)
				}
				got, err := f.st.GetDecision(ctx, f.org.ID, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				switch c.outcome {
				case margen.OutcomeAllowed:
					if got.ActID == "" {
						t.Errorf("allowed decision without act")
					}
					if _, err := f.st.GetAct(ctx, f.org.ID, got.ActID); err != nil {
						t.Errorf("act: %v", err)
					}
				case margen.OutcomeNeedsApproval:
					a, err := f.st.GetApproval(ctx, f.org.ID, got.ApprovalID)
					if err != nil {
						t.Fatalf("approval: %v", err)
					}
					if a.ApproverRole != "supervisor" || a.Status != margen.ApprovalPending || a.Amount != c.amount {
						t.Errorf("approval = %+v", a)
					}
				case margen.OutcomeDenied:
					r, err := f.st.GetRefusal(ctx, f.org.ID, got.RefusalID)
					if err != nil {
						t.Fatalf("refusal: %v", err)
					}
					if r.Rule != c.rule {
						t.Errorf("refusal rule %q, want %q", r.Rule, c.rule)
					}
				}
			}
			// The allowed gift charged the member's daily budget.
			res, err := f.eng.Decide(ctx, f.req("courtesy_gift", 50, "cust-2"))
			if err != nil {
				t.Fatal(err)
			}
			if b := res.Decision.Budgets; len(b) != 1 || b[0].Used != 150 || b[0].Remaining != 9850 {
				t.Fatalf("budgets = %+v; want used 150, remaining 9850", b)
			}
			checkLedger(t, f)
		})
	}
}

func TestBadRequests(t *testing.T) {
	f := setup(t, func(t testing.TB) margen.Store { return storetest.OpenSQLite(t) }, testPolicy)
	ctx := context.Background()
	cases := []struct {
		name  string
		mod   func(*decision.Request)
		field string
	}{
		{"unknown action", func(r *decision.Request) { r.Action = "free_car" }, "action"},
		{"negative", func(r *decision.Request) { r.Amount = -1 }, "amount"},
		{"huge", func(r *decision.Request) { r.Amount = decision.MaxAmount + 1 }, "amount"},
		{"currency", func(r *decision.Request) { r.Currency = "USD" }, "currency"},
		{"no customer", func(r *decision.Request) { r.Customer.Ref = "" }, "customer.ref"},
		{"context not object", func(r *decision.Request) { r.Context = json.RawMessage(`[1]`) }, "context"},
		{"amount on non-monetary", func(r *decision.Request) { r.Action = "rule_exception"; r.Amount = 5 }, "amount"},
	}
	for _, c := range cases {
		r := f.req("courtesy_gift", 10, "c")
		c.mod(r)
		_, err := f.eng.Decide(ctx, r)
		var me *margen.Error
		if !errorAs(err, &me) || me.Code != margen.EINVALID || me.Field != c.field {
			t.Errorf("%s: err = %v; want invalid %s", c.name, err, c.field)
		}
	}
	list, err := f.st.ListDecisions(ctx, f.org.ID, margen.DecisionFilter{})
	if err != nil || len(list) != 0 {
		t.Fatalf("bad requests stored %d decisions (%v)", len(list), err)
	}
}

// TestIdempotency: the engine stores the record its caller renders from
// the decision, in the decision's transaction, and refuses a key recorded
// meanwhile (the caller replays the stored answer); an expired record gives
// its key up.
func TestIdempotency(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			f := setup(t, e.open, testPolicy)
			ctx := context.Background()
			idem := func(key string, expires time.Time) *margen.IdemWrite[*margen.Decision] {
				return &margen.IdemWrite[*margen.Decision]{
					Record: margen.Idempotency{OrgID: f.org.ID, MemberID: f.member.ID, Key: key, RequestHash: "h",
						ExpiresAt: expires},
					Respond: func(d *margen.Decision) ([]byte, error) { return []byte("answer " + d.ID), nil },
				}
			}
			far := time.Now().Add(time.Hour)
			r := f.req("courtesy_gift", 40, "c1")
			r.Idem = idem("k1", far)
			first, err := f.eng.Decide(ctx, r)
			if err != nil {
				t.Fatalf("first: %+v %v", first, err)
			}
			rec, err := f.st.Idempotency(ctx, f.org.ID, f.member.ID, "k1")
			if err != nil || string(rec.Response) != "answer "+first.Decision.ID || rec.RequestHash != "h" {
				t.Fatalf("stored record = %+v, %v", rec, err)
			}
			if _, err := f.eng.Decide(ctx, r); !margen.IsCode(err, margen.ECONFLICT) {
				t.Fatalf("retry: %v; want a conflict for the caller to replay", err)
			}
			// Across a restart: a new engine over the same store refuses too.
			eng2 := decision.New(f.st, decision.Options{})
			defer eng2.Close()
			if _, err := eng2.Decide(ctx, r); !margen.IsCode(err, margen.ECONFLICT) {
				t.Fatalf("retry after restart: %v", err)
			}
			// Concurrent duplicates: exactly one decision is recorded.
			var wg sync.WaitGroup
			ids := make(chan string, 20)
			for range 20 {
				wg.Go(func() {
					r := f.req("courtesy_gift", 10, "c2")
					r.Idem = idem("k2", far)
					res, err := f.eng.Decide(ctx, r)
					if err == nil {
						ids <- res.Decision.ID
					} else if margen.ErrorCode(err) != margen.ECONFLICT {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			close(ids)
			seen := map[string]bool{}
			for id := range ids {
				seen[id] = true
			}
			if len(seen) != 1 {
				t.Fatalf("concurrent duplicates produced %d distinct decisions", len(seen))
			}
			// An expired record frees its key.
			r3 := f.req("courtesy_gift", 5, "c3")
			r3.Idem = idem("k3", time.Now().Add(-time.Hour))
			if _, err := f.eng.Decide(ctx, r3); err != nil {
				t.Fatal(err)
			}
			r3.Idem = idem("k3", far)
			again, err := f.eng.Decide(ctx, r3)
			if err != nil {
				t.Fatalf("reusing an expired key: %v", err)
			}
			if rec, _ := f.st.Idempotency(ctx, f.org.ID, f.member.ID, "k3"); string(rec.Response) != "answer "+again.Decision.ID {
				t.Fatalf("record after reuse = %+v", rec)
			}
			list, _ := f.st.ListDecisions(ctx, f.org.ID, margen.DecisionFilter{})
			if len(list) != 4 {
				t.Fatalf("%d decisions stored, want 4", len(list))
			}
			checkLedger(t, f)
		})
	}
}

// TestPolicyChangeSeen: a version published behind the engine's back (by
// another process) is used by the next decision.
func TestPolicyChangeSeen(t *testing.T) {
	f := setup(t, func(t testing.TB) margen.Store { return storetest.OpenSQLite(t) }, testPolicy)
	ctx := context.Background()
	if _, err := f.eng.Decide(ctx, f.req("courtesy_gift", 10, "c")); err != nil {
		t.Fatal(err)
	}
	wider := replaceOnce(testPolicy, "max_amount: 100", "max_amount: 500")
	if err := f.st.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: f.org.ID, Source: wider, CreatedBy: "other",
		CreatedAt: margen.SystemClock{}.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := f.eng.Decide(ctx, f.req("courtesy_gift", 400, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision.PolicyVersion != 2 || res.Decision.Outcome != margen.OutcomeAllowed {
		t.Fatalf("decided with v%d: %s; want v2 allowed", res.Decision.PolicyVersion, res.Decision.Outcome)
	}
}

func TestExplainRecordsNothing(t *testing.T) {
	f := setup(t, func(t testing.TB) margen.Store { return storetest.OpenSQLite(t) }, testPolicy)
	ctx := context.Background()
	if _, err := f.eng.Decide(ctx, f.req("courtesy_gift", 60, "c")); err != nil {
		t.Fatal(err)
	}
	d, err := f.eng.Explain(ctx, f.req("courtesy_gift", 70, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "" || d.Outcome != margen.OutcomeAllowed || d.Budgets[0].Used != 130 {
		t.Fatalf("explain = %+v", d)
	}
	list, _ := f.st.ListDecisions(ctx, f.org.ID, margen.DecisionFilter{})
	if len(list) != 1 {
		t.Fatalf("explain recorded: %d decisions", len(list))
	}
}

func errorAs(err error, target **margen.Error) bool { return errors.As(err, target) }

func replaceOnce(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("replaceOnce: " + old + " not found")
	}
	return strings.Replace(s, old, new, 1)
}
