package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/margenhq/margen/store"
)

// TestBudgetsByName: the counter's verdict, the inbox and today at a
// glance name a budget in words (its label, else its period and scope),
// never by its id; the people page names roles by their label.
func TestBudgetsByName(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		res, body := w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"},
			"customer_name": {"Doña Rosa"}}, "HX-Request", "true")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Presupuesto diario por miembro: quedan") || strings.Contains(body, "mesero_dia") {
			t.Errorf("the counter's verdict: %d %s", res.StatusCode, body)
		}
		s.askAbove(t, 4000000, "mesa grande")
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		if _, body := m.do("GET", "/inbox", nil); !strings.Contains(body, "Presupuesto diario por miembro") || strings.Contains(body, "mesero_dia") {
			t.Errorf("the inbox names the budget by its id: %s", body)
		}
		o := s.client(t)
		o.signin("admin", s.Pass["admin"])
		if _, body := o.do("GET", "/desk/today", nil); !strings.Contains(body, "Presupuesto diario por miembro") || strings.Contains(body, "mesero_dia") {
			t.Errorf("today names the budget by its id: %s", body)
		}
		// The people page names roles by their label.
		if _, body := o.do("GET", "/desk/people", nil); !strings.Contains(body, "<td>Supervisora de turno</td>") || strings.Contains(body, "<td>supervisor</td>") {
			t.Errorf("the people page names roles by their id: %s", body)
		}
	})
}

// TestPolicyEditorSpeaksSpanish: the policy editor shows a broken policy's
// problem in the member's language, with its arguments, at its line.
func TestPolicyEditorSpeaksSpanish(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		c := s.client(t)
		c.signin("admin", s.Pass["admin"])
		broken := strings.Replace(testPolicy, "max_amount: 2500000", "max_amount: lots", 1) +
			"  - {id: cortesia_mesa, role: mesero, actions: [cortesia], max_amount: 1}\n"
		res, body := c.do("POST", "/desk/policy/check", url.Values{"source": {broken}}, "HX-Request", "true")
		for _, want := range []string{"debe ser un número entero de unidades menores (centavos)", `id de regla &#34;cortesia_mesa&#34; repetido`} {
			if res.StatusCode != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("the check in Spanish lacks %q: %d %s", want, res.StatusCode, body)
			}
		}
		if strings.Contains(body, "must be a whole number") || strings.Contains(body, "duplicate rule id") {
			t.Errorf("the check in Spanish shows English: %s", body)
		}
	})
}
