package policy

import (
	"strings"
	"testing"
	"time"
)

// TestConditionLabels: rules and conditions may carry labels; a `when` may
// be a list of conditions that must all hold; a condition_not_met verdict
// names the first condition of the rule that failed.
func TestConditionLabels(t *testing.T) {
	p := mustParse(t, `currency: COP
actions:
  - {id: gift, label: {es: Regalo, en: Gift}}
roles:
  - {id: waiter, label: {es: Mesero, en: Waiter}}
grants:
  - id: bad_avocado
    label: {es: "Garantía por aguacate malo", en: "Bad avocado guarantee"}
    role: waiter
    actions: [gift]
    max_amount: 5000
    when:
      - if: 'has(context.order_total)'
        label: {es: "el pedido tiene un total", en: "the order has a total"}
      - 'amount <= int(context.order_total)'
      - if: 'has(context.photo) && context.photo == true'
        label: {es: "hay una foto del aguacate", en: "there is a photo of the avocado"}
forbid:
  - id: never_cash
    label: {es: "Nunca en efectivo", en: "Never in cash"}
    actions: [gift]
    when: {if: 'has(context.cash) && context.cash == true', label: {es: "es en efectivo", en: "it is in cash"}}
    reason: {es: "No se da dinero en efectivo.", en: "No cash is given."}
`)
	g := p.Grants()[0]
	if len(g.Conditions) != 3 || g.Conditions[0].Label["es"] != "el pedido tiene un total" || g.Conditions[1].Label != nil ||
		g.When != "(has(context.order_total)) && (amount <= int(context.order_total)) && (has(context.photo) && context.photo == true)" {
		t.Errorf("grant conditions: %+v, when %q", g.Conditions, g.When)
	}
	if p.RuleLabel("bad_avocado", "es") != "Garantía por aguacate malo" || p.RuleLabel("never_cash", "en") != "Never in cash" || p.RuleLabel("nope", "es") != "" {
		t.Error("RuleLabel")
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ctx  map[string]any
		want string // the failing condition's expression; "" when allowed
	}{
		{map[string]any{}, "has(context.order_total)"},
		{map[string]any{"order_total": 1000.0}, "amount <= int(context.order_total)"},
		{map[string]any{"order_total": 9000.0}, "has(context.photo) && context.photo == true"},
		{map[string]any{"order_total": 9000.0, "photo": true}, ""},
	} {
		v, err := p.Evaluate(&Request{Role: "waiter", Action: "gift", Amount: 3000, Context: c.ctx, At: at})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.want == "" && v.Outcome != Allowed:
			t.Errorf("%v: %+v, want allowed", c.ctx, v)
		case c.want != "" && (v.Code != CodeConditionNotMet || v.Rule != "bad_avocado" || v.Condition == nil || v.Condition.When != c.want):
			t.Errorf("%v: %+v (condition %+v), want %q to fail", c.ctx, v, v.Condition, c.want)
		}
	}
	if v, _ := p.Evaluate(&Request{Role: "waiter", Action: "gift", Amount: 1, Context: map[string]any{"cash": true}, At: at}); v.Code != CodeForbidden {
		t.Errorf("labelled forbid condition: %+v", v)
	}

	for _, bad := range []struct{ when, want string }{
		{"[]", "list at least one condition"},
		{"{if: 'amount > 1'}", "label is required"},
		{"{label: {es: a, en: b}}", "if is required"},
		{"[{if: 'amount >', label: {es: a, en: b}}]", "grants[0].when[0].if: invalid condition"},
		{"{if: 'amount > 1', label: {es: a, en: b}, note: x}", `unknown field "note"`},
	} {
		_, err := Parse([]byte(`currency: COP
actions: [{id: gift, label: {es: Regalo, en: Gift}}]
roles: [{id: waiter, label: {es: Mesero, en: Waiter}}]
grants:
  - {id: g, role: waiter, actions: [gift], max_amount: 1, when: ` + bad.when + `}
`))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("when: %s: error %v, want %q", bad.when, err, bad.want)
		}
	}
}

// TestBudgetLabels: a budget may carry a label, like actions and rules; a
// label that is not a mapping of languages is refused at its line.
func TestBudgetLabels(t *testing.T) {
	p := mustParse(t, `currency: COP
actions: [{id: gift, label: {es: Regalo, en: Gift}}]
roles: [{id: waiter, label: {es: Mesero, en: Waiter}}]
budgets:
  - {id: waiter_day, label: {es: "Tu cupo del día", en: "Your daily allowance"}, scope: member, period: day, limit: 100}
  - {id: team_month, scope: team, period: month, limit: 1000}
grants:
  - {id: g, role: waiter, actions: [gift], max_amount: 50, budgets: [waiter_day, team_month]}
`)
	b, _ := p.Budget("waiter_day")
	if b.Label["es"] != "Tu cupo del día" || b.Label["en"] != "Your daily allowance" {
		t.Errorf("waiter_day label: %v", b.Label)
	}
	if b, _ := p.Budget("team_month"); b.Label != nil {
		t.Errorf("team_month label: %v", b.Label)
	}
	_, err := Parse([]byte(`currency: COP
actions: [{id: gift, label: {es: Regalo, en: Gift}}]
roles: [{id: waiter, label: {es: Mesero, en: Waiter}}]
budgets:
  - {id: d, label: "Tu cupo", scope: member, period: day, limit: 100}
`))
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "budgets[0].label") {
		t.Errorf("a label that is not a mapping: %v", err)
	}
}
