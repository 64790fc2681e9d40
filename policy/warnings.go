package policy

import (
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// routeSource is where an approval route was written, for warnings.
type routeSource struct {
	path     string
	approver ast.Node
	escalate ast.Node
}

// Warnings returns what a valid policy says that will not work as its author
// expects, sorted by position: today, approval routes that send requests to
// a role that may never approve them. Warnings do not stop a policy from
// being published.
func (p *Policy) Warnings() []Error { return append([]Error(nil), p.warnings...) }

// approverLatitude is the most a role may approve of an action: the highest
// max_amount of the hard grants it reaches for the action, unbounded when
// one of them is soft. has is false when it reaches no grant for it. Teams
// and conditions are ignored: a warning must be a certainty, and they can
// only narrow the latitude further.
func (p *Policy) approverLatitude(role, action string) (max int64, unbounded, has bool) {
	ri := p.roleIdx[role]
	ai, ok := p.actionIdx[action]
	if ri == nil || !ok {
		return 0, false, false
	}
	for _, g := range ri.grants[ai] {
		has = true
		if !g.Hard {
			unbounded = true
		}
		max = maxInt(max, g.MaxAmount)
	}
	return max, unbounded, has
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// routeWarnings finds the routes whose approver (or escalate_to) lacks the
// latitude for the requests the route receives. An approver is bounded as
// the approval service bounds them: by evaluating the request as if they
// had asked, so a role without a grant for a monetary action, or whose
// highest max_amount is not above the requesting grant's, cannot say yes to
// any request over that grant's maximum (its yes is refused with 403 and the
// request moves on: to the route's escalate_to, else to the owner). The owner role is never
// bounded. Non-monetary actions need no latitude to approve.
func (ps *parseState) routeWarnings(p *Policy, grants []*grantRule) Errors {
	var out Errors
	for _, g := range grants {
		rt := g.Above
		if rt == nil {
			continue
		}
		src := ps.routes[rt]
		targets := []struct {
			role  string
			node  ast.Node
			field string
		}{{rt.Approver, src.approver, "approver"}, {rt.EscalateTo, src.escalate, "escalate_to"}}
		for i, to := range targets {
			if to.role == "" || to.role == OwnerRole || (i == 1 && to.role == rt.Approver) {
				continue
			}
			// Where a refused yes sends the request (see approval's
			// nextRole): the route's escalate_to, else the owner.
			next := "the owner"
			if i == 0 && rt.EscalateTo != "" && rt.EscalateTo != to.role && rt.EscalateTo != OwnerRole {
				next = "role " + rt.EscalateTo
			}
			var none, short []string // actions without a grant; with too small a one
			var most int64
			for _, a := range p.actions {
				if !a.Monetary || !coversAction(g.Actions, a.ID) {
					continue
				}
				max, unbounded, has := p.approverLatitude(to.role, a.ID)
				switch {
				case !has:
					none = append(none, a.ID)
				case !unbounded && max <= g.MaxAmount:
					short = append(short, a.ID)
					most = maxInt(most, max)
				}
			}
			line, col := pos(to.node)
			path := join(src.path, to.field)
			if len(none) > 0 {
				list := strings.Join(none, ", ")
				out = append(out, newError(line, col, path,
					"grant %s sends requests for %s to role %s, which has no grant for %s: every yes would be refused (403) and the request moved on to %s; give %s a grant for %s with a max_amount above %d, or route to a role that has one",
					g.ID, list, to.role, list, next, to.role, list, g.MaxAmount))
			}
			if len(short) > 0 {
				list := strings.Join(short, ", ")
				out = append(out, newError(line, col, path,
					"grant %s sends requests above its max_amount (%d) for %s to role %s, which may approve at most %d of it: every yes would be refused (403) and the request moved on to %s; give %s a grant for %s with a max_amount above %d, or route to a role with more latitude",
					g.ID, g.MaxAmount, list, to.role, most, next, to.role, list, g.MaxAmount))
			}
		}
	}
	out.sort()
	return out
}
