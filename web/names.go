package web

import "slices"

// Names for people: what the pages show instead of the ids the store
// keeps (roles by their policy label, teams by their name).

// RoleName is a role's label in the active policy in the page's language;
// its id when the policy does not declare it (any more).
func (p *page) RoleName(id string) string {
	if p.policy == nil {
		return id
	}
	if pol := p.policy(); pol != nil {
		for _, r := range pol.Roles() {
			if r.ID == id {
				return label(r.Label, p.Lang, id)
			}
		}
	}
	return id
}

// TeamName is a team's name; its slug when the team is gone.
func (d peopleData) TeamName(slug string) string {
	for _, t := range d.Teams {
		if t.Slug == slug {
			return t.Name
		}
	}
	return slug
}

// actors are the audit trail's actors that are not members: margen itself
// (an SLA sweep, a seal), the command line, a customer (a survey).
var actors = []string{"system", "cli", "customer"}

// actorName names who wrote an audit entry: a member by name, margen's own
// actors in words, anything else as recorded.
func (p *page) actorName(names map[string]string, actor string) string {
	if n := names[actor]; n != "" {
		return n
	}
	if slices.Contains(actors, actor) {
		return p.T("webpolish.actor." + actor)
	}
	return actor
}
