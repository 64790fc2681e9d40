package web

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/margenhq/margen"
)

// The manager's desk for one customer: find them, see their file, download
// everything margen holds about them, erase their personal data (with a
// confirmation step). The routes are the desk's (managers and owners);
// another organisation's customer is not found.

const (
	customerSearchMax  = 50 // customers listed for one search
	customerActsShown  = 50 // acts on a customer's file
	customerExportWait = 5 * time.Minute
)

type customerFile struct {
	Customer margen.Customer
	Name     string // how pages name them ("erased customer" once erased)
	Acts     []margen.Act
	Labels   map[string]string // action id → the policy's label in the reader's language
	Erasure  *margen.Erasure   // the erasure just done
}

// customersPage searches customers by a part of their name or reference.
func (s *server) customersPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "privacy.customers.title", nil)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > maxSearch || !utf8.ValidString(q) || strings.ContainsRune(q, 0) {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	var found []margen.Customer
	if q != "" {
		var err error
		if found, err = s.store.SearchCustomers(r.Context(), p.Org.ID, q, customerSearchMax); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	p.Data = map[string]any{"Query": q, "Customers": found}
	s.render(w, r, http.StatusOK, "desk_customers", "", p)
}

// customerOf reads the customer named by the path, or answers 404.
func (s *server) customerOf(w http.ResponseWriter, r *http.Request, p *page) (*margen.Customer, bool) {
	id := r.PathValue("id")
	if len(id) > maxSearch {
		s.errorPage(w, r, http.StatusNotFound, "error.page.not_found")
		return nil, false
	}
	c, err := s.store.CustomerByID(r.Context(), p.Org.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return c, true
}

// customerPage is the customer's file: who they are and their latest acts.
func (s *server) customerPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "privacy.customer.title", nil)
	c, ok := s.customerOf(w, r, p)
	if !ok {
		return
	}
	s.renderCustomer(w, r, p, c, nil)
}

func (s *server) renderCustomer(w http.ResponseWriter, r *http.Request, p *page, c *margen.Customer, e *margen.Erasure) {
	acts, err := s.store.ListActs(r.Context(), p.Org.ID, margen.ActFilter{CustomerID: c.ID, Page: margen.Page{Limit: customerActsShown}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name := displayName(p, c)
	switch {
	case c.Erased():
		name = p.T("inbox3.erased_customer.title") // the file's heading: capitalised
	case name == "":
		name = p.T("privacy.customer.unidentified")
	}
	l, err := s.lookup(r.Context(), p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	labels := make(map[string]string, len(acts))
	for _, a := range acts {
		labels[a.Action] = l.action(a.Action, p.Lang)
	}
	p.Data = customerFile{Customer: *c, Name: name, Acts: acts, Labels: labels, Erasure: e}
	s.render(w, r, http.StatusOK, "desk_customer", "", p)
}

// customerExport downloads the customer's export (margen.PersonalExport).
func (s *server) customerExport(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "privacy.customer.title", nil)
	c, ok := s.customerOf(w, r, p)
	if !ok {
		return
	}
	dw := &download{w: w, rc: http.NewResponseController(w), start: func() {
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		// The slug is [a-z0-9-] and the id [a-z0-9_]: no quoting needed.
		h.Set("Content-Disposition", `attachment; filename="`+p.Org.Slug+"-"+c.ID+`.json"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}}
	dw.rc.SetWriteDeadline(time.Now().Add(customerExportWait))
	ex := margen.NewPersonalExport(dw, s.clock.Now())
	err := s.store.ExportCustomer(r.Context(), p.Org.ID, c.ID, ex.Add)
	if err == nil {
		err = ex.Close()
	}
	if err != nil {
		if !dw.started {
			s.fail(w, r, err)
			return
		}
		s.log.Error("customer export failed mid-stream", "org", p.Org.Slug, "customer", c.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("customer export", "org", p.Org.Slug, "member", p.Member.Login, "customer", c.ID)
}

// customerEraseConfirm asks before erasing: what goes, what stays.
func (s *server) customerEraseConfirm(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "privacy.erase.title", nil)
	c, ok := s.customerOf(w, r, p)
	if !ok {
		return
	}
	if c.Erased() {
		p.Notice = p.T("privacy.erase.already")
		s.renderCustomer(w, r, p, c, nil)
		return
	}
	name := displayName(p, c)
	if name == "" {
		name = p.T("privacy.customer.unidentified")
	}
	p.Data = customerFile{Customer: *c, Name: name}
	s.render(w, r, http.StatusOK, "desk_customer_erase", "", p)
}

// customerErase erases the customer (the confirmation form's button) and
// shows the file with what changed; a second erasure says it changed
// nothing.
func (s *server) customerErase(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "privacy.customer.title", nil)
	c, ok := s.customerOf(w, r, p)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	res, err := s.store.EraseCustomer(r.Context(), p.Org.ID, c.ID, p.Member.ID, s.clock.Now(), nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Erased {
		p.Notice = p.T("privacy.erase.done")
	} else {
		p.Notice = p.T("privacy.erase.already")
	}
	c, err = s.store.CustomerByID(r.Context(), p.Org.ID, c.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderCustomer(w, r, p, c, res)
}
