package web

import (
	"context"
	"net/http"
	"net/url"

	"github.com/margenhq/margen"
)

// Follow-up cases of low survey answers on the pages: a section of the
// open cases the member may close in the inbox, the cases of an act on its
// page, and the closing form. Who sees and who closes is the approval
// service's rule (approval.RightsOn), as in the API.

type caseRow struct {
	margen.FollowUpCase
	Member   string
	Due      string // "cases.due" with the due time, in words
	Closed   string
	CanClose bool
	Back     string
	// Written once here rather than by the template, which calls each
	// method by reflection: the inbox shows up to inboxCases rows.
	ScoreText, StatusText, OutcomeText, ReactionText string
	// EscalatedText says where an escalated case stands ("" when it was
	// never escalated).
	EscalatedText string
	Text          *caseTexts
}

// caseTexts are the words every case row of a page shares: the form's
// labels and choices, translated once per page.
type caseTexts struct {
	Act, Action, OutcomeLabel, ReactionLabel, Close string
	Outcomes, Reactions                             []option
}

func newCaseTexts(p *page) *caseTexts {
	x := &caseTexts{Act: p.T("cases.act"), Action: p.T("cases.form.action"),
		OutcomeLabel: p.T("cases.form.outcome"), ReactionLabel: p.T("cases.form.reaction"), Close: p.T("cases.form.close")}
	for _, o := range []string{margen.CaseResolved, margen.CaseUnresolved, margen.CaseNoContact} {
		x.Outcomes = append(x.Outcomes, option{o, p.T("cases.outcome." + o)})
	}
	for _, r := range []string{margen.ReactionPositive, margen.ReactionNeutral, margen.ReactionNegative, margen.ReactionUnknown} {
		x.Reactions = append(x.Reactions, option{r, p.T("cases.reaction." + r)})
	}
	return x
}

// caseRows lists the cases the member may see (decide: may close), under f.
func (s *server) caseRows(ctx context.Context, p *page, f margen.CaseFilter, decide bool, back string) ([]caseRow, error) {
	return s.caseRowsNamed(ctx, p, f, decide, back, nil)
}

// caseRowsNamed is caseRows with the organisation's member names already
// read (nil: read them here).
func (s *server) caseRowsNamed(ctx context.Context, p *page, f margen.CaseFilter, decide bool, back string, names map[string]string) ([]caseRow, error) {
	items, rights, err := s.approvals.CasesWithRights(ctx, p.Org, p.Member, f, decide)
	if err != nil {
		return nil, err
	}
	out := make([]caseRow, 0, len(items))
	if len(items) == 0 {
		return out, nil
	}
	if names == nil {
		if names, err = s.memberNamesOf(ctx, p.Org.ID); err != nil {
			return nil, err
		}
	}
	x := newCaseTexts(p)
	for i := range items {
		c := &items[i]
		row := caseRow{FollowUpCase: *c, Member: nameOr(names, c.MemberID), Back: back, Text: x,
			ScoreText: p.T("survey.score."+c.Scale, "score", c.Score), StatusText: p.T("cases.status." + c.Status)}
		if c.ClosedAt != nil {
			row.Closed = p.Time(*c.ClosedAt)
		}
		if c.EscalatedAt != nil {
			if c.Role == "owner" {
				row.EscalatedText = p.T("cases2.with_owners")
			} else {
				row.EscalatedText = p.T("cases2.escalated", "n", c.Level)
			}
		}
		if c.Status == margen.CaseOpen {
			row.Due = p.T("cases.due", "at", p.Time(c.DueAt))
			row.CanClose = rights[i].Decide
		} else {
			row.OutcomeText, row.ReactionText = p.T("cases.outcome."+c.Outcome), p.T("cases.reaction."+c.Reaction)
		}
		out = append(out, row)
	}
	return out, nil
}

// closeCase records the closing of a case (POST, redirect, GET): back to
// the inbox, or to the case's act page.
func (s *server) closeCase(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	x := margen.CaseClose{Action: r.PostFormValue("action"), Outcome: r.PostFormValue("outcome"),
		Reaction: r.PostFormValue("reaction")}
	c, err := s.approvals.CloseCase(r.Context(), st.org, st.member, r.PathValue("id"), x)
	if err != nil {
		status := 0
		switch margen.ErrorCode(err) {
		case margen.EINVALID, margen.ETOOLARGE:
			status = http.StatusBadRequest
		case margen.ECONFLICT:
			status = http.StatusConflict
		}
		if status == 0 {
			s.fail(w, r, err)
			return
		}
		p := s.newPage(r, "error.page.title", nil)
		p.Error = p.message(err)
		p.Data = status
		s.render(w, r, status, "error", "", p)
		return
	}
	back := "/inbox"
	if r.PostFormValue("back") == "act" && c.ActID != "" {
		back = "/acts/" + url.PathEscape(c.ActID)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// inboxCases bounds the inbox's section of open cases.
const inboxCases = 50

// inboxCaseRows are the open cases the member may close, for the inbox's
// section (the page and its live stream).
func (s *server) inboxCaseRows(ctx context.Context, p *page) ([]caseRow, error) {
	return s.caseRows(ctx, p, margen.CaseFilter{Status: margen.CaseOpen, Page: margen.Page{Limit: inboxCases}}, true, "inbox")
}
