package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/margenhq/margen"
)

// A customer's personal data: GET /api/v1/customers/{id}/export and POST
// /api/v1/customers/{id}/erase, for managers and owners (the route table's
// manager rule, as for the other exports). Another organisation's customer
// is not found.

// exportCustomer streams the customer's export (margen.PersonalExport).
func (s *server) exportCustomer(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	id := r.PathValue("id")
	if len(id) > maxRef {
		s.problem(w, r, margen.NotFound("customer"))
		return
	}
	dw := &downloadWriter{w: w, rc: http.NewResponseController(w), start: func() {
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		// The id is [a-z0-9_] (a hash): the file name needs no quoting.
		h.Set("Content-Disposition", `attachment; filename="`+st.org.Slug+"-"+id+`.json"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}}
	dw.rc.SetWriteDeadline(time.Now().Add(transferDeadline))
	ex := margen.NewPersonalExport(dw, s.clock.Now())
	err := s.store.ExportCustomer(r.Context(), st.org.ID, id, ex.Add)
	if err == nil {
		err = ex.Close()
	}
	if err != nil {
		if !dw.started {
			s.problem(w, r, err)
			return
		}
		s.log.Error("customer export failed mid-stream", "request_id", reqID(r), "err", err)
		panic(http.ErrAbortHandler)
	}
	// Who took whose data out.
	s.log.Info("customer export", "request_id", reqID(r), "org", st.org.Slug, "member", st.member.Login, "customer", id)
}

// eraseCustomer erases the customer's personal data; a second erasure
// answers 200 with "erased": false and changes nothing.
func (s *server) eraseCustomer(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	id := r.PathValue("id")
	if len(id) > maxRef {
		s.problem(w, r, margen.NotFound("customer"))
		return
	}
	body, err := readBody(w, r, maxJSONBody)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	render := func(e *margen.Erasure) ([]byte, error) { return json.Marshal(e) }
	res, err := s.store.EraseCustomer(r.Context(), st.org.ID, id, st.member.ID, s.clock.Now(), idemWrite(ic, http.StatusOK, render))
	var out []byte
	if err == nil {
		out, err = ic.sentOr(func() ([]byte, error) { return render(res) })
	}
	s.respond(w, r, ic, err, http.StatusOK, out)
}
