package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
)

func (s *server) decisionRequest(w http.ResponseWriter, r *http.Request, st *reqState) (*decision.Request, []byte, error) {
	body, err := readBody(w, r, maxJSONBody)
	if err != nil {
		return nil, nil, err
	}
	in, err := decodeDecision(body)
	if err != nil {
		return nil, nil, err
	}
	return &decision.Request{
		Org:      st.org,
		Member:   st.member,
		Action:   in.Action,
		Amount:   in.Amount,
		Currency: in.Currency,
		Customer: in.Customer,
		Reason:   in.Reason,
		Context:  in.Context,

		AfterTheFact: in.AfterTheFact,
	}, body, nil
}

func (s *server) createDecision(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	req, body, err := s.decisionRequest(w, r, st)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	// The answer is the decision with its explanation in the member's
	// language; with a key it is rendered in the decision's transaction
	// and stored there.
	answer := func(d *margen.Decision) ([]byte, error) {
		x := *d
		s.render(r.Context(), st, &x)
		return json.Marshal(&x)
	}
	req.Idem = idemWrite(ic, http.StatusCreated, answer)
	res, err := s.engine.Decide(r.Context(), req)
	if err != nil {
		s.respond(w, r, ic, err, 0, nil)
		return
	}
	if s.metrics != nil {
		s.metrics.Decision(res.Decision.Outcome)
	}
	out, err := ic.sentOr(func() ([]byte, error) { return answer(res.Decision) })
	s.respond(w, r, ic, err, http.StatusCreated, out)
}

func (s *server) explainDecision(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	// Nothing is recorded, so there is nothing to make idempotent.
	req, _, err := s.decisionRequest(w, r, st)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	d, err := s.engine.Explain(r.Context(), req)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	s.render(r.Context(), st, d)
	writeJSON(w, http.StatusOK, d)
}

func (s *server) listDecisions(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	f := margen.DecisionFilter{Action: q.Get("action"), Outcome: q.Get("outcome")}
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	f.Page = fetch(p)
	if f.Since, f.Until, err = window(q); err != nil {
		s.problem(w, r, err)
		return
	}
	if f.MemberID, err = memberFilter(st, q); err != nil {
		s.problem(w, r, err)
		return
	}
	f.CustomerID = customerFilter(st, q)
	if o := f.Outcome; o != "" && o != margen.OutcomeAllowed && o != margen.OutcomeNeedsApproval && o != margen.OutcomeDenied {
		s.problem(w, r, margen.Invalid("outcome", "error.invalid_value", "field", "outcome", "allowed", "allowed, needs_approval, denied"))
		return
	}
	items, err := s.store.ListDecisions(r.Context(), st.org.ID, f)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(d margen.Decision) string { return d.ID })
	for i := range items {
		s.render(r.Context(), st, &items[i])
	}
	writeJSON(w, http.StatusOK, list(items, next))
}

func (s *server) getDecision(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	d, err := s.store.GetDecision(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && !seesAll(st.member) && d.MemberID != st.member.ID {
		err = margen.NotFound("decision")
	}
	if err != nil {
		s.problem(w, r, err)
		return
	}
	s.render(r.Context(), st, d)
	writeJSON(w, http.StatusOK, d)
}

// render writes the explanation message of a decision in the member's
// language (decision.Words) and where a refusal leads (decision.Next).
func (s *server) render(ctx context.Context, st *reqState, d *margen.Decision) {
	if d == nil {
		return
	}
	d.Next = decision.Next(d)
	// Labels make the message readable; without them it still says what
	// happened (with ids), so a policy that cannot be loaded is logged, not
	// turned into a failed answer.
	pol, _, err := s.engine.Policy(ctx, st.org.ID)
	if err != nil {
		pol = nil
		if !decision.IsNoPolicy(err) {
			s.log.Warn("explanation without labels: cannot load the policy", "org", st.org.ID, "decision", d.ID, "err", err)
		}
	}
	d.Explanation.Message = decision.Words(s.cat, pol, memberLang(st), st.org.Currency, d)
}

// listPage is the answer of every list endpoint.
type listPage[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func list[T any](items []T, next string) listPage[T] {
	if items == nil {
		items = []T{}
	}
	return listPage[T]{Items: items, Next: next}
}

// cut trims the one extra item fetched to learn whether another page
// exists, and returns the cursor of the next page.
func cut[T any](items []T, limit int, id func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, id(items[len(items)-1])
}

// page parses limit and after; the store is asked for one more item than
// the limit so the answer knows whether there is a next page.
func page(q url.Values) (margen.Page, error) {
	p := margen.Page{After: q.Get("after"), Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, margen.Invalid("limit", "error.invalid_limit", "field", "limit", "max", maxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// fetch is the page to ask the store for: one item more than wanted.
func fetch(p margen.Page) margen.Page { return margen.Page{After: p.After, Limit: p.Limit + 1} }

func window(q url.Values) (since, until time.Time, err error) {
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &since}, {"until", &until}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			return since, until, margen.Invalid(f.name, "error.invalid_time", "field", f.name)
		}
		*f.dst = t.UTC()
	}
	return since, until, nil
}

// memberFilter is the member a list is narrowed to: frontline members may
// list only their own records.
func memberFilter(st *reqState, q url.Values) (string, error) {
	m := q.Get("member")
	if seesAll(st.member) {
		return m, nil
	}
	if m != "" && m != st.member.ID {
		return "", margen.Errorf(margen.EFORBIDDEN, "error.forbidden")
	}
	return st.member.ID, nil
}

// customerFilter accepts a customer id or the customer's reference.
func customerFilter(st *reqState, q url.Values) string {
	c := q.Get("customer")
	if c == "" || strings.HasPrefix(c, "cus_") {
		return c
	}
	return margen.CustomerID(st.org.ID, c)
}
