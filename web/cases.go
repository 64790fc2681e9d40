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
	Due      string
	Closed   string
	CanClose bool
	Back     string
}

// caseRows lists the cases the member may see (decide: may close), under f.
func (s *server) caseRows(ctx context.Context, p *page, f margen.CaseFilter, decide bool, back string) ([]caseRow, error) {
	items, err := s.approvals.Cases(ctx, p.Org, p.Member, f, decide)
	if err != nil {
		return nil, err
	}
	out := make([]caseRow, 0, len(items))
	if len(items) == 0 {
		return out, nil
	}
	names, err := s.memberNamesOf(ctx, p.Org.ID)
	if err != nil {
		return nil, err
	}
	for i := range items {
		c := &items[i]
		row := caseRow{FollowUpCase: *c, Member: nameOr(names, c.MemberID), Due: p.Time(c.DueAt), Back: back}
		if c.ClosedAt != nil {
			row.Closed = p.Time(*c.ClosedAt)
		}
		if c.Status == margen.CaseOpen {
			r, err := s.approvals.CaseRights(ctx, p.Org, p.Member, c)
			if err != nil {
				return nil, err
			}
			row.CanClose = r.Decide
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
