package decision

import (
	"maps"
	"net/http"
	"strings"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
)

// Words is a decision's explanation in lang, as both doors (the JSON API
// and the web pages) show it: the policy's labels for the action, roles and
// rule in lang (pol may be nil: ids are shown), amounts in the currency,
// and for an allowed act what is left of its tightest budget.
func Words(cat *i18n.Catalog, pol *policy.Policy, lang, currency string, d *margen.Decision) string {
	args := maps.Clone(d.Explanation.Args)
	if args == nil {
		args = map[string]any{}
	}
	if _, ok := args["remaining"]; !ok && d.Outcome == margen.OutcomeAllowed && len(d.Budgets) > 0 {
		// Say what is left of the tightest budget.
		low := d.Budgets[0]
		for _, b := range d.Budgets[1:] {
			if b.Remaining < low.Remaining {
				low = b
			}
		}
		args["remaining"] = low.Remaining
		args["budget"] = low.Budget
		args["period"] = PeriodKind(low.Period)
	}
	if pol != nil {
		relabel(args, lang, pol)
	}
	return cat.Explain(lang, currency, d.Explanation.Code, args)
}

// Next is where a refusal leads: a member refused by the policy's
// latitude (no grant, a condition, a maximum or a budget) can still ask for
// an exception, which an approver decides. A forbid rule is the owner's
// explicit "never": it leads nowhere; so does an act reported after the
// fact, which is already done.
func Next(d *margen.Decision) *margen.NextStep {
	if d.Outcome != margen.OutcomeDenied || d.Explanation.Code == policy.CodeForbidden || d.Action == margen.ApprovalKindException ||
		d.AfterTheFact {
		return nil
	}
	return &margen.NextStep{Kind: margen.NextException, Method: http.MethodPost, Href: "/api/v1/exceptions"}
}

// relabel replaces action, role, rule and budget ids by the policy's
// labels in lang.
func relabel(args map[string]any, lang string, pol *policy.Policy) {
	if id, ok := args["rule"].(string); ok {
		if l := pol.RuleLabel(id, lang); l != "" {
			args["rule"] = l
		}
	}
	if id, ok := args["budget"].(string); ok {
		if b, ok := pol.Budget(id); ok && b.Label[lang] != "" {
			args["budget"] = b.Label[lang]
		}
	}
	if id, ok := args["action"].(string); ok {
		if a, ok := pol.Action(id); ok && a.Label[lang] != "" {
			args["action"] = a.Label[lang]
		}
	}
	for _, k := range []string{"approver", "role"} {
		id, ok := args[k].(string)
		if !ok {
			continue
		}
		for _, role := range pol.Roles() {
			if role.ID == id && role.Label[lang] != "" {
				args[k] = role.Label[lang]
			}
		}
	}
}

// PeriodKind recognises a budget period key: 2026-11-25, 2026-W48, 2026-11.
func PeriodKind(key string) string {
	switch {
	case strings.Contains(key, "W"):
		return policy.PeriodWeek
	case len(key) == len("2006-01-02"):
		return policy.PeriodDay
	case len(key) == len("2006-01"):
		return policy.PeriodMonth
	}
	return ""
}
