package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/margenhq/margen"
)

// Follow-up cases of low survey answers. Who sees a case and who may close
// it is the approval service's one rule (approval.RightsOn, as for a
// request of the member who served): a case a member may not see answers
// like a missing one.

func (s *server) listCases(w http.ResponseWriter, r *http.Request) {
	if !s.needApprovals(w, r) {
		return
	}
	st := state(r)
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	f := margen.CaseFilter{Page: fetch(p), Status: q.Get("status"), MemberID: q.Get("member"), Team: q.Get("team"),
		ActID: q.Get("act")}
	switch f.Status {
	case "", margen.CaseOpen, margen.CaseClosed:
	default:
		s.problem(w, r, margen.Invalid("status", "error.invalid_value", "field", "status", "allowed", "open, closed"))
		return
	}
	for _, v := range []string{f.MemberID, f.Team, f.ActID} {
		if len(v) > maxRef {
			s.problem(w, r, margen.Invalid("", "error.too_long", "field", "filter", "max", maxRef))
			return
		}
	}
	inbox := false
	if v := q.Get("inbox"); v != "" {
		if inbox, err = strconv.ParseBool(v); err != nil {
			s.problem(w, r, margen.Invalid("inbox", "error.invalid_value", "field", "inbox", "allowed", "true, false"))
			return
		}
	}
	items, err := s.approvals.Cases(r.Context(), st.org, st.member, f, inbox)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(c margen.FollowUpCase) string { return c.ID })
	writeJSON(w, http.StatusOK, list(items, next))
}

func (s *server) getCase(w http.ResponseWriter, r *http.Request) {
	if !s.needApprovals(w, r) {
		return
	}
	st := state(r)
	c, _, err := s.approvals.Case(r.Context(), st.org, st.member, r.PathValue("id"))
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// closeCase records what was done, the outcome and the customer's
// reaction; a case closed already answers 409.
func (s *server) closeCase(w http.ResponseWriter, r *http.Request) {
	if !s.needApprovals(w, r) {
		return
	}
	st := state(r)
	body, err := readBody(w, r, maxJSONBody)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	var in margen.CaseClose
	if err := decodeStrict(body, &in); err != nil {
		s.problem(w, r, err)
		return
	}
	c, err := s.approvals.CloseCase(r.Context(), st.org, st.member, r.PathValue("id"), in)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// caseSettingsDoc is an organisation's follow-up rule: what it set (null:
// the server's default) and the rule in force.
type caseSettingsDoc struct {
	CSATMax   *int          `json:"csat_max"`
	NPSMax    *int          `json:"nps_max"`
	SLA       *string       `json:"sla"`
	UpdatedAt *time.Time    `json:"updated_at,omitempty"`
	Effective caseRuleInUse `json:"effective"`
}

type caseRuleInUse struct {
	CSATMax int    `json:"csat_max"`
	NPSMax  int    `json:"nps_max"`
	SLA     string `json:"sla"`
}

// maxSLAText bounds the SLA's text ("720h" is 4 bytes).
const maxSLAText = 32

func (s *server) caseSettingsDoc(x margen.CaseSettings) caseSettingsDoc {
	d := caseSettingsDoc{CSATMax: x.CSATMax, NPSMax: x.NPSMax}
	if x.SLA > 0 {
		v := x.SLA.String()
		d.SLA = &v
	}
	if !x.UpdatedAt.IsZero() {
		at := x.UpdatedAt
		d.UpdatedAt = &at
	}
	r := x.Over(s.caseRule)
	d.Effective = caseRuleInUse{CSATMax: r.CSATMax, NPSMax: r.NPSMax, SLA: r.SLA.String()}
	return d
}

// getCaseSettings answers the organisation's follow-up rule.
func (s *server) getCaseSettings(w http.ResponseWriter, r *http.Request) {
	x, err := s.store.CaseSettings(r.Context(), state(r).org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.caseSettingsDoc(x))
}

// putCaseSettings replaces the organisation's follow-up rule: each field
// null (or absent) for the server's default; the same validation as the
// survey desk's form (margen.CaseSettings.Validate), audited by the store.
func (s *server) putCaseSettings(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	body, err := readBody(w, r, maxJSONBody)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	var in struct {
		CSATMax *int    `json:"csat_max"`
		NPSMax  *int    `json:"nps_max"`
		SLA     *string `json:"sla"`
	}
	if err := decodeStrict(body, &in); err != nil {
		s.problem(w, r, err)
		return
	}
	x := margen.CaseSettings{CSATMax: in.CSATMax, NPSMax: in.NPSMax}
	if in.SLA != nil {
		d, err := time.ParseDuration(*in.SLA)
		if err != nil || len(*in.SLA) > maxSLAText || d == 0 {
			s.problem(w, r, margen.InvalidSLA())
			return
		}
		x.SLA = d
	}
	if err := s.store.SetCaseSettings(r.Context(), st.org.ID, x, st.member.ID); err != nil {
		s.problem(w, r, err)
		return
	}
	x, err = s.store.CaseSettings(r.Context(), st.org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.caseSettingsDoc(x))
}
