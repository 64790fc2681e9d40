package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
)

// The policy editor: the YAML in a textarea, checked by the same
// decision.CheckPolicy as POST /api/v1/policies/check and publish, a
// summary of each role's latitude in words, the version history with a
// line diff between any two versions, and publish with a note.

const (
	maxPolicyForm = policy.MaxPolicySize + 16<<10
	maxNote       = 500
)

// problem is one line of the check's answer: a message and, when the
// document says where, its line and column.
type problem struct {
	Line, Column int
	Path, Msg    string
}

type checkResult struct {
	Checked  bool
	OK       bool
	Summary  string // the check's verdict in the page's language
	Errors   []problem
	Warnings []problem
}

type policyData struct {
	Source  string
	Note    string
	Key     string // idempotency key of the publish form
	Version int    // the active version, 0 without one
	Check   checkResult
	Roles   []roleSummary
}

type roleSummary struct {
	Label string
	Lines []string
}

// readPolicyForm parses the editor's form, bounded by the policy's own
// size limit; false means the error page was sent.
func (s *server) readPolicyForm(w http.ResponseWriter, r *http.Request) (src, note string, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPolicyForm)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusRequestEntityTooLarge, "error.page.bad_form")
		return "", "", false
	}
	// Browsers send textareas with CRLF line ends.
	src = strings.ReplaceAll(r.PostFormValue("source"), "\r\n", "\n")
	note = strings.TrimSpace(r.PostFormValue("note"))
	if margen.CheckText("source", src, 0, true) != nil || margen.CheckText("note", note, 0, false) != nil || len(r.PostFormValue("key")) > 100 {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return "", "", false
	}
	return src, note, true
}

// checkSource runs the shared check and says what it found in the page's
// language; pol is nil when the policy may not be published.
func (s *server) checkSource(r *http.Request, p *page, src string) (*policy.Policy, checkResult, error) {
	res := checkResult{Checked: true}
	pol, err := decision.CheckPolicy(r.Context(), s.store, p.Org, []byte(src))
	if err != nil {
		var me *margen.Error
		if !errors.As(err, &me) || me.Code != margen.EINVALID {
			return nil, res, err
		}
		res.Summary = p.message(me)
		var pe policy.Errors
		if errors.As(err, &pe) {
			for _, e := range pe {
				res.Errors = append(res.Errors, problem{Line: e.Line, Column: e.Column, Path: e.Path, Msg: e.Msg})
			}
		}
		return nil, res, nil
	}
	res.OK = true
	for _, w := range pol.Warnings() {
		res.Warnings = append(res.Warnings, problem{Line: w.Line, Column: w.Column, Path: w.Path, Msg: w.Msg})
	}
	res.Summary = p.T("desk.policy.ok", "warnings", len(res.Warnings))
	return pol, res, nil
}

func (s *server) policyPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk.policy.title", nil)
	d := policyData{Key: newKey()}
	pv, err := s.store.ActivePolicy(r.Context(), p.Org.ID)
	switch {
	case margen.IsCode(err, margen.ENOTFOUND):
	case err != nil:
		s.fail(w, r, err)
		return
	default:
		d.Source, d.Version = pv.Source, pv.Version
		// The engine's compiled copy, when it holds this version: parsing
		// and compiling the policy again costs most of the page.
		pol, version, err := s.engine.Policy(r.Context(), p.Org.ID)
		if err != nil || version != pv.Version {
			pol, err = policy.Parse([]byte(pv.Source))
		}
		if err == nil {
			d.Roles = s.summary(p, pol)
		}
	}
	p.Data = &d
	s.render(w, r, http.StatusOK, "desk_policy", "", p)
}

// checkPolicy answers the check: for htmx (as you type) the results
// fragment, else the editor with the results.
func (s *server) checkPolicy(w http.ResponseWriter, r *http.Request) {
	src, note, ok := s.readPolicyForm(w, r)
	if !ok {
		return
	}
	p := s.newPage(r, "desk.policy.title", nil)
	pol, res, err := s.checkSource(r, p, src)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := &policyData{Source: src, Note: note, Key: r.PostFormValue("key"), Check: res}
	if pol != nil {
		d.Roles = s.summary(p, pol)
	}
	p.Data = d
	if r.Header.Get("HX-Request") == "true" {
		s.render(w, r, http.StatusOK, "desk_policy", "results", p)
		return
	}
	status := http.StatusOK
	if pol == nil {
		status = http.StatusUnprocessableEntity
	}
	s.render(w, r, status, "desk_policy", "", p)
}

// publishPolicy publishes the policy with its note through the same store
// call as the API, with the form's idempotency key: a second submission of
// the same form publishes nothing more.
func (s *server) publishPolicy(w http.ResponseWriter, r *http.Request) {
	src, note, ok := s.readPolicyForm(w, r)
	if !ok {
		return
	}
	p := s.newPage(r, "desk.policy.title", nil)
	key := r.PostFormValue("key")
	if key != "" {
		rec, err := s.store.Idempotency(r.Context(), p.Org.ID, p.Member.ID, key)
		if err == nil && rec.Live(s.clock.Now()) {
			// This form was published already: show what it made.
			v, _ := strconv.Atoi(string(rec.Response))
			http.Redirect(w, r, "/desk/policy/history?published="+strconv.Itoa(v), http.StatusSeeOther)
			return
		} else if err != nil && !margen.IsCode(err, margen.ENOTFOUND) {
			s.fail(w, r, err)
			return
		}
	}
	pol, res, err := s.checkSource(r, p, src)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := &policyData{Source: src, Note: note, Key: key, Check: res}
	p.Data = d
	if utf8.RuneCountInString(note) > maxNote {
		p.Error = p.T("desk.policy.error.note", "max", maxNote)
		s.render(w, r, http.StatusBadRequest, "desk_policy", "", p)
		return
	}
	if pol == nil {
		p.Error = p.T("desk.policy.error.not_published")
		s.render(w, r, http.StatusUnprocessableEntity, "desk_policy", "", p)
		return
	}
	now := s.clock.Now()
	var idem *margen.IdemWrite[*margen.PolicyVersion]
	if key != "" {
		// The stored answer is the version this form published.
		idem = &margen.IdemWrite[*margen.PolicyVersion]{
			Record: margen.Idempotency{OrgID: p.Org.ID, MemberID: p.Member.ID, Key: key, RequestHash: requestHash(src, note),
				CreatedAt: now, ExpiresAt: now.Add(margen.DefaultIdempotencyTTL)},
			Respond: func(pv *margen.PolicyVersion) ([]byte, error) { return []byte(strconv.Itoa(pv.Version)), nil },
		}
	}
	pv := &margen.PolicyVersion{OrgID: p.Org.ID, Source: src, Active: true, CreatedBy: p.Member.ID, Note: note, CreatedAt: now}
	err = s.store.PublishPolicy(r.Context(), pv, idem)
	if margen.IsCode(err, margen.ECONFLICT) && key != "" {
		// The same form, sent twice at once: the other one published.
		http.Redirect(w, r, "/desk/policy/history", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.engine.Invalidate(p.Org.ID)
	http.Redirect(w, r, "/desk/policy/history?published="+strconv.Itoa(pv.Version), http.StatusSeeOther)
}

func newKey() string {
	plain, _ := auth.NewToken()
	return plain
}

type historyData struct {
	Versions []margen.PolicyVersion
	Names    map[string]string // member id -> name
	A, B     int
	Diff     []diffLine
	Adds     int
	Dels     int
}

// policyHistory lists the versions and, with ?a=&b=, the line diff from
// version a to version b (by default the previous version to the active
// one).
func (s *server) policyHistory(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk.history.title", nil)
	ctx := r.Context()
	all, err := s.store.ListPolicies(ctx, p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	members, err := s.store.ListMembers(ctx, p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := &historyData{Versions: all, Names: map[string]string{}}
	for _, m := range members {
		d.Names[m.ID] = m.Name
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("published")); err == nil && v > 0 {
		p.Notice = p.T("desk.history.published", "version", v)
	}
	q := r.URL.Query()
	if len(all) >= 2 {
		d.A, d.B = all[1].Version, all[0].Version
	}
	if q.Has("a") || q.Has("b") {
		a, errA := strconv.Atoi(q.Get("a"))
		b, errB := strconv.Atoi(q.Get("b"))
		if errA != nil || errB != nil || a < 1 || b < 1 || a > 1<<20 || b > 1<<20 {
			s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
			return
		}
		d.A, d.B = a, b
	}
	if d.A > 0 && d.B > 0 {
		va, err := s.store.PolicyByVersion(ctx, p.Org.ID, d.A)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		vb, err := s.store.PolicyByVersion(ctx, p.Org.ID, d.B)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.Diff = lineDiff(va.Source, vb.Source)
		for _, l := range d.Diff {
			switch l.Op {
			case '+':
				d.Adds++
			case '-':
				d.Dels++
			}
		}
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "desk_history", "", p)
}

// summary says in words, per role, what the compiled policy lets it do
// alone: per grant (its own and inherited) the actions, the largest amount
// per act, the budgets it charges, its conditions by label and where an
// amount above it goes.
func (s *server) summary(p *page, pol *policy.Policy) []roleSummary {
	var out []roleSummary
	grants := pol.Grants()
	roleLabel := func(id string) string {
		for _, ro := range pol.Roles() {
			if ro.ID == id {
				return label(ro.Label, p.Lang, id)
			}
		}
		return id
	}
	for _, ro := range pol.Roles() {
		rs := roleSummary{Label: label(ro.Label, p.Lang, ro.ID)}
		for _, role := range pol.RolesReaching(ro.ID) {
			for _, g := range grants {
				if g.Role != role {
					continue
				}
				rs.Lines = append(rs.Lines, s.grantWords(p, pol, g, roleLabel))
			}
		}
		if len(rs.Lines) == 0 {
			rs.Lines = []string{p.T("desk.summary.none")}
		}
		out = append(out, rs)
	}
	return out
}

func (s *server) grantWords(p *page, pol *policy.Policy, g policy.Grant, roleLabel func(string) string) string {
	var actions []string
	monetary := false
	if len(g.Actions) == 1 && g.Actions[0] == "*" {
		actions = []string{p.T("desk.summary.every_action")}
		monetary = true
	} else {
		for _, id := range g.Actions {
			a, ok := pol.Action(id)
			if !ok {
				actions = append(actions, id)
				continue
			}
			actions = append(actions, label(a.Label, p.Lang, id))
			monetary = monetary || a.Monetary
		}
	}
	parts := []string{strings.Join(actions, ", ")}
	if monetary {
		parts[0] = p.T("desk.summary.max", "actions", parts[0], "max", p.Money(g.MaxAmount))
	}
	if len(g.Teams) > 0 {
		parts = append(parts, p.T("desk.summary.teams", "teams", strings.Join(g.Teams, ", ")))
	}
	for _, id := range g.Budgets {
		if b, ok := pol.Budget(id); ok {
			parts = append(parts, p.T("desk.summary.budget."+b.Period, "limit", p.Money(b.Limit), "scope", p.T("desk.summary.scope."+b.Scope)))
		}
	}
	var conds []string
	for _, c := range g.Conditions {
		if l := label(c.Label, p.Lang, ""); l != "" {
			conds = append(conds, l)
		} else {
			conds = append(conds, p.T("desk.summary.unlabelled"))
		}
	}
	if len(conds) > 0 {
		parts = append(parts, p.T("desk.summary.if", "conditions", strings.Join(conds, "; ")))
	}
	if monetary {
		if g.Above != nil {
			parts = append(parts, p.T("desk.summary.above", "approver", roleLabel(g.Above.Approver),
				"sla", i18n.FormatDuration(g.Above.SLA), "timeout", p.T("desk.summary.timeout."+g.Above.OnTimeout)))
		} else {
			parts = append(parts, p.T("desk.summary.above_none"))
		}
	}
	return strings.Join(parts, "; ") + "."
}

// Where is a problem's place in the page's language.
func (p *page) Where(pr problem) string {
	if pr.Line > 0 {
		return p.T("desk.policy.at", "line", pr.Line, "column", pr.Column)
	}
	return ""
}
