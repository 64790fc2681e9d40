package decision_test

import (
	"strings"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
)

// TestWordsNameBudgets: an explanation names a budget by its label in the
// reader's language, as it names actions and rules, and by its id when the
// policy gives it no label.
func TestWordsNameBudgets(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(`currency: COP
actions: [{id: gift, label: {es: Regalo, en: Gift}}]
roles: [{id: waiter, label: {es: Mesero, en: Waiter}}]
budgets:
  - {id: waiter_day, label: {es: "Cupo diario de cada mesero", en: "Each waiter's daily allowance"}, scope: member, period: day, limit: 100}
  - {id: team_month, scope: team, period: month, limit: 1000}
grants:
  - {id: g, role: waiter, actions: [gift], max_amount: 50, budgets: [waiter_day, team_month]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ budget, lang, want string }{
		{"waiter_day", "es", "Cupo diario de cada mesero"},
		{"waiter_day", "en", "Each waiter's daily allowance"},
		{"team_month", "en", "team_month"},
	} {
		d := &margen.Decision{Outcome: margen.OutcomeDenied, Explanation: margen.Explanation{Code: policy.CodeBudgetExhausted,
			Args: map[string]any{"budget": c.budget, "amount": int64(80), "remaining": int64(20)}}}
		got := decision.Words(cat, pol, c.lang, "COP", d)
		if !strings.Contains(got, c.want) || (c.want != c.budget && strings.Contains(got, c.budget)) {
			t.Errorf("%s in %s: %q, want it named %q", c.budget, c.lang, got, c.want)
		}
	}
}
