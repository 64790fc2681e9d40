package policy

import "slices"

// build fills the public views and the lookup tables evaluation uses, so
// that Evaluate does two map lookups and walks short, pre-ordered slices.
func (p *Policy) build(grants []*grantRule, forbids []*forbidRule) {
	for _, g := range grants {
		p.grants = append(p.grants, g.Grant)
		g.allTeams = len(g.Teams) == 0
		for _, id := range g.Budgets {
			b := p.budgets[p.budgetIdx[id]]
			g.charges = append(g.charges, Charge{Key: BudgetKey{BudgetID: b.ID}, Scope: b.Scope, Period: b.Period, Limit: b.Limit, Hard: b.Hard})
		}
	}
	for _, f := range forbids {
		p.forbids = append(p.forbids, f.Forbid)
	}
	p.ruleLabels = map[string]map[string]string{}
	for _, g := range grants {
		if g.Label != nil {
			p.ruleLabels[g.ID] = g.Label
		}
	}
	for _, f := range forbids {
		if f.Label != nil {
			p.ruleLabels[f.ID] = f.Label
		}
	}

	p.anyRoleForbids = make([][]*forbidRule, len(p.actions))
	for ai, a := range p.actions {
		for _, f := range forbids {
			if len(f.Roles) == 0 && coversAction(f.Actions, a.ID) {
				p.anyRoleForbids[ai] = append(p.anyRoleForbids[ai], f)
			}
		}
	}

	roleByID := make(map[string]*Role, len(p.roles))
	for i := range p.roles {
		roleByID[p.roles[i].ID] = &p.roles[i]
	}
	byRole := make(map[string][]*grantRule, len(p.roles))
	for _, g := range grants {
		byRole[g.Role] = append(byRole[g.Role], g)
	}
	p.roleIdx = make(map[string]*roleIndex, len(p.roles))
	for _, role := range p.roles {
		ri := &roleIndex{id: role.ID, reach: reach(role.ID, roleByID)}
		ri.grants = make([][]*grantRule, len(p.actions))
		ri.forbids = make([][]*forbidRule, len(p.actions))
		for ai, a := range p.actions {
			for _, r := range ri.reach {
				for _, g := range byRole[r] {
					if coversAction(g.Actions, a.ID) {
						ri.grants[ai] = append(ri.grants[ai], g)
					}
				}
			}
			for _, f := range forbids {
				if !coversAction(f.Actions, a.ID) {
					continue
				}
				if len(f.Roles) == 0 || slices.ContainsFunc(f.Roles, func(fr string) bool { return slices.Contains(ri.reach, fr) }) {
					ri.forbids[ai] = append(ri.forbids[ai], f)
				}
			}
		}
		p.roleIdx[role.ID] = ri
		p.roleList = append(p.roleList, ri)
	}
}

func coversAction(actions []string, id string) bool {
	return slices.Contains(actions, id) || slices.Contains(actions, "*")
}

// reach walks the inheritance graph breadth-first: the role, then its direct
// parents in listed order, then theirs. Validation guarantees no cycles,
// but the visited set keeps the walk finite regardless.
func reach(id string, roles map[string]*Role) []string {
	out := []string{id}
	seen := map[string]bool{id: true}
	for i := 0; i < len(out); i++ {
		r := roles[out[i]]
		if r == nil {
			continue
		}
		for _, parent := range r.Inherits {
			if !seen[parent] {
				seen[parent] = true
				out = append(out, parent)
			}
		}
	}
	return out
}

// scanMax is the number of entries up to which a lookup compares the key
// with each entry: cheaper, for the few actions and roles of a typical
// policy, than a map lookup, which hashes the key.
const scanMax = 8

// lookupAction is actionIdx[id].
func (p *Policy) lookupAction(id string) (int, bool) {
	if len(p.actions) > scanMax {
		i, ok := p.actionIdx[id]
		return i, ok
	}
	for i := range p.actions {
		if p.actions[i].ID == id {
			return i, true
		}
	}
	return 0, false
}

// lookupRole is roleIdx[id].
func (p *Policy) lookupRole(id string) *roleIndex {
	if len(p.roleList) > scanMax {
		return p.roleIdx[id]
	}
	for _, ri := range p.roleList {
		if ri.id == id {
			return ri
		}
	}
	return nil
}
