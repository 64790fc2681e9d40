package importer

import (
	"cmp"
	"slices"
	"time"

	"github.com/margenhq/margen"
)

// Env is what the checks need to know about the organisation and the
// person importing.
type Env struct {
	Org *margen.Org
	// Actor names the importer in the audit trail (a member id, or "cli").
	Actor string
	// ActorAccess is the importer's access level: nobody may give a member
	// an access above their own, nor change a member who ranks above them.
	ActorAccess string
	// Teams are the organisation's team slugs; Roles the roles of its
	// active policy (members must name existing ones).
	Teams map[string]bool
	Roles map[string]bool
	// Now stamps new records and audit entries.
	Now time.Time
}

// Check validates what a line cannot know on its own: members name a team
// of the organisation and a role of its active policy, and an access level
// the importer may give. Lines that fail move from Rows to Errors.
func (f *File) Check(env Env) {
	if f.Kind != margen.ImportMembers {
		return
	}
	good := f.Rows[:0]
	for _, r := range f.Rows {
		m := r.Member
		n := len(f.Errors)
		if m.Team != "" && !env.Teams[m.Team] {
			f.Errors = append(f.Errors, lineErr(r.Line, "team", "error.import_unknown_team", "value", m.Team))
		}
		if !env.Roles[m.Role] {
			f.Errors = append(f.Errors, lineErr(r.Line, "role", "error.import_unknown_role", "value", m.Role))
		}
		if m.Access != "" && !margen.WithinRank(env.ActorAccess, m.Access) {
			f.Errors = append(f.Errors, lineErr(r.Line, "access", "error.import_access_above", "value", m.Access))
		}
		if len(f.Errors) == n {
			good = append(good, r)
		}
	}
	f.Rows = good
}

// Keys are the keys of the file's good lines.
func (f *File) Keys() []string {
	keys := make([]string, len(f.Rows))
	for i, r := range f.Rows {
		keys[i] = r.Key
	}
	return keys
}

// Report says what an import did, or would do.
type Report struct {
	Kind      string `json:"kind"`
	Charset   string `json:"charset"`
	Separator string `json:"separator"`
	// Lines is how many data lines the file has; Bad how many of them
	// have problems (listed in Errors, line by line).
	Lines int `json:"lines"`
	Bad   int `json:"bad"`
	// New, Updated and Unchanged count the good lines: records that
	// are, or would be, created, changed or left as they are.
	New       int         `json:"new"`
	Updated   int         `json:"updated"`
	Unchanged int         `json:"unchanged"`
	Errors    []LineError `json:"errors"`
	DryRun    bool        `json:"dry_run"`
	SkipBad   bool        `json:"skip_bad"`
	// Applied is true when the changes were written.
	Applied bool `json:"applied"`
}

// Translate fills every error's Message with t (a catalogue lookup).
func (r *Report) Translate(t func(key string, args map[string]any) string) {
	for i := range r.Errors {
		r.Errors[i].Message = t(r.Errors[i].Key, r.Errors[i].Args)
	}
}

// Plan compares the file's good lines with the existing records and
// returns the report and what to write: nil on a dry run, or when a line is
// bad and SkipBad is not set (all or nothing), or when nothing changes.
// Lines it finds bad here (a member who ranks above the importer) join the
// report's errors.
func Plan(f *File, env Env, st *margen.ImportState, dryRun, skipBad bool) (*Report, *margen.ImportWrite) {
	rep := &Report{Kind: f.Kind, Charset: f.Charset, Separator: f.Separator, Lines: f.Lines,
		Errors: slices.Clone(f.Errors), DryRun: dryRun, SkipBad: skipBad}
	w := &margen.ImportWrite{}
	at := env.Now.UTC().Truncate(time.Microsecond)
	audit := func(action margen.AuditAction, subject string, data map[string]any) {
		w.Audit = append(w.Audit, margen.AuditEntry{OrgID: env.Org.ID, At: at, Actor: env.Actor, Action: action,
			Subject: subject, Data: mustJSON(data)})
	}
	for _, r := range f.Rows {
		switch f.Kind {
		case margen.ImportCustomers:
			c := *r.Customer
			old, ok := st.Customers[c.Ref]
			if ok && old.Erased() {
				rep.Errors = append(rep.Errors, lineErr(r.Line, "ref", "error.customer_erased", "value", c.Ref))
				continue
			}
			if ok {
				if !f.Has("name") {
					c.Name = old.Name
				}
				if !f.Has("contact") {
					c.Contact = old.Contact
				}
				if !f.Has("tags") {
					c.Tags = old.Tags
				}
				if c.Name == old.Name && c.Contact == old.Contact && slices.Equal(c.Tags, old.Tags) {
					rep.Unchanged++
					continue
				}
				c.ID, c.CreatedAt = old.ID, old.CreatedAt
				rep.Updated++
			} else {
				c.ID, c.CreatedAt = margen.CustomerID(env.Org.ID, c.Ref), at
				rep.New++
			}
			c.OrgID = env.Org.ID
			w.Customers = append(w.Customers, c)
			// Contact details are personal data: the trail names the customer only.
			audit(margen.ActionCustomerImport, c.ID, map[string]any{"new": !ok})
		case margen.ImportMembers:
			m := *r.Member
			old, ok := st.Members[m.Login]
			if ok {
				if !margen.WithinRank(env.ActorAccess, old.Access) {
					rep.Errors = append(rep.Errors, lineErr(r.Line, "login", "error.import_member_above", "value", m.Login))
					continue
				}
				if m.Access == "" { // no access column, or an empty cell
					m.Access = old.Access
				}
				if !f.Has("team") {
					m.Team = old.Team
				}
				if m.Language == "" {
					m.Language = old.Language
				}
				if r.keepActive {
					m.Active = old.Active
				}
				if m.Name == old.Name && m.Access == old.Access && m.Role == old.Role && m.Team == old.Team &&
					m.Language == old.Language && m.Active == old.Active {
					rep.Unchanged++
					continue
				}
				m.ID, m.CreatedAt, m.PasswordHash = old.ID, old.CreatedAt, old.PasswordHash
				rep.Updated++
			} else {
				if m.Access == "" {
					m.Access = margen.AccessFrontline
				}
				if m.Language == "" {
					m.Language = env.Org.Language
				}
				// Imported members have no password: they sign in with a
				// token (margen token create) until they set one.
				m.ID, m.CreatedAt = margen.NewID("mem"), at
				rep.New++
			}
			m.OrgID = env.Org.ID
			w.Members = append(w.Members, m)
			action := margen.ActionMemberCreate
			if ok {
				action = margen.ActionMemberUpdate
			}
			audit(action, m.ID, map[string]any{"login": m.Login, "name": m.Name, "access": m.Access, "role": m.Role,
				"team": m.Team, "language": m.Language, "active": m.Active, "import": true})
		case margen.ImportTeams:
			t := *r.Team
			old, ok := st.Teams[t.Slug]
			if ok {
				if t.Name == old.Name {
					rep.Unchanged++
					continue
				}
				t.ID, t.CreatedAt = old.ID, old.CreatedAt
				rep.Updated++
			} else {
				t.ID, t.CreatedAt = margen.NewID("team"), at
				rep.New++
			}
			t.OrgID = env.Org.ID
			w.Teams = append(w.Teams, t)
			action := margen.ActionTeamCreate
			if ok {
				action = margen.ActionTeamUpdate
			}
			audit(action, t.ID, map[string]any{"slug": t.Slug, "name": t.Name, "import": true})
		}
	}
	slices.SortStableFunc(rep.Errors, func(a, b LineError) int { return cmp.Compare(a.Line, b.Line) })
	lines := map[int]bool{}
	for _, e := range rep.Errors {
		lines[e.Line] = true
	}
	rep.Bad = len(lines)
	if dryRun || (rep.Bad > 0 && !skipBad) || rep.New+rep.Updated == 0 {
		return rep, nil
	}
	audit(margen.ImportAction(f.Kind), f.Kind, map[string]any{"lines": f.Lines, "new": rep.New, "updated": rep.Updated,
		"unchanged": rep.Unchanged, "skipped": rep.Bad})
	rep.Applied = true
	return rep, w
}
