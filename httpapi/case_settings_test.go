package httpapi_test

import (
	"net/http"
	"testing"
)

// TestCaseSettingsAPI: managers and owners read and replace their
// organisation's follow-up rule; null takes the server's default; bad
// values are 400 problems naming the field and change nothing; frontline
// and supervisors get 403; another organisation keeps its own rule.
func TestCaseSettingsAPI(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		type doc struct {
			CSATMax   *int    `json:"csat_max"`
			NPSMax    *int    `json:"nps_max"`
			SLA       *string `json:"sla"`
			Effective struct {
				CSATMax int    `json:"csat_max"`
				NPSMax  int    `json:"nps_max"`
				SLA     string `json:"sla"`
			} `json:"effective"`
		}
		var d doc
		e.do("GET", "/api/v1/case-settings", "mario", "").want(http.StatusOK).decode(&d)
		if d.CSATMax != nil || d.NPSMax != nil || d.SLA != nil || d.Effective.CSATMax != 2 || d.Effective.NPSMax != 6 ||
			d.Effective.SLA != "24h0m0s" {
			t.Fatalf("defaults: %+v", d)
		}
		for _, login := range []string{"ana", "sara"} {
			e.do("GET", "/api/v1/case-settings", login, "").want(http.StatusForbidden)
			e.do("PUT", "/api/v1/case-settings", login, `{"csat_max": 3}`).want(http.StatusForbidden)
		}
		for _, tc := range []struct{ body, field string }{
			{`{"csat_max": 5}`, "csat_max"}, {`{"csat_max": 0}`, "csat_max"}, {`{"nps_max": 10}`, "nps_max"},
			{`{"nps_max": -2}`, "nps_max"}, {`{"sla": "1m"}`, "sla"}, {`{"sla": "721h"}`, "sla"}, {`{"sla": "soon"}`, "sla"},
			{`{"sla": "0s"}`, "sla"}, {`{"csat_max": 3, "extra": 1}`, ""},
		} {
			p := e.do("PUT", "/api/v1/case-settings", "olga", tc.body).want(http.StatusBadRequest).problem()
			if tc.field != "" && p.Field != tc.field {
				t.Errorf("%s: field %q, want %q", tc.body, p.Field, tc.field)
			}
		}
		e.do("PUT", "/api/v1/case-settings", "mario", `{"csat_max": 3, "nps_max": -1, "sla": "90m"}`).want(http.StatusOK).decode(&d)
		if *d.CSATMax != 3 || *d.NPSMax != -1 || *d.SLA != "1h30m0s" || d.Effective.CSATMax != 3 || d.Effective.NPSMax != -1 ||
			d.Effective.SLA != "1h30m0s" {
			t.Fatalf("after PUT: %+v", d)
		}
		var b doc
		e.do("GET", "/api/v1/case-settings", "omar", "").want(http.StatusOK).decode(&b)
		if b.CSATMax != nil || b.Effective.CSATMax != 2 {
			t.Fatalf("the other organisation: %+v", b)
		}
		e.do("PUT", "/api/v1/case-settings", "olga", `{"nps_max": 0}`).want(http.StatusOK).decode(&d)
		if d.CSATMax != nil || *d.NPSMax != 0 || d.SLA != nil || d.Effective.CSATMax != 2 || d.Effective.NPSMax != 0 ||
			d.Effective.SLA != "24h0m0s" {
			t.Fatalf("after the second PUT: %+v", d)
		}
	})
}
