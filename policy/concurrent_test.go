package policy

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestEvaluateConcurrentSharedFrame evaluates one policy from many
// goroutines at once, with conditions that share an evaluation's execution
// frame and one whose runtime cost is tracked on a frame of its own (a
// comprehension over a context list), and checks every verdict against the
// same request evaluated alone. Run with -race.
func TestEvaluateConcurrentSharedFrame(t *testing.T) {
	p := mustParse(t, `
currency: EUR
actions:
  - id: gift
    label: {es: "Regalo", en: "Gift"}
roles:
  - id: staff
    label: {es: "Personal", en: "Staff"}
grants:
  - id: by_order
    role: staff
    actions: [gift]
    max_amount: 1000
    when: 'amount * 2 <= int(context.total) && hour >= 0'
  - id: by_items
    role: staff
    actions: [gift]
    max_amount: 500
    when: 'context.items.exists(i, i == "cake") && amount <= 300'
forbid:
  - id: staff_only
    actions: ["*"]
    when: '"staff" in customer.tags'
    reason: {es: "no", en: "no"}
`)
	c, err := newCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for src, tracked := range map[string]bool{
		`context.items.exists(i, i == "cake") && amount <= 300`: true,
		`amount * 2 <= int(context.total) && hour >= 0`:         false,
	} {
		if prg, msg, _ := c.compile(src); prg == nil || prg.tracked != tracked {
			t.Fatalf("%s: tracked should be %v (%s)", src, tracked, msg)
		}
	}
	at := time.Date(2026, 11, 25, 13, 30, 0, 0, time.UTC)
	req := func(i int) *Request {
		r := &Request{MemberID: "m", Role: "staff", CustomerID: fmt.Sprint("c", i%7), Action: "gift",
			Amount: int64(i % 1200), At: at,
			Context: map[string]any{"total": float64(i % 1500), "items": []any{"bread", []string{"x", "cake"}[i%2]}}}
		if i%11 == 0 {
			r.CustomerTags = []string{"staff"}
		}
		if i%13 == 0 {
			delete(r.Context, "total") // a runtime error on the first grant
		}
		return r
	}
	describe := func(v Verdict, err error) string {
		if err != nil {
			return err.Error()
		}
		v = v.Settle(v.Max, nil)
		return fmt.Sprintf("%s %s %s %d %q", v.Outcome, v.Rule, v.Code, len(v.Candidates), v.ConditionErrors)
	}
	const n = 400
	want := make([]string, n)
	outcomes := map[string]bool{}
	for i := range n {
		want[i] = describe(p.Evaluate(req(i)))
		outcomes[want[i][:6]] = true
	}
	if len(outcomes) < 2 {
		t.Fatalf("the requests should reach different outcomes: %v", outcomes)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*n)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range n {
				i := (k + g*53) % n
				if got := describe(p.Evaluate(req(i))); got != want[i] {
					errs <- fmt.Sprintf("request %d: %s, alone %s", i, got, want[i])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
