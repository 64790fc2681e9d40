package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
)

// Idempotency is one mechanism, owned here: every write route with an
// Idempotency-Key calls beginIdem (which replays a recorded answer, refuses
// a reuse with another request, and guards duplicates in flight in this
// process), hands the store, or the service that writes, a record holding
// the final HTTP answer (record, or idemWrite when the answer depends on
// what the write produces), and finishes with respond. The store persists
// the record in the write's transaction without reading it; the domain
// knows no HTTP status. Records expire after Config.IdempotencyTTL; a purge
// job deletes them.

const maxIdemKey = 255

// idemAnswer is an HTTP answer as an idempotency record stores it: the
// status, the headers that matter, and the JSON body.
type idemAnswer struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header,omitempty"`
	Body   json.RawMessage   `json:"body"`
}

// encodeAnswer is the stored form of an answer. It is written by hand, not
// with json.Marshal, which would scan the body once more: it may run in the
// decision writer's transaction, and the body is JSON we made.
func encodeAnswer(status int, body []byte) []byte {
	if len(body) == 0 {
		body = []byte("null")
	}
	b := make([]byte, 0, len(body)+72)
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"header":{"Content-Type":"application/json"},"body":`...)
	b = append(b, body...)
	return append(b, '}')
}

// idemCall is one idempotent write in progress (nil when the request has no
// Idempotency-Key: every method is nil-safe).
type idemCall struct {
	s    *server
	key  margen.IdemKey
	hash string

	mu   sync.Mutex
	sent []byte // the body idemWrite rendered for the record
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

// base is the record of the call, without its answer.
func (ic *idemCall) base() margen.Idempotency {
	now := ic.s.clock.Now()
	return margen.Idempotency{OrgID: ic.key.OrgID, MemberID: ic.key.MemberID, Key: ic.key.Key,
		RequestHash: ic.hash, CreatedAt: now, ExpiresAt: now.Add(ic.s.idemTTL)}
}

// record is the idempotency record to store with a write whose answer is
// known before the write.
func (ic *idemCall) record(status int, body []byte) *margen.Idempotency {
	if ic == nil {
		return nil
	}
	rec := ic.base()
	rec.Response = encodeAnswer(status, body)
	return &rec
}

// idemWrite is the record to store with a write whose answer depends on what
// the write produces: render makes the body from the result. The body it
// rendered is the one to send (sent), so a live answer and its replay are
// byte for byte the same.
func idemWrite[T any](ic *idemCall, status int, render func(T) ([]byte, error)) *margen.IdemWrite[T] {
	if ic == nil {
		return nil
	}
	return &margen.IdemWrite[T]{Record: ic.base(), Respond: func(v T) ([]byte, error) {
		b, err := render(v)
		if err != nil {
			return nil, err
		}
		ic.mu.Lock()
		ic.sent = b
		ic.mu.Unlock()
		return encodeAnswer(status, b), nil
	}}
}

// sentOr is the body idemWrite rendered, or else the body render makes now
// (a call without a key).
func (ic *idemCall) sentOr(render func() ([]byte, error)) ([]byte, error) {
	if ic != nil {
		ic.mu.Lock()
		b := ic.sent
		ic.mu.Unlock()
		if b != nil {
			return b, nil
		}
	}
	return render()
}

// replay answers from the stored record of the key, if there is a live one.
func (s *server) replay(w http.ResponseWriter, r *http.Request, ic *idemCall) bool {
	rec, err := s.store.Idempotency(r.Context(), ic.key.OrgID, ic.key.MemberID, ic.key.Key)
	switch {
	case margen.IsCode(err, margen.ENOTFOUND):
		return false
	case err != nil:
		s.problem(w, r, err)
	case !rec.Live(s.clock.Now()):
		return false // expired: the key is free again (the purge deletes it)
	case rec.RequestHash != ic.hash:
		s.problem(w, r, margen.Errorf(margen.EMISMATCH, "error.idempotency_mismatch"))
	default:
		var a idemAnswer
		if err := json.Unmarshal(rec.Response, &a); err != nil || a.Status == 0 {
			s.problem(w, r, &margen.Error{Code: margen.EINTERNAL, Key: "error.internal",
				Err: errors.New("httpapi: unreadable idempotency record")})
			return true
		}
		for k, v := range a.Header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, a.Status, a.Body)
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
