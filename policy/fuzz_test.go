package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func addTestdataSeeds(f *testing.F) {
	f.Helper()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
}

// checkVerdict asserts what every verdict must satisfy.
func checkVerdict(t *testing.T, v Verdict, settled bool) {
	t.Helper()
	switch v.Outcome {
	case Allowed:
		if settled && !slices.Contains([]string{CodeWithinLatitude, CodeSoftOverMax, CodeSoftBudgetExceeded}, v.Code) {
			t.Fatalf("allowed with code %q", v.Code)
		}
		if !settled && v.Code != CodeUnsettled {
			t.Fatalf("phase-1 allowed with code %q", v.Code)
		}
		if v.Rule == "" {
			t.Fatal("allowed without a rule")
		}
	case NeedsApproval:
		if v.Route == nil || (v.Code != CodeOverMax && v.Code != CodeBudgetExhausted) {
			t.Fatalf("needs approval: route %v, code %q", v.Route, v.Code)
		}
	case Denied:
		if !slices.Contains([]string{CodeForbidden, CodeNoGrant, CodeConditionNotMet, CodeOverMax, CodeBudgetExhausted}, v.Code) {
			t.Fatalf("denied with code %q", v.Code)
		}
		if len(v.Charges) > 0 {
			t.Fatalf("denied with charges %+v", v.Charges)
		}
	default:
		t.Fatalf("outcome %q", v.Outcome)
	}
	keys := v.Keys()
	if !slices.IsSortedFunc(keys, compareKeys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Fatalf("keys not sorted and unique: %+v", keys)
	}
	for _, b := range v.Budgets {
		if b.Remaining < 0 || b.Remaining > b.Limit {
			t.Fatalf("budget state %+v", b)
		}
	}
}

func FuzzParse(f *testing.F) {
	addTestdataSeeds(f)
	f.Add([]byte(basePolicy))
	f.Add([]byte(""))
	f.Add([]byte("currency: COP\nactions: [\n"))
	f.Add([]byte("a: &x [*x, *x]\nb: *x\n"))
	f.Add([]byte("currency: !!binary Q09Q\n"))
	f.Add([]byte("<<: {currency: COP}\n"))
	// Hostile shapes: deep flow and block nesting, a long scalar, many
	// elements, nested aliases, a deep condition.
	f.Add([]byte(flowNest(MaxPolicyDepth + 8)))
	f.Add([]byte(blockNest(MaxPolicyDepth + 2)))
	f.Add([]byte("currency:\n" + strings.Repeat("- ", MaxPolicyDepth+2) + "x\n"))
	f.Add([]byte("currency: " + strings.Repeat("{a: ", MaxPolicyDepth) + "b" + strings.Repeat("}", MaxPolicyDepth) + "\n"))
	f.Add([]byte("currency: \"" + strings.Repeat("C", MaxScalarLen+1) + "\"\n"))
	f.Add([]byte("currency: COP\nx: [" + strings.Repeat("a,", MaxPolicyNodes/2) + "]\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"))
	f.Add([]byte("currency: " + strings.Repeat("%", 1000) + "\n"))
	f.Add([]byte(strings.Repeat("@`", 1000)))
	f.Add([]byte(strings.Replace(basePolicy, "'amount < 500'", "'"+strings.Repeat("(", 40)+"amount"+strings.Repeat(")", 40)+" < 500'", 1)))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse(src)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || p != nil {
				t.Fatalf("error %T %v, policy %v", err, err, p)
			}
			for _, e := range es {
				if e.Msg == "" {
					t.Fatalf("error without a message: %+v", e)
				}
			}
			return
		}
		// A policy that parses must evaluate any request without panicking.
		// The sample is kept small: every input is run thousands of times
		// while the fuzzer minimizes it.
		at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
		actions := p.Actions()
		roles := append(p.Roles(), Role{ID: "stranger"})
		for i, a := range actions {
			role := roles[i%len(roles)]
			for _, amount := range []int64{0, 1500000, MaxAmount} {
				if !a.Monetary && amount != 0 {
					continue
				}
				r := &Request{
					MemberID: "m", Role: role.ID, Team: "restaurante", CustomerID: "c",
					CustomerTags: []string{"vip"}, Action: a.ID, Amount: amount,
					Context: map[string]any{"order_total": 1000.0, "payment": "efectivo"}, At: at,
				}
				v, err := p.Evaluate(r)
				if err != nil {
					t.Fatalf("Evaluate(%+v): %v", r, err)
				}
				checkVerdict(t, v, false)
				checkVerdict(t, v.Settle(amount, func(BudgetKey) int64 { return 1000 }), true)
			}
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	p := mustParseFile(f, "testdata/restaurant.yaml")
	f.Add("frontline", "restaurante", "courtesy_gift", int64(1000000), "order_total", 2000000.0, "efectivo", int64(1764095400), "vip", false, int64(0))
	f.Add("supervisor", "restaurante", "refund", int64(500000), "payment", 1.0, "efectivo", int64(1764095400), "", true, int64(39500000))
	f.Add("agent", "contact-center", "delivery_credit", int64(100), "delay_minutes", 45.0, "telefono", int64(0), "empleado", false, int64(-5))
	f.Add("manager", "", "rule_exception", int64(0), "channel", 0.0, "telefono", int64(-62135596800), "x", true, int64(1<<62))
	var scratch Scratch // reused from one input to the next
	f.Fuzz(func(t *testing.T, role, team, action string, amount int64, key string, num float64, str string, unix int64, tag string, isNew bool, used int64) {
		r := &Request{
			MemberID: "m", MemberLogin: "l", Role: role, Team: team, CustomerID: "c",
			CustomerTags: []string{tag}, CustomerNew: isNew, Action: action, Amount: amount,
			Context: map[string]any{key: num, "payment": str, "channel": str},
			At:      time.Unix(unix, 0), Loc: time.FixedZone("X", int(unix%50000)),
		}
		v, err := p.Evaluate(r)
		a, known := p.Action(action)
		wantErr := !known || amount < 0 || amount > MaxAmount || (!a.Monetary && amount != 0) || r.At.IsZero() || len(tag) > MaxTagLen
		if (err != nil) != wantErr {
			t.Fatalf("Evaluate(%+v) error %v, want error: %v", r, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not match ErrInvalidRequest", err)
			}
			return
		}
		checkVerdict(t, v, false)
		s := v.Settle(amount, func(BudgetKey) int64 { return used })
		checkVerdict(t, s, true)
		w, err := p.EvaluateIn(r, &scratch)
		if err != nil {
			t.Fatal(err)
		}
		sameVerdict(t, v, w)
		sameVerdict(t, s, w.Settle(amount, func(BudgetKey) int64 { return used }))
		if s.Outcome == Allowed && s.Code == CodeWithinLatitude && amount > 0 && a.Monetary {
			for _, b := range s.Budgets {
				if b.Hard && b.Limit-b.Used < amount {
					t.Fatalf("allowed beyond a hard budget: %+v", b)
				}
			}
		}
	})
}
