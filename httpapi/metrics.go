package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"

	"github.com/margenhq/margen"
)

// serveMetrics is GET /metrics, in the Prometheus text format. It needs no
// token, so unless the server is configured with MetricsPublic it answers
// only clients on this machine that did not come through a proxy
// (a request carrying Forwarded or X-Forwarded-For did).
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		s.problem(w, r, margen.Errorf(margen.ENOTFOUND, "error.route_not_found"))
		return
	}
	if !s.metricsPublic && !loopbackClient(r) {
		s.problem(w, r, margen.Errorf(margen.EFORBIDDEN, "error.metrics_local"))
		return
	}
	s.metricsHandler.ServeHTTP(w, r)
}

func loopbackClient(r *http.Request) bool {
	if r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// countDecisions counts recorded decisions by outcome for
// margen_decisions_total. It reads the outcome from the answer, so the
// decision handler stays unaware of metrics; replays of an idempotent
// request are not counted again.
func (s *server) countDecisions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ow := &outcomeWriter{ResponseWriter: w}
		next.ServeHTTP(ow, r)
		if ow.status != http.StatusCreated || w.Header().Get("Idempotent-Replayed") != "" {
			return
		}
		s.metrics.Decision(outcomeOf(ow.body))
	})
}

var outcomeKey = []byte(`"outcome":"`)

// outcomeOf finds the outcome of a decision answer without decoding it
// (a full decode costs about 20 µs, more than a batched decision). In
// margen.Decision's JSON the outcome follows the member's context object,
// which may hold any keys, and precedes fields whose keys margen chooses:
// so the last "outcome" key is the decision's. JSON escapes every quote
// inside a string, so the key cannot be forged from a string value. If
// the shape ever changes, the answer is decoded properly.
func outcomeOf(body []byte) string {
	// bytes.Index is vectorised, bytes.LastIndex is not: walk forward.
	last := -1
	for from := 0; ; {
		i := bytes.Index(body[from:], outcomeKey)
		if i < 0 {
			break
		}
		last = from + i
		from = last + len(outcomeKey)
	}
	if last >= 0 {
		v := body[last+len(outcomeKey):]
		if j := bytes.IndexByte(v, '"'); j > 0 {
			switch o := string(v[:j]); o {
			case margen.OutcomeAllowed, margen.OutcomeNeedsApproval, margen.OutcomeDenied:
				return o
			}
		}
	}
	var d struct {
		Outcome string `json:"outcome"`
	}
	json.Unmarshal(body, &d)
	return d.Outcome
}

// outcomeWriter keeps a copy of a 201 answer's body (one decision, a few
// hundred bytes).
type outcomeWriter struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (w *outcomeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *outcomeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status == http.StatusCreated && len(w.body)+len(b) <= maxJSONBody {
		w.body = append(w.body, b...)
	}
	return w.ResponseWriter.Write(b)
}

func (w *outcomeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
