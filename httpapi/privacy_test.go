package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/margenhq/margen"
)

// TestCustomerExportErase: managers and owners export and erase a customer;
// a waiter and a supervisor may do neither (403); another organisation's
// customer is 404; the export holds the customer's rows and, after the
// erasure, none of their personal data; a retry with the same
// Idempotency-Key replays the answer; a second erasure says it changed
// nothing; the ledger and the audit chain still verify.
func TestCustomerExportErase(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		const name, contact = "Leocadia Fuentesal", "leocadia@example.org"
		body := `{"action":"courtesy_gift","amount":1000,"customer":{"ref":"leocadia-f","name":"` + name +
			`","contact":"` + contact + `"},"reason":"postre para ` + name + `"}`
		d, res := e.decide("ana", body)
		res.want(http.StatusCreated)
		id := d.CustomerID
		exportPath, erasePath := "/api/v1/customers/"+id+"/export", "/api/v1/customers/"+id+"/erase"

		for _, login := range []string{"ana", "sara"} {
			e.do("GET", exportPath, login, "").want(http.StatusForbidden)
			e.do("POST", erasePath, login, "").want(http.StatusForbidden)
		}
		e.do("GET", exportPath, "omar", "").want(http.StatusNotFound)
		e.do("POST", erasePath, "omar", "").want(http.StatusNotFound)
		e.do("GET", "/api/v1/customers/cus_nobody/export", "olga", "").want(http.StatusNotFound)

		ex := e.do("GET", exportPath, "mario", "").want(http.StatusOK)
		var doc struct {
			Customer  margen.Customer   `json:"customer"`
			Decisions []margen.Decision `json:"decisions"`
			Acts      []margen.Act      `json:"acts"`
			Truncated []string          `json:"truncated"`
		}
		ex.decode(&doc)
		if doc.Customer.Name != name || len(doc.Decisions) != 1 || len(doc.Acts) != 1 || len(doc.Truncated) != 0 ||
			!strings.Contains(ex.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("export: %s", ex.body)
		}

		first := e.do("POST", erasePath, "mario", "", "Idempotency-Key", "erase-1").want(http.StatusOK)
		var er margen.Erasure
		first.decode(&er)
		if !er.Erased || er.CustomerID != id || er.Rows["decisions"] != 1 || er.Rows["acts"] != 1 {
			t.Fatalf("erase: %s", first.body)
		}
		replay := e.do("POST", erasePath, "mario", "", "Idempotency-Key", "erase-1").want(http.StatusOK)
		if string(replay.body) != string(first.body) || replay.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay: %s (%v), want %s", replay.body, replay.header, first.body)
		}
		again := e.do("POST", erasePath, "olga", "").want(http.StatusOK)
		again.decode(&er)
		if er.Erased {
			t.Errorf("second erasure: %s, want erased false", again.body)
		}
		after := e.do("GET", exportPath, "olga", "").want(http.StatusOK)
		for _, s := range []string{name, contact, "leocadia-f"} {
			if strings.Contains(string(after.body), s) {
				t.Errorf("export after the erasure holds %q: %s", s, after.body)
			}
		}
		if rep := e.checkNow("olga", ""); !rep.OK || rep.Audit.Rows == 0 {
			t.Errorf("ledger check after the erasure: %+v", rep)
		}
	})
}
