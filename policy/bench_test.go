package policy

import (
	"os"
	"testing"
	"time"
)

// BenchmarkEvaluate decides a courtesy at a restaurant table against the
// example policy: three forbid conditions, a relative condition on the
// order, two candidate grants and two budgets, then Settle. It reuses one
// Scratch, as the decision engine does across a batch.
func BenchmarkEvaluate(b *testing.B) {
	benchmarkEvaluate(b, new(Scratch))
}

// BenchmarkEvaluateNoScratch is BenchmarkEvaluate through Evaluate, which
// allocates the verdict's memory.
func BenchmarkEvaluateNoScratch(b *testing.B) {
	benchmarkEvaluate(b, nil)
}

func benchmarkEvaluate(b *testing.B, s *Scratch) {
	p := mustParseFile(b, "testdata/restaurant.yaml")
	bogota := mustLoc(b, "America/Bogota")
	r := &Request{
		MemberID: "m-17", MemberLogin: "lucia", Role: "frontline", Team: "restaurante",
		CustomerID: "c-9", CustomerTags: []string{"frecuente"},
		Action: "courtesy_gift", Amount: 700000,
		Context: map[string]any{"order_total": 4800000.0, "payment": "tarjeta"},
		At:      time.Date(2026, 11, 25, 13, 30, 0, 0, bogota),
		Loc:     bogota,
	}
	used := func(BudgetKey) int64 { return 1200000 }
	b.ReportAllocs()
	for b.Loop() {
		v, err := p.EvaluateIn(r, s)
		if err != nil {
			b.Fatal(err)
		}
		v = v.Settle(r.Amount, used)
		if v.Outcome != Allowed {
			b.Fatalf("outcome %s %s", v.Outcome, v.Code)
		}
	}
}

// BenchmarkEvaluateNoConditions measures the structural path alone: a
// cashier discount where no rule has a condition left to run.
func BenchmarkEvaluateNoConditions(b *testing.B) {
	p := mustParseFile(b, "testdata/restaurant.yaml")
	r := &Request{
		MemberID: "m-3", Role: "agent", Team: "contact-center", CustomerID: "c-1",
		Action: "priority_callback", At: time.Date(2026, 11, 25, 13, 30, 0, 0, time.UTC),
	}
	b.ReportAllocs()
	for b.Loop() {
		v, _ := p.Evaluate(r)
		v = v.Settle(0, nil)
		if v.Outcome != Allowed {
			b.Fatalf("outcome %s %s", v.Outcome, v.Code)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile("testdata/restaurant.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPeriodKey(b *testing.B) {
	madrid := mustLoc(b, "Europe/Madrid")
	t := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		_ = PeriodKey(PeriodWeek, t, madrid)
	}
}
