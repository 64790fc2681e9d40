package web

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
