package policy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// wednesday is a plain lunchtime in Bogotá (Wednesday 2026-11-25 13:30).
var wednesday = time.Date(2026, 11, 25, 18, 30, 0, 0, time.UTC)

// req builds a request against the restaurant policy; opts adjust it.
func req(t *testing.T, role, team, action string, amount int64, opts ...func(*Request)) *Request {
	t.Helper()
	r := &Request{
		MemberID: "m1", MemberLogin: "lucia", Role: role, Team: team,
		CustomerID: "c1", CustomerRef: "3001234567",
		Action: action, Amount: amount,
		Context: map[string]any{},
		At:      wednesday,
		Loc:     mustLoc(t, "America/Bogota"),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func ctx(kv ...any) func(*Request) {
	return func(r *Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			r.Context[kv[i].(string)] = kv[i+1]
		}
	}
}

func tags(ts ...string) func(*Request) { return func(r *Request) { r.CustomerTags = ts } }

// usage is a fake ledger: budget id -> amount used, whatever the subject.
type usage map[string]int64

func (u usage) used(k BudgetKey) int64 { return u[k.BudgetID] }

// decide runs both phases, and checks that they say the same through a
// Scratch that decided another request before.
func decide(t *testing.T, p *Policy, r *Request, u usage) Verdict {
	t.Helper()
	v, err := p.Evaluate(r)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	v = v.Settle(r.Amount, u.used)
	var s Scratch
	// Leave a settled verdict in s: of the same request with other usage,
	// and (when p is the restaurant's) of a request with more charges.
	if w, err := p.EvaluateIn(r, &s); err == nil {
		w.Settle(r.Amount, func(BudgetKey) int64 { return 1 })
	}
	other := req(t, "manager", "restaurante", "courtesy_gift", 600000, ctx("order_total", 1e7))
	if w, err := p.EvaluateIn(other, &s); err == nil {
		w.Settle(other.Amount, nil)
	}
	sameVerdict(t, v, decideIn(t, p, r, u, &s))
	return v
}

// decideIn runs both phases in s.
func decideIn(t *testing.T, p *Policy, r *Request, u usage, s *Scratch) Verdict {
	t.Helper()
	v, err := p.EvaluateIn(r, s)
	if err != nil {
		t.Fatalf("EvaluateIn: %v", err)
	}
	return v.Settle(r.Amount, u.used)
}

// sameVerdict fails unless two verdicts say the same, wherever their
// slices live.
func sameVerdict(t testing.TB, want, got Verdict) {
	t.Helper()
	want.scratch, got.scratch = nil, nil
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("verdicts differ:\n%+v\n%+v", want, got)
	}
}

type want struct {
	outcome Outcome
	rule    string
	code    string
	max     int64
	flagged bool
}

func check(t *testing.T, v Verdict, w want) {
	t.Helper()
	if v.Outcome != w.outcome || v.Rule != w.rule || v.Code != w.code || v.Max != w.max || v.Flagged != w.flagged {
		t.Errorf("verdict %s rule=%s code=%s max=%d flagged=%v\n      want %s rule=%s code=%s max=%d flagged=%v\n(condition errors: %q)",
			v.Outcome, v.Rule, v.Code, v.Max, v.Flagged, w.outcome, w.rule, w.code, w.max, w.flagged, v.ConditionErrors)
	}
}

func budgetIDs(cs []Charge) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.Key.BudgetID)
	}
	return ids
}

func TestEvaluateRestaurant(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	defaultRoute := &Route{Approver: "supervisor", SLA: 10 * time.Minute, OnTimeout: OnTimeoutEscalate, EscalateTo: "manager"}
	breadRoute := &Route{Approver: "supervisor", SLA: 5 * time.Minute, OnTimeout: OnTimeoutDeny}
	tests := []struct {
		name    string
		r       *Request
		used    usage
		want    want
		charges []string // budget ids of Verdict.Charges
		route   *Route
	}{
		{
			name:    "courtesy within 150% of the order",
			r:       req(t, "frontline", "restaurante", "courtesy_gift", 1000000, ctx("order_total", 2000000.0)),
			want:    want{Allowed, "bread_basket", CodeWithinLatitude, 1500000, false},
			charges: []string{"member_daily", "customer_monthly"},
		},
		{
			name: "relative condition fails and the fallback grant is too small: approval",
			r:    req(t, "frontline", "restaurante", "courtesy_gift", 1000000, ctx("order_total", 500000.0)),
			want: want{NeedsApproval, "small_courtesy", CodeOverMax, 800000, false},
			// the approval holds the amount on the grant's budgets
			charges: []string{"member_daily"},
			route:   defaultRoute,
		},
		{
			name:    "relative condition fails, fallback grant covers it",
			r:       req(t, "frontline", "restaurante", "courtesy_gift", 700000, ctx("order_total", 400000.0)),
			want:    want{Allowed, "small_courtesy", CodeWithinLatitude, 800000, false},
			charges: []string{"member_daily"},
		},
		{
			name:    "above every hard max: the first holding grant's own route",
			r:       req(t, "frontline", "restaurante", "courtesy_gift", 2000000, ctx("order_total", 5000000.0)),
			want:    want{NeedsApproval, "bread_basket", CodeOverMax, 1500000, false},
			charges: []string{"member_daily", "customer_monthly"},
			route:   breadRoute,
		},
		{
			name:    "team restriction: contact centre gets only the general grant",
			r:       req(t, "frontline", "contact-center", "courtesy_gift", 500000, ctx("order_total", 5000000.0)),
			want:    want{Allowed, "small_courtesy", CodeWithinLatitude, 800000, false},
			charges: []string{"member_daily"},
		},
		{
			name: "forbid: no liquor as a courtesy",
			r:    req(t, "manager", "restaurante", "courtesy_gift", 500000, ctx("order_total", 5000000.0, "item_category", "licor")),
			want: want{Denied, "no_liquor_courtesy", CodeForbidden, 0, false},
		},
		{
			name: "forbid applies to inheritors: supervisor cash refund",
			r:    req(t, "supervisor", "restaurante", "refund", 500000, ctx("payment", "efectivo")),
			want: want{Denied, "no_cash_refunds", CodeForbidden, 0, false},
		},
		{
			name: "forbid applies to inheritors: manager cash refund",
			r:    req(t, "manager", "", "refund", 500000, ctx("payment", "efectivo")),
			want: want{Denied, "no_cash_refunds", CodeForbidden, 0, false},
		},
		{
			name:    "card refund by phone inside office hours",
			r:       req(t, "agent", "contact-center", "refund", 3000000, ctx("payment", "tarjeta", "channel", "telefono")),
			want:    want{Allowed, "phone_refund", CodeWithinLatitude, 5000000, false},
			charges: []string{"member_daily", "customer_monthly"},
		},
		{
			name: "forbid for every role: gifts to a co-worker",
			r:    req(t, "manager", "", "discount", 100, tags("frecuente", "empleado")),
			want: want{Denied, "no_gifts_to_staff", CodeForbidden, 0, false},
		},
		{
			name: "forbid for every role reaches a role the policy does not know",
			r:    req(t, "intern", "", "discount", 100, tags("empleado")),
			want: want{Denied, "no_gifts_to_staff", CodeForbidden, 0, false},
		},
		{
			name: "unknown role: no grant",
			r:    req(t, "intern", "", "discount", 100),
			want: want{Denied, "", CodeNoGrant, 0, false},
		},
		{
			name: "no grant for the action",
			r:    req(t, "frontline", "restaurante", "discount", 100),
			want: want{Denied, "", CodeNoGrant, 0, false},
		},
		{
			name: "no grant for the team",
			r:    req(t, "agent", "restaurante", "delivery_credit", 100, ctx("delay_minutes", 45)),
			want: want{Denied, "", CodeNoGrant, 0, false},
		},
		{
			name: "condition not met",
			r:    req(t, "agent", "contact-center", "delivery_credit", 1000000, ctx("delay_minutes", 10)),
			want: want{Denied, "late_delivery", CodeConditionNotMet, 0, false},
		},
		{
			name:    "condition met with an int context value",
			r:       req(t, "agent", "contact-center", "delivery_credit", 1000000, ctx("delay_minutes", 45)),
			want:    want{Allowed, "late_delivery", CodeWithinLatitude, 2500000, false},
			charges: []string{"member_daily", "customer_monthly"},
		},
		{
			name: "inherited grants: cashier discount for a VIP",
			r:    req(t, "cashier", "restaurante", "discount", 4000000, tags("vip")),
			want: want{Allowed, "vip_discount", CodeWithinLatitude, 5000000, false},
		},
		{
			name: "new customers count as VIP",
			r: req(t, "cashier", "restaurante", "discount", 4000000, func(r *Request) {
				r.CustomerNew = true
			}),
			want: want{Allowed, "vip_discount", CodeWithinLatitude, 5000000, false},
		},
		{
			name: "ordinary customer: only the smaller cashier grant, over it",
			r:    req(t, "cashier", "restaurante", "discount", 4000000, tags("frecuente")),
			want: want{NeedsApproval, "cashier_discount", CodeOverMax, 2000000, false},
		},
		{
			name: "soft max: allowed and flagged",
			r:    req(t, "frontline", "restaurante", "replacement", 4000000),
			want: want{Allowed, "replacement_dish", CodeSoftOverMax, 3000000, true},
		},
		{
			name: "soft max and then the hard daily budget: approval",
			r:    req(t, "frontline", "restaurante", "replacement", 4000000),
			used: usage{"member_daily": 3000000},
			want: want{NeedsApproval, "replacement_dish", CodeBudgetExhausted, 3000000, false},
		},
		{
			name: "soft budget exceeded: allowed and flagged",
			r:    req(t, "supervisor", "restaurante", "courtesy_gift", 10000000, ctx("order_total", 1e9)),
			used: usage{"team_monthly": 295000000},
			want: want{Allowed, "supervisor_money", CodeSoftBudgetExceeded, 20000000, true},
		},
		{
			name:    "hard budget exhausted on every candidate: the first candidate's route",
			r:       req(t, "frontline", "restaurante", "courtesy_gift", 500000, ctx("order_total", 1000000.0)),
			used:    usage{"member_daily": 5800000},
			want:    want{NeedsApproval, "bread_basket", CodeBudgetExhausted, 1500000, false},
			charges: []string{"member_daily", "customer_monthly"},
			route:   breadRoute,
		},
		{
			name:    "own grant's budget exhausted: falls through to an inherited grant",
			r:       req(t, "supervisor", "restaurante", "courtesy_gift", 1000000, ctx("order_total", 2000000.0)),
			used:    usage{"supervisor_daily": 39500000},
			want:    want{Allowed, "bread_basket", CodeWithinLatitude, 1500000, false},
			charges: []string{"member_daily", "customer_monthly"},
		},
		{
			name: "budget exhausted with above: none is denied",
			r:    req(t, "manager", "", "courtesy_gift", 50000000),
			used: usage{"org_monthly": 1990000000},
			want: want{Denied, "manager_all", CodeBudgetExhausted, 100000000, false},
		},
		{
			name: "above every max with above: none is denied",
			r:    req(t, "manager", "", "courtesy_gift", 200000000),
			want: want{Denied, "manager_all", CodeOverMax, 100000000, false},
		},
		{
			name: "non-monetary action on a weekday",
			r:    req(t, "cashier", "restaurante", "rule_exception", 0),
			want: want{Allowed, "weekday_exceptions", CodeWithinLatitude, 0, false},
		},
		{
			name: "non-monetary action on a Sunday",
			r: req(t, "cashier", "restaurante", "rule_exception", 0, func(r *Request) {
				r.At = time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
			}),
			want: want{Denied, "weekday_exceptions", CodeConditionNotMet, 0, false},
		},
		{
			name: "weekday is computed in the organisation's time zone",
			// Monday 02:00 UTC is still Sunday evening in Bogotá.
			r: req(t, "cashier", "restaurante", "rule_exception", 0, func(r *Request) {
				r.At = time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)
			}),
			want: want{Denied, "weekday_exceptions", CodeConditionNotMet, 0, false},
		},
		{
			name: "non-monetary action without a condition",
			r:    req(t, "agent", "contact-center", "priority_callback", 0),
			want: want{Allowed, "agent_callback", CodeWithinLatitude, 0, false},
		},
		{
			name: "zero amount on a monetary action charges nothing",
			r:    req(t, "frontline", "contact-center", "courtesy_gift", 0),
			used: usage{"member_daily": 6000000},
			want: want{Allowed, "small_courtesy", CodeWithinLatitude, 800000, false},
		},
		{
			name: "hour in the organisation's time zone: 21:00 in Bogotá",
			r: req(t, "agent", "contact-center", "refund", 100, ctx("payment", "tarjeta", "channel", "telefono"), func(r *Request) {
				r.At = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
			}),
			want:    want{Allowed, "phone_refund", CodeWithinLatitude, 5000000, false},
			charges: []string{"member_daily", "customer_monthly"},
		},
		{
			name: "hour without a time zone is UTC: 02:00, closed",
			r: req(t, "agent", "contact-center", "refund", 100, ctx("payment", "tarjeta", "channel", "telefono"), func(r *Request) {
				r.At = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
				r.Loc = nil
			}),
			want: want{Denied, "phone_refund", CodeConditionNotMet, 0, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := decide(t, p, tt.r, tt.used)
			check(t, v, tt.want)
			if tt.charges != nil {
				if got := budgetIDs(v.Charges); !slices.Equal(got, tt.charges) {
					t.Errorf("charges %q, want %q", got, tt.charges)
				}
			}
			if v.Outcome == NeedsApproval {
				if v.Route == nil {
					t.Fatal("needs approval without a route")
				}
				if tt.route != nil && *v.Route != *tt.route {
					t.Errorf("route %+v, want %+v", *v.Route, *tt.route)
				}
			} else if v.Route != nil {
				t.Errorf("route %+v on a %s verdict", *v.Route, v.Outcome)
			}
			if v.Outcome == Denied && v.Code != CodeBudgetExhausted && len(v.Charges) != 0 {
				t.Errorf("denied verdict with charges %+v", v.Charges)
			}
			if v.Code == CodeForbidden && (v.Reason["es"] == "" || v.Reason["en"] == "") {
				t.Errorf("forbidden without a reason: %+v", v.Reason)
			}
		})
	}
}

func TestEvaluateChargesAndBudgets(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	// Sunday 2026-11-29 22:00 in Bogotá is already Monday 03:00 UTC, in
	// ISO week 49 and, in UTC, still November.
	r := req(t, "frontline", "restaurante", "courtesy_gift", 1000000, ctx("order_total", 2000000.0), func(r *Request) {
		r.At = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	})
	v := decide(t, p, r, usage{"member_daily": 1000000, "customer_monthly": 14500000})
	// customer_monthly has only 500000 left: bread_basket cannot take it,
	// and small_courtesy is too small: budget exhausted.
	check(t, v, want{NeedsApproval, "bread_basket", CodeBudgetExhausted, 1500000, false})
	wantBudgets := []BudgetState{
		{Key: BudgetKey{"member_daily", "m1", "2026-11-29"}, Scope: ScopeMember, Period: PeriodDay, Limit: 6000000, Hard: true, Used: 1000000, Remaining: 4000000},
		{Key: BudgetKey{"customer_monthly", "c1", "2026-11"}, Scope: ScopeCustomer, Period: PeriodMonth, Limit: 15000000, Hard: true, Used: 14500000, Remaining: 0, Exceeded: true},
	}
	if !slices.Equal(v.Budgets, wantBudgets) {
		t.Errorf("budgets\n got %+v\nwant %+v", v.Budgets, wantBudgets)
	}

	v = decide(t, p, r, usage{"member_daily": 1000000})
	check(t, v, want{Allowed, "bread_basket", CodeWithinLatitude, 1500000, false})
	wantCharges := []Charge{
		{Key: BudgetKey{"member_daily", "m1", "2026-11-29"}, Scope: ScopeMember, Period: PeriodDay, Limit: 6000000, Hard: true},
		{Key: BudgetKey{"customer_monthly", "c1", "2026-11"}, Scope: ScopeCustomer, Period: PeriodMonth, Limit: 15000000, Hard: true},
	}
	if !slices.Equal(v.Charges, wantCharges) {
		t.Errorf("charges\n got %+v\nwant %+v", v.Charges, wantCharges)
	}
	if v.Budgets[0].Remaining != 4000000 || v.Budgets[1].Remaining != 14000000 {
		t.Errorf("remaining after the act: %+v", v.Budgets)
	}

	// Team and org subjects.
	r = req(t, "supervisor", "restaurante", "courtesy_gift", 10000000, ctx("order_total", 1e9))
	v = decide(t, p, r, nil)
	wantKeys := []BudgetKey{{"supervisor_daily", "m1", "2026-11-25"}, {"team_monthly", "restaurante", "2026-11"}}
	if got := v.Keys(); !slices.Equal(got, wantKeys) {
		t.Errorf("keys %+v, want %+v", got, wantKeys)
	}
	r = req(t, "manager", "", "courtesy_gift", 50000000)
	v = decide(t, p, r, nil)
	if got := v.Keys(); !slices.Equal(got, []BudgetKey{{"org_monthly", "org", "2026-11"}}) {
		t.Errorf("org keys %+v", got)
	}
}

func TestEvaluateCandidateOrderAndKeys(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	r := req(t, "supervisor", "restaurante", "courtesy_gift", 700000, ctx("order_total", 2000000.0))
	v, err := p.Evaluate(r)
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != Allowed || v.Code != CodeUnsettled {
		t.Fatalf("phase 1 verdict %s %s", v.Outcome, v.Code)
	}
	var rules []string
	for _, c := range v.Candidates {
		rules = append(rules, c.Rule)
	}
	// Own role first, then inherited ones by distance, then file order.
	if want := []string{"supervisor_money", "bread_basket", "small_courtesy"}; !slices.Equal(rules, want) {
		t.Errorf("candidates %q, want %q", rules, want)
	}
	wantKeys := []BudgetKey{
		{"customer_monthly", "c1", "2026-11"},
		{"member_daily", "m1", "2026-11-25"},
		{"supervisor_daily", "m1", "2026-11-25"},
		{"team_monthly", "restaurante", "2026-11"},
	}
	if got := v.Keys(); !slices.Equal(got, wantKeys) {
		t.Errorf("keys\n got %+v\nwant %+v", got, wantKeys)
	}
	// Settle tries them in order.
	for _, tt := range []struct {
		used usage
		rule string
		code string
	}{
		{nil, "supervisor_money", CodeWithinLatitude},
		{usage{"supervisor_daily": 39500000}, "bread_basket", CodeWithinLatitude},
		{usage{"supervisor_daily": 39500000, "customer_monthly": 14800000}, "small_courtesy", CodeWithinLatitude},
		{usage{"supervisor_daily": 39500000, "member_daily": 5800000}, "supervisor_money", CodeBudgetExhausted},
	} {
		got := v.Settle(r.Amount, tt.used.used)
		if got.Rule != tt.rule || got.Code != tt.code {
			t.Errorf("used %v: %s %s, want %s %s", tt.used, got.Rule, got.Code, tt.rule, tt.code)
		}
	}
	// Settle does not alter the phase-1 verdict it is called on.
	if v.Code != CodeUnsettled || v.Budgets != nil {
		t.Errorf("Settle mutated its receiver: %+v", v)
	}
}

func TestSettle(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	r := req(t, "frontline", "restaurante", "courtesy_gift", 1000000, ctx("order_total", 2000000.0))
	v, err := p.Evaluate(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("nil used means nothing spent", func(t *testing.T) {
		got := v.Settle(r.Amount, nil)
		check(t, got, want{Allowed, "bread_basket", CodeWithinLatitude, 1500000, false})
		if got.Budgets[0].Used != 0 || got.Budgets[0].Remaining != 5000000 {
			t.Errorf("budgets %+v", got.Budgets)
		}
	})
	t.Run("exactly the remaining amount fits", func(t *testing.T) {
		got := v.Settle(r.Amount, usage{"member_daily": 5000000}.used)
		check(t, got, want{Allowed, "bread_basket", CodeWithinLatitude, 1500000, false})
		if got.Budgets[0].Remaining != 0 {
			t.Errorf("budgets %+v", got.Budgets)
		}
	})
	t.Run("one unit more does not", func(t *testing.T) {
		got := v.Settle(r.Amount, usage{"member_daily": 5000001}.used)
		check(t, got, want{NeedsApproval, "bread_basket", CodeBudgetExhausted, 1500000, false})
	})
	t.Run("negative usage counts as zero", func(t *testing.T) {
		got := v.Settle(r.Amount, usage{"member_daily": -1 << 62}.used)
		check(t, got, want{Allowed, "bread_basket", CodeWithinLatitude, 1500000, false})
	})
	t.Run("overspent account floors remaining at zero", func(t *testing.T) {
		got := v.Settle(r.Amount, usage{"member_daily": 1 << 62}.used)
		if got.Budgets[0].Remaining != 0 || !got.Budgets[0].Exceeded {
			t.Errorf("budgets %+v", got.Budgets)
		}
	})
	t.Run("settling twice changes nothing", func(t *testing.T) {
		once := v.Settle(r.Amount, usage{"member_daily": 100}.used)
		twice := once.Settle(r.Amount, usage{"member_daily": 999999999}.used)
		if twice.Outcome != once.Outcome || twice.Code != once.Code || !slices.Equal(twice.Budgets, once.Budgets) {
			t.Errorf("second Settle changed the verdict: %+v -> %+v", once, twice)
		}
	})
	t.Run("denied verdict passes through", func(t *testing.T) {
		d, err := p.Evaluate(req(t, "frontline", "", "discount", 5))
		if err != nil {
			t.Fatal(err)
		}
		got := d.Settle(5, usage{}.used)
		if got.Outcome != Denied || got.Code != CodeNoGrant || got.Budgets != nil {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("over-max approval gets its budgets described", func(t *testing.T) {
		r := req(t, "frontline", "restaurante", "courtesy_gift", 2000000, ctx("order_total", 5000000.0))
		a, err := p.Evaluate(r)
		if err != nil {
			t.Fatal(err)
		}
		got := a.Settle(r.Amount, usage{"member_daily": 100}.used)
		check(t, got, want{NeedsApproval, "bread_basket", CodeOverMax, 1500000, false})
		if len(got.Budgets) != 2 || got.Budgets[0].Used != 100 {
			t.Errorf("budgets %+v", got.Budgets)
		}
		if keys := a.Keys(); len(keys) != 2 {
			t.Errorf("keys %+v", keys)
		}
	})
}

func TestEvaluateConditionErrors(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	t.Run("missing key in a grant condition", func(t *testing.T) {
		v := decide(t, p, req(t, "agent", "contact-center", "delivery_credit", 1000000), nil)
		check(t, v, want{Denied, "late_delivery", CodeConditionNotMet, 0, false})
		if len(v.ConditionErrors) != 1 || !strings.HasPrefix(v.ConditionErrors[0], "late_delivery: ") || !strings.Contains(v.ConditionErrors[0], "delay_minutes") {
			t.Errorf("condition errors %q", v.ConditionErrors)
		}
	})
	t.Run("missing key in a forbid condition forbids (fails closed)", func(t *testing.T) {
		v := decide(t, p, req(t, "agent", "contact-center", "refund", 100, ctx("channel", "telefono")), nil)
		check(t, v, want{Denied, "no_cash_refunds", CodeForbidden, 0, false})
		if len(v.ConditionErrors) != 1 || !strings.HasPrefix(v.ConditionErrors[0], "no_cash_refunds: ") {
			t.Errorf("condition errors %q", v.ConditionErrors)
		}
	})
	t.Run("wrong type in context", func(t *testing.T) {
		v := decide(t, p, req(t, "frontline", "restaurante", "courtesy_gift", 100, ctx("order_total", "mucho")), nil)
		check(t, v, want{Allowed, "small_courtesy", CodeWithinLatitude, 800000, false})
		if len(v.ConditionErrors) != 1 || !strings.HasPrefix(v.ConditionErrors[0], "bread_basket: ") {
			t.Errorf("condition errors %q", v.ConditionErrors)
		}
	})
	t.Run("nil context", func(t *testing.T) {
		v := decide(t, p, req(t, "frontline", "restaurante", "courtesy_gift", 100, func(r *Request) { r.Context = nil }), nil)
		check(t, v, want{Allowed, "small_courtesy", CodeWithinLatitude, 800000, false})
		if len(v.ConditionErrors) != 1 {
			t.Errorf("condition errors %q", v.ConditionErrors)
		}
	})
}

func TestEvaluateInvalidRequests(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	tests := []struct {
		name  string
		r     *Request
		err   error
		field string
	}{
		{"nil", nil, ErrNilRequest, ""},
		{"unknown action", req(t, "frontline", "", "teleport", 0), ErrUnknownAction, "action"},
		{"empty action", req(t, "frontline", "", "", 0), ErrUnknownAction, "action"},
		{"negative amount", req(t, "frontline", "", "courtesy_gift", -1), ErrNegativeAmount, "amount"},
		{"amount too large", req(t, "frontline", "", "courtesy_gift", MaxAmount+1), ErrAmountTooLarge, "amount"},
		{"amount on a non-monetary action", req(t, "frontline", "", "rule_exception", 1), ErrNonMonetaryAmount, "amount"},
		{"no decision time", req(t, "frontline", "", "courtesy_gift", 1, func(r *Request) { r.At = time.Time{} }), ErrZeroTime, "at"},
		{"too many tags", req(t, "frontline", "", "courtesy_gift", 1, tags(make([]string, MaxCustomerTags+1)...)), ErrTooManyTags, "customer_tags"},
		{"tag too long", req(t, "frontline", "", "courtesy_gift", 1, tags(strings.Repeat("x", MaxTagLen+1))), ErrTooManyTags, "customer_tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := p.Evaluate(tt.r)
			if !errors.Is(err, tt.err) || !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v, want %v (and ErrInvalidRequest)", err, tt.err)
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Field != tt.field {
				t.Errorf("err = %#v, want a RequestError on %q", err, tt.field)
			}
			if v.Outcome != "" {
				t.Errorf("verdict %+v with an error", v)
			}
		})
	}
	// The largest amount is valid.
	if _, err := p.Evaluate(req(t, "manager", "", "courtesy_gift", MaxAmount)); err != nil {
		t.Errorf("MaxAmount: %v", err)
	}
}

// condPolicy wraps one condition in a grant, to test what CEL sees.
func condPolicy(t *testing.T, when string) *Policy {
	t.Helper()
	return mustParse(t, `currency: EUR
actions:
  - id: gift
    label: {es: Regalo, en: Gift}
roles:
  - id: staff
    label: {es: Personal, en: Staff}
grants:
  - id: g
    role: staff
    actions: [gift]
    max_amount: 1000
    when: '`+strings.ReplaceAll(when, "'", "''")+`'
`)
}

func TestConditionVariables(t *testing.T) {
	madrid := mustLoc(t, "Europe/Madrid")
	r := &Request{
		MemberID: "m-7", MemberLogin: "ana", Role: "staff", Team: "sala",
		CustomerID: "c-3", CustomerRef: "ref-9", CustomerTags: []string{"vip", "celiaco"}, CustomerNew: true,
		Action: "gift", Amount: 250,
		Context: map[string]any{"order_total": 1200.0, "items": []any{"pan", "vino"}, "party": 4, "nested": map[string]any{"k": "v"}},
		At:      time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC), // Sunday 01:30 CET, before the DST switch
		Loc:     madrid,
	}
	tests := []struct {
		when string
		want bool
	}{
		{`member.id == "m-7" && member.login == "ana" && member.role == "staff" && member.team == "sala"`, true},
		{`member.login.startsWith("a")`, true},
		{`has(member.team)`, true},
		{`has(member.salary)`, false},
		{`member.size() == 4`, true},
		{`"role" in member`, true},
		{`member["team"] == "sala"`, true},
		{`customer.id == "c-3" && customer.ref == "ref-9" && customer.new`, true},
		{`"vip" in customer.tags`, true},
		{`"oro" in customer.tags`, false},
		{`customer.tags.size() == 2 && size(customer.tags) == 2`, true},
		{`customer.tags.exists(t, t.startsWith("celi"))`, true},
		{`customer.tags[0] == "vip"`, true},
		{`customer.tags == ["vip", "celiaco"]`, true},
		{`customer.tags + ["x"] == ["vip", "celiaco", "x"]`, true},
		{`customer.size() == 4`, true},
		{`customer == {"id": "c-3", "ref": "ref-9", "tags": ["vip", "celiaco"], "new": true}`, true},
		{`action == "gift" && amount == 250`, true},
		{`amount * 100 <= int(context.order_total) * 150`, true},
		{`amount <= context.order_total`, true}, // int vs double comparison
		{`context.party == 4`, true},
		{`"vino" in context.items`, true},
		{`context.nested.k == "v"`, true},
		{`has(context.coupon)`, false},
		{`hour == 1 && weekday == 7`, true},
		{`member.all(k, k in ["id", "login", "role", "team"])`, true},
		{`member == {"id": "m-7", "login": "ana", "role": "staff", "team": "sala"}`, true},
		{`type(member) == map && type(customer) == map && type(customer.tags) == list`, true},
		{`customer.exists(k, k == "tags") && customer["new"]`, true},
		{`customer.tags.all(t, t.size() > 2)`, true},
		{`1 in customer.tags`, false},
		{`customer.tags.map(t, t + "!") == ["vip!", "celiaco!"]`, true},
		{`dyn(customer.tags)[1] == "celiaco"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			p := condPolicy(t, tt.when)
			v, err := p.Evaluate(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Outcome == Allowed; got != tt.want || len(v.ConditionErrors) > 0 {
				t.Errorf("condition = %v (%s, errors %q), want %v", got, v.Code, v.ConditionErrors, tt.want)
			}
		})
	}
}

func TestConditionCostLimit(t *testing.T) {
	p := condPolicy(t, `context.items.all(a, context.items.all(b, context.items.all(c, a + b + c >= 0)))`)
	items := make([]any, 200)
	for i := range items {
		items[i] = i
	}
	r := &Request{Role: "staff", Action: "gift", Amount: 1, Context: map[string]any{"items": items}, At: wednesday}
	// 200³ steps unbounded; the verdict names the cost limit that stopped
	// it (no stopwatch: a loaded machine must not fail this test).
	v, err := p.Evaluate(r)
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != Denied || v.Code != CodeConditionNotMet || len(v.ConditionErrors) != 1 || !strings.Contains(v.ConditionErrors[0], "cost limit") {
		t.Errorf("verdict %+v", v)
	}
}

func TestInheritanceOrderAndDiamonds(t *testing.T) {
	p := mustParse(t, `currency: MXN
actions:
  - id: gift
    label: {es: Regalo, en: Gift}
roles:
  - id: base
    label: {es: Base, en: Base}
  - id: left
    label: {es: Izquierda, en: Left}
    inherits: [base]
  - id: right
    label: {es: Derecha, en: Right}
    inherits: [base]
  - id: top
    label: {es: Arriba, en: Top}
    inherits: [right, left]
grants:
  - id: g_base
    role: base
    actions: ["*"]
    max_amount: 10
  - id: g_left
    role: left
    actions: [gift]
    max_amount: 20
  - id: g_top
    role: top
    actions: [gift]
    max_amount: 5
  - id: g_right
    role: right
    actions: [gift]
    max_amount: 30
  - id: g_base_team
    role: base
    teams: [norte]
    actions: [gift]
    max_amount: 40
`)
	if got, want := p.RolesReaching("top"), []string{"top", "right", "left", "base"}; !slices.Equal(got, want) {
		t.Errorf("RolesReaching(top) = %q, want %q", got, want)
	}
	v, err := p.Evaluate(&Request{Role: "top", Team: "norte", Action: "gift", Amount: 1, At: wednesday})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, c := range v.Candidates {
		rules = append(rules, c.Rule)
	}
	if want := []string{"g_top", "g_right", "g_left", "g_base", "g_base_team"}; !slices.Equal(rules, want) {
		t.Errorf("candidates %q, want %q", rules, want)
	}
	// Above g_top's max, the next grant in line decides.
	v = decide(t, p, &Request{Role: "top", Action: "gift", Amount: 25, At: wednesday}, nil)
	check(t, v, want{Allowed, "g_right", CodeWithinLatitude, 30, false})
	// A role does not get the grants of roles inheriting from it.
	v = decide(t, p, &Request{Role: "base", Action: "gift", Amount: 15, At: wednesday}, nil)
	check(t, v, want{Denied, "g_base", CodeOverMax, 10, false})
}

func TestEvaluateConcurrent(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				amount := int64(100000 * (i%20 + g))
				r := req(t, "supervisor", "restaurante", "courtesy_gift", amount, ctx("order_total", float64(amount)), tags("vip"))
				v, err := p.Evaluate(r)
				if err != nil {
					t.Error(err)
					return
				}
				v = v.Settle(amount, nil)
				if v.Outcome != Allowed || len(v.ConditionErrors) > 0 {
					t.Errorf("amount %d: %+v", amount, v)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestForbidScopesAndDefaultRoutes(t *testing.T) {
	src := strings.Replace(basePolicy, "    when: 'hour < 6'\n", "    roles: [boss]\n", 1)
	src = strings.Replace(src, "approval:\n  approver: boss\n  sla: 10m\n  on_timeout: deny\n", "", 1)
	p := mustParse(t, src)
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

	// A forbid for boss does not reach staff, whom boss inherits from.
	v := decide(t, p, &Request{Role: "staff", Action: "waive", At: at}, nil)
	check(t, v, want{Allowed, "waivers", CodeWithinLatitude, 0, false})
	v = decide(t, p, &Request{Role: "boss", Action: "waive", At: at}, nil)
	check(t, v, want{Denied, "no_waive_at_night", CodeForbidden, 0, false})
	if v.Reason["en"] != "Not at night" {
		t.Errorf("reason %v", v.Reason)
	}
	// Without a default approval route, over max is a plain denial.
	v = decide(t, p, &Request{MemberID: "m", Role: "boss", Action: "gift", Amount: 101, At: at}, nil)
	check(t, v, want{Denied, "small_gift", CodeOverMax, 100, false})
	if v.Route != nil || v.Charges != nil {
		t.Errorf("route %v charges %v", v.Route, v.Charges)
	}
	// ... and so is an exhausted budget.
	v = decide(t, p, &Request{MemberID: "m", Role: "staff", Action: "gift", Amount: 100, At: at}, usage{"daily": 950})
	check(t, v, want{Denied, "small_gift", CodeBudgetExhausted, 100, false})
	if len(v.Budgets) != 1 || v.Budgets[0].Remaining != 50 || !v.Budgets[0].Exceeded {
		t.Errorf("budgets %+v", v.Budgets)
	}
}

func TestWeeklyBudgetsAndRequestErrorText(t *testing.T) {
	src := strings.Replace(basePolicy, "    period: day\n", "    period: week\n", 1)
	p := mustParse(t, src)
	madrid := mustLoc(t, "Europe/Madrid")
	// Sunday 2026-11-29 23:30 UTC is Monday 00:30 in Madrid: the next ISO week.
	r := &Request{MemberID: "m", Role: "staff", Action: "gift", Amount: 10, At: time.Date(2026, 11, 29, 23, 30, 0, 0, time.UTC), Loc: madrid}
	v := decide(t, p, r, nil)
	if got := v.Keys(); !slices.Equal(got, []BudgetKey{{"daily", "m", "2026-W49"}}) {
		t.Errorf("keys %+v", got)
	}
	r.Loc = nil
	if got := decide(t, p, r, nil).Keys(); !slices.Equal(got, []BudgetKey{{"daily", "m", "2026-W48"}}) {
		t.Errorf("keys in UTC %+v", got)
	}
	_, err := p.Evaluate(&Request{Role: "staff", Action: "gift", Amount: -3, At: r.At})
	if err == nil || err.Error() != "amount: negative amount" {
		t.Errorf("error text %v", err)
	}
	_, err = p.Evaluate(nil)
	if err == nil || err.Error() != "nil request" {
		t.Errorf("error text %v", err)
	}
}

// TestDayKeyCache: the day key Evaluate reuses between requests follows
// the request's day and time zone (the cache holds one day at a time).
func TestDayKeyCache(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	bogota, madrid := mustLoc(t, "America/Bogota"), mustLoc(t, "Europe/Madrid")
	at := time.Date(2026, 11, 30, 23, 30, 0, 0, bogota) // 1 December in Madrid
	for _, c := range []struct {
		at  time.Time
		loc *time.Location
	}{
		{at, bogota}, {at, bogota}, {at, madrid}, {at, bogota}, {at.Add(time.Hour), bogota},
		{at.AddDate(0, 0, -1), bogota}, {at, nil},
	} {
		r := &Request{MemberID: "m-17", Role: "frontline", Team: "restaurante", CustomerID: "c-9",
			Action: "courtesy_gift", Amount: 1000, Context: map[string]any{"order_total": 4800000.0},
			At: c.at, Loc: c.loc}
		v, err := p.Evaluate(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Candidates) == 0 || len(v.Candidates[0].Charges) != 2 {
			t.Fatalf("verdict %+v: want a candidate with two charges", v)
		}
		for _, ch := range v.Candidates[0].Charges {
			if want := PeriodKey(ch.Period, c.at, c.loc); ch.Key.Period != want {
				t.Errorf("%s in %v: %s period %q, want %q", c.at, c.loc, ch.Key.BudgetID, ch.Key.Period, want)
			}
		}
	}
}

// TestScratch: a verdict in a Scratch is the verdict Evaluate gives, the
// Scratch serves one request after another, and settling one verdict twice
// leaves the first settlement as it was.
func TestScratch(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	var s Scratch
	reqs := []*Request{
		req(t, "frontline", "restaurante", "courtesy_gift", 700000, ctx("order_total", 4800000.0), tags("frecuente")),
		req(t, "supervisor", "restaurante", "courtesy_gift", 30000000, ctx("order_total", 1e8)), // over_max, to a manager
		req(t, "frontline", "restaurante", "courtesy_gift", 700000, tags("empleado")),           // forbidden
		req(t, "manager", "", "discount", 100, tags("vip")),                                     // four candidates
		req(t, "agent", "contact-center", "priority_callback", 0),
	}
	for _, u := range []usage{nil, {"member_daily": 5900000}, {"member_daily": 6000000, "supervisor_daily": 4e7, "org_monthly": 2e9}} {
		for _, r := range reqs {
			v, err := p.Evaluate(r)
			if err != nil {
				t.Fatal(err)
			}
			sameVerdict(t, v.Settle(r.Amount, u.used), decideIn(t, p, r, u, &s))
		}
	}

	r := reqs[0]
	v, err := p.EvaluateIn(r, &s)
	if err != nil {
		t.Fatal(err)
	}
	first := v.Settle(r.Amount, usage{"member_daily": 100}.used)
	again := v.Settle(r.Amount, usage{"member_daily": 200}.used)
	if first.Budgets[0].Used != 100 || again.Budgets[0].Used != 200 {
		t.Fatalf("settled twice: %+v then %+v", first.Budgets, again.Budgets)
	}
}

// TestScratchOverflow: a verdict with more candidates, charges or budget
// states than a Scratch holds is the same verdict, in memory of its own.
func TestScratchOverflow(t *testing.T) {
	src := `currency: EUR
actions:
  - id: gift
    label: {es: Regalo, en: Gift}
roles:
  - id: staff
    label: {es: Personal, en: Staff}
budgets:
`
	for i := range 5 {
		src += fmt.Sprintf("  - {id: b%d, scope: member, period: day, limit: %d}\n", i, 1000*(i+1))
	}
	src += "grants:\n"
	for i := range 6 {
		src += fmt.Sprintf("  - {id: g%d, role: staff, actions: [gift], max_amount: 100000, budgets: [b0, b1, b2, b3, b4]}\n", i)
	}
	p := mustParse(t, src)
	var s Scratch
	for _, amount := range []int64{1, 1500, 9000} {
		r := &Request{MemberID: "m", Role: "staff", Action: "gift", Amount: amount, At: wednesday}
		v, err := p.Evaluate(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Candidates) != 6 {
			t.Fatalf("%d candidates, want 6", len(v.Candidates))
		}
		got := decideIn(t, p, r, nil, &s)
		sameVerdict(t, v.Settle(amount, nil), got)
		if len(got.Budgets) != 5 {
			t.Fatalf("amount %d: budgets %+v", amount, got.Budgets)
		}
	}
}

// TestEvaluateInDoesNotAllocate guards what BenchmarkEvaluate measures: a
// verdict decided in a Scratch with native conditions allocates nothing.
func TestEvaluateInDoesNotAllocate(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	r := req(t, "frontline", "restaurante", "courtesy_gift", 700000, ctx("order_total", 4800000.0, "payment", "tarjeta"), tags("frecuente"))
	var s Scratch
	used := func(BudgetKey) int64 { return 1200000 }
	n := testing.AllocsPerRun(100, func() {
		v, err := p.EvaluateIn(r, &s)
		if err != nil {
			t.Fatal(err)
		}
		if v = v.Settle(r.Amount, used); v.Outcome != Allowed || len(v.Budgets) != 2 {
			t.Fatalf("verdict %+v", v)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per decision, want 0", n)
	}

	// A weekly budget's key comes from the day cache too.
	p = mustParse(t, strings.Replace(basePolicy, "    period: day\n", "    period: week\n", 1))
	r = &Request{MemberID: "m", Role: "staff", Action: "gift", Amount: 10, At: wednesday}
	n = testing.AllocsPerRun(100, func() {
		v, err := p.EvaluateIn(r, &s)
		if err != nil {
			t.Fatal(err)
		}
		if v = v.Settle(r.Amount, nil); v.Outcome != Allowed || len(v.Budgets) != 1 || v.Budgets[0].Key.Period != "2026-W48" {
			t.Fatalf("verdict %+v", v)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per weekly decision, want 0", n)
	}
}

// TestLookupScanAndMap: actions and roles are found alike whether the
// policy has few (scanned) or many (looked up in a map).
func TestLookupScanAndMap(t *testing.T) {
	for _, n := range []int{1, scanMax - 1, scanMax, scanMax + 1, 30} {
		src := "currency: EUR\nactions:\n"
		for i := range n {
			src += fmt.Sprintf("  - {id: a%d, label: {es: A, en: A}}\n", i)
		}
		src += "roles:\n"
		for i := range n {
			src += fmt.Sprintf("  - {id: r%d, label: {es: R, en: R}}\n", i)
		}
		src += "grants:\n"
		for i := range n {
			src += fmt.Sprintf("  - {id: g%d, role: r%d, actions: [a%d], max_amount: 10}\n", i, i, i)
		}
		p := mustParse(t, src)
		for i := range n {
			for _, j := range []int{i, (i + 1) % n} {
				r := &Request{Role: fmt.Sprint("r", i), Action: fmt.Sprint("a", j), Amount: 1, At: wednesday}
				v := decide(t, p, r, nil)
				switch {
				case i == j && (v.Outcome != Allowed || v.Rule != fmt.Sprint("g", i)):
					t.Fatalf("%d: %+v: verdict %+v", n, r, v)
				case i != j && v.Code != CodeNoGrant:
					t.Fatalf("%d: %+v: verdict %+v", n, r, v)
				}
			}
		}
		if v := decide(t, p, &Request{Role: "nobody", Action: "a0", At: wednesday}, nil); v.Code != CodeNoGrant {
			t.Errorf("%d: unknown role: %+v", n, v)
		}
		if _, err := p.Evaluate(&Request{Role: "r0", Action: "a", At: wednesday}); !errors.Is(err, ErrUnknownAction) {
			t.Errorf("%d: unknown action: %v", n, err)
		}
	}
}
