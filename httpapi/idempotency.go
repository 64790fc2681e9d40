package httpapi

import (
	"errors"
	"net/http"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
)

const maxIdemKey = 255

// idemCall is one idempotent write in progress (nil when the request has no
// Idempotency-Key: every method is nil-safe).
type idemCall struct {
	s    *server
	key  margen.IdemKey
	hash string
}

// beginIdem starts an idempotent write. With an Idempotency-Key it answers
// at once (done) when the key was already used: the stored answer is
// replayed when the request is the same, refused (422) when it is not; a
// duplicate still in flight in this process is refused with 409. The hash
// covers the method and path as well as the body, so one key reused on
// another route is a different request.
func (s *server) beginIdem(w http.ResponseWriter, r *http.Request, body []byte) (ic *idemCall, done bool) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return nil, false
	}
	if len(k) > maxIdemKey {
		s.problem(w, r, margen.Invalid("Idempotency-Key", "error.too_long", "field", "Idempotency-Key", "max", maxIdemKey))
		return nil, true
	}
	st := state(r)
	ic = &idemCall{
		s:    s,
		key:  margen.IdemKey{OrgID: st.org.ID, MemberID: st.member.ID, Key: k},
		hash: decision.HashRequest(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...)),
	}
	if s.replay(w, r, ic) {
		return nil, true
	}
	s.inflightMu.Lock()
	_, busy := s.inflight[ic.key]
	if !busy {
		s.inflight[ic.key] = struct{}{}
	}
	s.inflightMu.Unlock()
	if busy {
		s.problem(w, r, margen.Errorf(margen.ECONFLICT, "error.idempotency_in_flight"))
		return nil, true
	}
	return ic, false
}

// release ends the in-flight mark of the key.
func (ic *idemCall) release() {
	if ic == nil {
		return
	}
	ic.s.inflightMu.Lock()
	delete(ic.s.inflight, ic.key)
	ic.s.inflightMu.Unlock()
}

// record is the idempotency record to store with the write, holding the
// answer about to be sent.
func (ic *idemCall) record(status int, body []byte) *margen.Idempotency {
	if ic == nil {
		return nil
	}
	return &margen.Idempotency{OrgID: ic.key.OrgID, MemberID: ic.key.MemberID, Key: ic.key.Key,
		RequestHash: ic.hash, Status: status, Body: body, CreatedAt: ic.s.clock.Now()}
}

// replay answers from the stored record of the key, if there is one.
func (s *server) replay(w http.ResponseWriter, r *http.Request, ic *idemCall) bool {
	rec, err := s.store.Idempotency(r.Context(), ic.key.OrgID, ic.key.MemberID, ic.key.Key)
	switch {
	case margen.IsCode(err, margen.ENOTFOUND):
		return false
	case err != nil:
		s.problem(w, r, err)
	case rec.RequestHash != ic.hash:
		s.problem(w, r, margen.Errorf(margen.EMISMATCH, "error.idempotency_mismatch"))
	default:
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, rec.Status, rec.Body)
	}
	return true
}

// respond finishes an idempotent write: the prepared answer on success; on
// a lost race for the key (another process stored it first), the stored
// answer; otherwise the error.
func (s *server) respond(w http.ResponseWriter, r *http.Request, ic *idemCall, err error, status int, body []byte) {
	if err == nil {
		writeRaw(w, status, body)
		return
	}
	var e *margen.Error
	if ic != nil && errors.As(err, &e) && e.Code == margen.ECONFLICT && e.Key == "error.idempotency_exists" {
		if s.replay(w, r, ic) {
			return
		}
	}
	s.problem(w, r, err)
}
