package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// The desk's Today names a team budget's account by the team's name, not
// by its slug.
func TestTodayNamesTeams(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		ctx := context.Background()
		if err := db.CreateTeam(ctx, &margen.Team{OrgID: s.Org.ID, Slug: "salon", Name: "Salón principal"}, "test"); err != nil {
			t.Fatal(err)
		}
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		_, body := m.do("GET", "/desk/policy", nil)
		key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(body)
		if key == nil {
			t.Fatalf("editor: %s", body)
		}
		pol := strings.Replace(testPolicy, "budgets:\n", "budgets:\n  - id: salon_mes\n    scope: team\n    period: month\n    limit: 90000000\n", 1)
		pol = strings.Replace(pol, "budgets: [mesero_dia]", "budgets: [mesero_dia, salon_mes]", 1)
		if res, body := m.do("POST", "/desk/policy", url.Values{"source": {pol}, "note": {"team"}, "key": {key[1]}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("publish: %d %s", res.StatusCode, body)
		}
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		if res, body := w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("decision: %d %s", res.StatusCode, body)
		}
		res, body := m.do("GET", "/desk/today", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("today: %d %s", res.StatusCode, body)
		}
		if !strings.Contains(body, "Salón principal") {
			t.Errorf("today does not name the team: %s", body)
		}
		if strings.Contains(body, ">salon<") || strings.Contains(body, " salon<") {
			t.Errorf("today shows the team's slug: %s", body)
		}
	})
}

// apiGet reads path from the JSON API with login's token into v.
func apiGet(t *testing.T, s *site, login, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token[login])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
	}
}
