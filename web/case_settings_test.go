package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// TestCaseSettingsDesk: on the survey desk a manager sets which answers
// open a follow-up case and the case SLA; the rule is shown in plain
// words, bad values are refused field by field (nothing saved), a
// frontline member may not set it, the change is audited, and a customer's
// answer then opens a case by the organisation's rule.
func TestCaseSettingsDesk(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false, noSurveyLimits)
		ctx := context.Background()
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		res, desk := m.do("GET", "/desk/survey", nil)
		// The server's defaults: CSAT 2 or less, NPS 6 or less, 24 h.
		if res.StatusCode != 200 || !strings.Contains(desk, "Una respuesta CSAT de 2 o menos abre un caso") ||
			!strings.Contains(desk, "Una respuesta NPS de 6 o menos") || !strings.Contains(desk, "cada 24 h") {
			t.Fatalf("desk: %d %s", res.StatusCode, desk)
		}
		for _, bad := range []url.Values{
			{"csat_max": {"5"}}, {"csat_max": {"0"}}, {"nps_max": {"10"}}, {"nps_max": {"-1"}}, {"csat_max": {"x"}},
			{"sla_hours": {"0.01"}}, {"sla_hours": {"721"}}, {"sla_hours": {"NaN"}}, {"sla_hours": {"123456789"}},
		} {
			res, body := m.do("POST", "/desk/survey/cases", bad)
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `aria-invalid="true"`) ||
				!strings.Contains(body, "La regla de seguimiento no se guardó") {
				t.Fatalf("%v: %d %s", bad, res.StatusCode, body)
			}
			invalidBeforeError(t, body) // the help stays neutral
		}
		if x, err := db.CaseSettings(ctx, s.Org.ID); err != nil || x.CSATMax != nil || x.NPSMax != nil || x.SLA != 0 {
			t.Fatalf("saved after refusals: %+v, %v", x, err)
		}
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		if res, _ := w.do("POST", "/desk/survey/cases", url.Values{"csat_max": {"3"}}); res.StatusCode != http.StatusForbidden {
			t.Fatalf("frontline sets the rule: %d", res.StatusCode)
		}
		if res, _ := m.do("POST", "/desk/survey/cases", url.Values{"csat_max": {"3"}, "nps_max": {"none"}, "sla_hours": {"1.5"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("save: %d", res.StatusCode)
		}
		res, desk = m.do("GET", "/desk/survey", nil)
		if res.StatusCode != 200 || !strings.Contains(desk, "Una respuesta CSAT de 3 o menos abre un caso") ||
			!strings.Contains(desk, "Ninguna respuesta NPS abre un caso") || !strings.Contains(desk, "cada 1.5 h") ||
			!strings.Contains(desk, "Regla de seguimiento guardada") {
			t.Fatalf("desk after save: %d %s", res.StatusCode, desk)
		}
		x, err := db.CaseSettings(ctx, s.Org.ID)
		if err != nil || *x.CSATMax != 3 || *x.NPSMax != -1 || x.SLA != 90*time.Minute {
			t.Fatalf("settings = %+v, %v", x, err)
		}
		entries, err := db.ListAudit(ctx, s.Org.ID, 0, 500)
		if err != nil {
			t.Fatal(err)
		}
		audited := 0
		for _, e := range entries {
			if e.Action == margen.ActionCaseSettings && e.Actor == s.Org.Members["admin"].ID {
				audited++
			}
		}
		if audited != 1 {
			t.Fatalf("%d case.settings entries by the manager, want 1", audited)
		}

		// A CSAT 3 now opens a case, due in 1.5 h.
		act := actOf(t, s, w)
		path, _ := newLink(t, w, act.ID)
		c := s.client(t)
		before := time.Now()
		if res, page := c.do("POST", path, url.Values{"score": {"3"}}); res.StatusCode != 200 || !strings.Contains(page, `id="survey-thanks"`) {
			t.Fatalf("answer: %d %s", res.StatusCode, page)
		}
		cs, err := db.ListCases(ctx, s.Org.ID, margen.CaseFilter{ActID: act.ID})
		if err != nil || len(cs) != 1 || cs[0].Score != 3 || cs[0].DueAt.Before(before.Add(89*time.Minute)) ||
			cs[0].DueAt.After(time.Now().Add(91*time.Minute)) {
			t.Fatalf("cases = %+v, %v", cs, err)
		}
	})
}
