package web

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/margenhq/margen"
)

// The manager's say on the closed loop, on the survey desk: which CSAT and
// NPS answers open a follow-up case and how long a case waits before it
// moves up the approval chain. What an organisation leaves unset takes the
// server's flags (--case-csat-max, --case-nps-max, --case-sla).

// caseSettingsView is the form (the values as typed: "" the default,
// "none", or a number) and the rule in plain words.
type caseSettingsView struct {
	CSAT, NPS, SLAHours string
	CSATChoices         []string
	NPSChoices          []string
	Summary             []string
	Errors              map[string]string
	DefaultCSAT         string
	DefaultNPS          string
	DefaultSLA          string
}

const maxCaseField = 8 // bytes of any field of the form

func (s *server) caseSettingsView(ctx context.Context, p *page, orgID string) (caseSettingsView, error) {
	x, err := s.store.CaseSettings(ctx, orgID)
	if err != nil {
		return caseSettingsView{}, err
	}
	v := caseSettingsView{CSAT: thresholdField(x.CSATMax), NPS: thresholdField(x.NPSMax)}
	if x.SLA > 0 {
		v.SLAHours = strconv.FormatFloat(x.SLA.Hours(), 'f', -1, 64)
	}
	s.fillCaseView(p, &v, x)
	return v, nil
}

// fillCaseView adds the choices, the defaults and the plain-words summary
// of the rule x makes over the server's.
func (s *server) fillCaseView(p *page, v *caseSettingsView, x margen.CaseSettings) {
	v.CSATChoices = []string{"none", "1", "2", "3", "4"}
	v.NPSChoices = []string{"none", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	def := s.survey.limits.Cases.Normal()
	v.DefaultCSAT = thresholdText(p, def.CSATMax)
	v.DefaultNPS = thresholdText(p, def.NPSMax)
	v.DefaultSLA = durationText(p, def.SLA)
	r := x.Over(s.survey.limits.Cases)
	v.Summary = nil
	for _, sc := range []struct {
		max        int
		some, none string
	}{{r.CSATMax, "cases2.summary.csat", "cases2.summary.csat_none"}, {r.NPSMax, "cases2.summary.nps", "cases2.summary.nps_none"}} {
		if sc.max < 0 {
			v.Summary = append(v.Summary, p.T(sc.none))
		} else {
			v.Summary = append(v.Summary, p.T(sc.some, "max", sc.max))
		}
	}
	v.Summary = append(v.Summary, p.T("cases2.summary.sla", "sla", durationText(p, r.SLA)))
}

func thresholdField(v *int) string {
	switch {
	case v == nil:
		return ""
	case *v < 0:
		return "none"
	}
	return strconv.Itoa(*v)
}

func thresholdText(p *page, v int) string {
	if v < 0 {
		return p.T("cases2.none")
	}
	return strconv.Itoa(v)
}

// durationText says a case SLA in hours, or minutes below an hour.
func durationText(p *page, d time.Duration) string {
	if d < time.Hour {
		return p.T("cases2.minutes", "n", int(d/time.Minute))
	}
	return p.T("cases2.hours", "n", strconv.FormatFloat(d.Hours(), 'f', -1, 64))
}

// readCaseSettings reads the form: each threshold "" (the default),
// "none" or a number, the SLA in hours ("" the default). Text that is not
// a number reads as a value out of range, so every message, and every
// range, is margen.CaseSettings' own (Problems). Errors are per field,
// already in p's language.
func readCaseSettings(p *page, r *http.Request) (caseSettingsView, margen.CaseSettings, bool) {
	v := caseSettingsView{CSAT: r.PostFormValue("csat_max"), NPS: r.PostFormValue("nps_max"),
		SLAHours: r.PostFormValue("sla_hours"), Errors: map[string]string{}}
	threshold := func(val string) *int {
		switch val {
		case "":
			return nil
		case "none":
			n := -1
			return &n
		}
		// "-1" is how the model says "none", not something to type.
		n, err := strconv.Atoi(val)
		if err != nil || len(val) > maxCaseField || n < 0 {
			n = math.MinInt
		}
		return &n
	}
	x := margen.CaseSettings{CSATMax: threshold(v.CSAT), NPSMax: threshold(v.NPS)}
	if v.SLAHours != "" {
		x.SLA = -1
		if h, err := strconv.ParseFloat(v.SLAHours, 64); err == nil && len(v.SLAHours) <= maxCaseField && h > 0 && h < 1e6 {
			if d := time.Duration(h * float64(time.Hour)).Round(time.Minute); d > 0 {
				x.SLA = d
			}
		}
	}
	for _, e := range x.Problems() {
		field := e.Field
		if field == "sla" {
			field = "sla_hours"
		}
		v.Errors[field] = p.message(e)
	}
	return v, x, len(v.Errors) == 0
}

// setCaseSettings stores the organisation's case thresholds and SLA
// (audited by the store); a bad field re-renders the desk with its message.
func (s *server) setCaseSettings(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	p := s.newPage(r, "survey.desk.title", nil)
	v, x, ok := readCaseSettings(p, r)
	if ok {
		err := s.store.SetCaseSettings(r.Context(), st.org.ID, x, st.member.ID)
		if err == nil {
			s.sessions.Put(r.Context(), "survey_notice", "cases2.saved")
			http.Redirect(w, r, "/desk/survey#cases-h", http.StatusSeeOther)
			return
		}
		if !margen.IsCode(err, margen.EINVALID) {
			s.fail(w, r, err)
			return
		}
		v.Errors["form"] = p.message(err)
	}
	s.fillCaseView(p, &v, margen.CaseSettings{})
	v.Summary = nil // the rule in force is unchanged: say only what is wrong
	s.renderSurveyDesk(w, r, http.StatusBadRequest, p.T("cases2.error.form"), margen.SurveyPoint{Kind: margen.PointTable}, &v)
}
