package httpapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/policy"
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
// language, with amounts in the organisation's currency and the policy's
// labels for the action and roles.
func (s *server) render(ctx context.Context, st *reqState, d *margen.Decision) {
	if d == nil {
		return
	}
	d.Next = nextStep(d)
	lang := memberLang(st)
	args := maps.Clone(d.Explanation.Args)
	if args == nil {
		args = map[string]any{}
	}
	// Labels make the message readable; without them it still says what
	// happened (with ids), so a policy that cannot be loaded is logged, not
	// turned into a failed answer.
	if pol, _, err := s.engine.Policy(ctx, st.org.ID); err == nil {
		relabel(args, lang, pol)
	} else if !decision.IsNoPolicy(err) {
		s.log.Warn("explanation without labels: cannot load the policy", "org", st.org.ID, "decision", d.ID, "err", err)
	}
	if _, ok := args["remaining"]; !ok && d.Outcome == margen.OutcomeAllowed && len(d.Budgets) > 0 {
		// Say what is left of the tightest budget.
		low := d.Budgets[0]
		for _, b := range d.Budgets[1:] {
			if b.Remaining < low.Remaining {
				low = b
			}
		}
		args["remaining"] = low.Remaining
		args["budget"] = low.Budget
		args["period"] = periodKind(low.Period)
	}
	d.Explanation.Message = s.cat.Explain(lang, st.org.Currency, d.Explanation.Code, args)
}

// nextStep is where a refusal leads: a member refused by the policy's
// latitude (no grant, a condition, a maximum or a budget) can still ask for
// an exception, which an approver decides. A forbid rule is the owner's
// explicit "never": it leads nowhere; so does an act reported after the
// fact, which is already done.
func nextStep(d *margen.Decision) *margen.NextStep {
	if d.Outcome != margen.OutcomeDenied || d.Explanation.Code == policy.CodeForbidden || d.Action == margen.ApprovalKindException ||
		d.AfterTheFact {
		return nil
	}
	return &margen.NextStep{Kind: margen.NextException, Method: http.MethodPost, Href: "/api/v1/exceptions"}
}

// relabel replaces action, role and rule ids by the policy's labels in lang.
func relabel(args map[string]any, lang string, pol *policy.Policy) {
	if id, ok := args["rule"].(string); ok {
		if l := pol.RuleLabel(id, lang); l != "" {
			args["rule"] = l
		}
	}
	if id, ok := args["action"].(string); ok {
		if a, ok := pol.Action(id); ok && a.Label[lang] != "" {
			args["action"] = a.Label[lang]
		}
	}
	for _, k := range []string{"approver", "role"} {
		id, ok := args[k].(string)
		if !ok {
			continue
		}
		for _, role := range pol.Roles() {
			if role.ID == id && role.Label[lang] != "" {
				args[k] = role.Label[lang]
			}
		}
	}
}

// periodKind recognises a budget period key: 2026-11-25, 2026-W48, 2026-11.
func periodKind(key string) string {
	switch {
	case strings.Contains(key, "W"):
		return policy.PeriodWeek
	case len(key) == len("2006-01-02"):
		return policy.PeriodDay
	case len(key) == len("2006-01"):
		return policy.PeriodMonth
	}
	return ""
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
