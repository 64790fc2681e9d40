package policy

import (
	"strings"
	"testing"
)

func TestRouteWarnings(t *testing.T) {
	const head = `currency: COP
actions:
  - {id: gift, label: {es: Regalo, en: Gift}}
  - {id: waive, label: {es: Exención, en: Waiver}, monetary: false}
roles:
  - {id: waiter, label: {es: Mesero, en: Waiter}}
  - {id: supervisor, label: {es: Supervisor, en: Supervisor}, inherits: [waiter]}
  - {id: cook, label: {es: Cocinero, en: Cook}}
`
	cases := []struct {
		name string
		body string
		want []string // "LINE:COL path: fragment"
	}{
		{"supervisor only inherits the waiter's maximum", `approval: {approver: supervisor, sla: 10m, on_timeout: deny}
grants:
  - {id: bread, role: waiter, actions: [gift], max_amount: 2500}
`, []string{"9:22 approval.approver: grant bread sends requests above its max_amount (2500) for gift to role supervisor, which may approve at most 2500 of it"}},
		{"a supervisor grant above the waiter's fixes it", `approval: {approver: supervisor, sla: 10m, on_timeout: deny}
grants:
  - {id: bread, role: waiter, actions: [gift], max_amount: 2500}
  - {id: more, role: supervisor, actions: [gift], max_amount: 9000, above: {approver: owner, sla: 1h, on_timeout: deny}}
`, nil},
		{"a supervisor's own requests sent to supervisors", `approval: {approver: supervisor, sla: 10m, on_timeout: escalate, escalate_to: cook}
grants:
  - {id: bread, role: waiter, actions: [gift], max_amount: 2500}
  - {id: more, role: supervisor, actions: [gift], max_amount: 9000}
`, []string{
			"9:22 approval.approver: grant more sends requests above its max_amount (9000) for gift to role supervisor, which may approve at most 9000 of it: every yes would be refused (403) and the request moved on to role cook;",
			"9:79 approval.escalate_to: grant bread sends requests for gift to role cook, which has no grant for gift: every yes would be refused (403) and the request moved on to the owner;",
			"9:79 approval.escalate_to: grant more sends requests for gift to role cook",
		}},
		{"a soft grant has no maximum", `approval: {approver: supervisor, sla: 10m, on_timeout: deny}
grants:
  - {id: bread, role: waiter, actions: [gift], max_amount: 2500}
  - {id: more, role: supervisor, actions: [gift], max_amount: 100, hard: false}
`, nil},
		{"a role with no grant at all, and its escalation", `grants:
  - id: bread
    role: waiter
    actions: ["*"]
    max_amount: 2500
    above: {approver: cook, sla: 5m, on_timeout: escalate, escalate_to: supervisor}
`, []string{
			"14:23 grants[0].above.approver: grant bread sends requests for gift to role cook, which has no grant for gift: every yes would be refused (403) and the request moved on to role supervisor; give cook a grant for gift with a max_amount above 2500, or route to a role that has one",
			"14:73 grants[0].above.escalate_to: grant bread sends requests above its max_amount (2500) for gift to role supervisor",
		}},
		{"owner and non-monetary actions are never warned about", `grants:
  - {id: bread, role: waiter, actions: [gift], max_amount: 2500, above: {approver: owner, sla: 5m, on_timeout: deny}}
  - {id: waivers, role: waiter, actions: [waive], above: {approver: cook, sla: 5m, on_timeout: deny}}
`, nil},
		{"above none", `grants:
  - {id: bread, role: waiter, actions: [gift], max_amount: 2500, above: none}
`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, head+c.body)
			ws := p.Warnings()
			if len(ws) != len(c.want) {
				t.Fatalf("%d warnings, want %d: %v", len(ws), len(c.want), ws)
			}
			for i, w := range ws {
				got := strings.TrimPrefix(strings.Replace(w.Error(), ", column ", ":", 1), "line ")
				got = strings.Replace(got, ": ", " ", 1)
				if !strings.HasPrefix(got, c.want[i]) {
					t.Errorf("warning %d:\n got %s\nwant %s...", i, got, c.want[i])
				}
			}
		})
	}
	// The policies that ship with margen route to roles that can say yes.
	for _, f := range []string{"testdata/restaurant.yaml", "../demo/policy.yaml"} {
		if ws := mustParseFile(t, f).Warnings(); len(ws) != 0 {
			t.Errorf("%s: %v", f, ws)
		}
	}
}
