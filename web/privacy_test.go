package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/margenhq/margen/store"
)

// TestCustomerFileExportErase: the owner finds a customer on the desk,
// sees their file, downloads their export, confirms and erases them; the
// file and the inbox then say "cliente borrado" and nothing of theirs; a
// second erasure says nothing changed; a waiter and a supervisor get 403
// on every step, another organisation's owner 404.
func TestCustomerFileExportErase(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		const name, contact = "Leocadia Fuentesal", "leocadia@example.org"
		d := s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 5000,
			"customer": map[string]any{"ref": "leocadia-f", "name": name, "contact": contact},
			"reason":   "postre para " + name})
		id := d.CustomerID
		file, erase := "/desk/customers/"+id, "/desk/customers/"+id+"/erase"

		for _, login := range []string{"camila", "marta"} {
			c := s.client(t)
			c.signin(login, s.Pass[login])
			for _, p := range []struct{ method, path string }{{"GET", "/desk/customers?q=Leo"}, {"GET", file},
				{"GET", file + "/export"}, {"GET", erase}, {"POST", erase}} {
				if res, _ := c.do(p.method, p.path, url.Values{"confirm": {"yes"}}); res.StatusCode != http.StatusForbidden {
					t.Errorf("%s %s %s: %d, want 403", login, p.method, p.path, res.StatusCode)
				}
			}
		}
		other := s.addTenant(t, "otra", "dueno", "mesero2", "super2")
		oc := s.client(t)
		oc.signinTo(other.slug, other.owner, s.Pass[other.owner])
		for _, p := range []string{file, file + "/export", erase} {
			if res, _ := oc.do("GET", p, nil); res.StatusCode != http.StatusNotFound {
				t.Errorf("another organisation's owner GET %s: %d, want 404", p, res.StatusCode)
			}
		}
		if res, _ := oc.do("POST", erase, url.Values{"confirm": {"yes"}}); res.StatusCode != http.StatusNotFound {
			t.Errorf("another organisation's owner erases: %d, want 404", res.StatusCode)
		}

		c := s.client(t)
		c.signin("admin", s.Pass["admin"])
		res, body := c.do("GET", "/desk/customers?q=leocadia", nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `href="`+file+`"`) {
			t.Fatalf("search: %d %s", res.StatusCode, body)
		}
		res, body = c.do("GET", file, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, name) || !strings.Contains(body, contact) || !strings.Contains(body, "postre para") {
			t.Fatalf("file: %d %s", res.StatusCode, body)
		}
		res, body = c.do("GET", file+"/export", nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(body, contact) {
			t.Fatalf("export: %d %v %s", res.StatusCode, res.Header, body)
		}
		res, body = c.do("GET", erase, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "No se puede deshacer") || !strings.Contains(body, `name="confirm" value="yes"`) {
			t.Fatalf("confirm page: %d %s", res.StatusCode, body)
		}
		if res, _ := c.do("POST", erase, url.Values{}); res.StatusCode != http.StatusBadRequest {
			t.Errorf("erase without the confirmation: %d, want 400", res.StatusCode)
		}
		res, body = c.do("POST", erase, url.Values{"confirm": {"yes"}})
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "se borraron") || !strings.Contains(body, "<h1>Cliente borrado</h1>") ||
			strings.Contains(body, name) || strings.Contains(body, contact) || strings.Contains(body, "postre para") {
			t.Fatalf("erase: %d %s", res.StatusCode, body)
		}
		if _, body = c.do("POST", erase, url.Values{"confirm": {"yes"}}); !strings.Contains(body, "ya se habían borrado") {
			t.Errorf("second erasure: %s", body)
		}
		if _, body = c.do("GET", "/desk/customers?q=leocadia", nil); strings.Contains(body, file) {
			t.Errorf("the old name still finds the customer: %s", body)
		}
		mc := s.client(t)
		mc.signin("marta", s.Pass["marta"])
		if res, body := mc.do("GET", "/inbox", nil); res.StatusCode != http.StatusOK || !strings.Contains(body, "cliente borrado") || strings.Contains(body, name) {
			t.Errorf("inbox after the erasure: %d %s", res.StatusCode, body)
		}
	})
}
