package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
)

const (
	maxNote   = 1000
	maxWanted = 1000
	maxRef    = 200
)

func (s *server) listActs(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	f := margen.ActFilter{Page: fetch(p), Action: q.Get("action")}
	if f.Since, f.Until, err = window(q); err != nil {
		s.problem(w, r, err)
		return
	}
	if f.MemberID, err = memberFilter(st, q); err != nil {
		s.problem(w, r, err)
		return
	}
	f.CustomerID = customerFilter(st, q)
	if v := q.Get("flagged"); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			s.problem(w, r, margen.Invalid("flagged", "error.invalid_value", "field", "flagged", "allowed", "true, false"))
			return
		}
		f.Flagged = &b
	}
	items, err := s.store.ListActs(r.Context(), st.org.ID, f)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(a margen.Act) string { return a.ID })
	writeJSON(w, http.StatusOK, list(items, next))
}

// visibleAct returns an act the member may see: frontline members see only
// their own, and another's act answers exactly like a missing one.
func (s *server) visibleAct(r *http.Request, st *reqState) (*margen.Act, error) {
	a, err := s.store.GetAct(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && !seesAll(st.member) && a.MemberID != st.member.ID {
		return nil, margen.NotFound("act")
	}
	return a, err
}

func (s *server) getAct(w http.ResponseWriter, r *http.Request) {
	a, err := s.visibleAct(r, state(r))
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

type reactionBody struct {
	Sentiment string `json:"sentiment"`
	Note      string `json:"note"`
	Score     *int   `json:"score"` // optional, margen.MinScore..MaxScore
}

func (s *server) createReaction(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	var in reactionBody
	body, ok := s.readJSON(w, r, &in)
	if !ok {
		return
	}
	var err error
	switch {
	case in.Sentiment == "":
		err = margen.Invalid("sentiment", "error.required", "field", "sentiment")
	case in.Sentiment != margen.SentimentPositive && in.Sentiment != margen.SentimentNeutral && in.Sentiment != margen.SentimentNegative:
		err = margen.Invalid("sentiment", "error.invalid_value", "field", "sentiment", "allowed", "positive, neutral, negative")
	case len(in.Note) > maxNote:
		err = margen.Invalid("note", "error.too_long", "field", "note", "max", maxNote)
	case in.Score != nil && (*in.Score < margen.MinScore || *in.Score > margen.MaxScore):
		err = margen.Invalid("score", "error.invalid_value", "field", "score",
			"allowed", fmt.Sprintf("%d-%d", margen.MinScore, margen.MaxScore))
	}
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	act, err := s.visibleAct(r, st)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	rea := &margen.Reaction{
		ID:        margen.NewID("rea"),
		OrgID:     st.org.ID,
		ActID:     act.ID,
		Source:    margen.SourceEmployee,
		Sentiment: in.Sentiment,
		Note:      in.Note,
		MemberID:  st.member.ID,
		CreatedAt: s.clock.Now(),
		Score:     in.Score,
	}
	out, _ := json.Marshal(rea)
	err = s.store.RecordReaction(r.Context(), rea, ic.record(http.StatusCreated, out))
	s.respond(w, r, ic, err, http.StatusCreated, out)
}

func (s *server) listRefusals(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	f := margen.RefusalFilter{Page: fetch(p), ReasonKind: q.Get("reason"), Rule: q.Get("rule")}
	if f.Since, f.Until, err = window(q); err != nil {
		s.problem(w, r, err)
		return
	}
	if f.MemberID, err = memberFilter(st, q); err != nil {
		s.problem(w, r, err)
		return
	}
	f.CustomerID = customerFilter(st, q)
	items, err := s.store.ListRefusals(r.Context(), st.org.ID, f)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(x margen.Refusal) string { return x.ID })
	writeJSON(w, http.StatusOK, list(items, next))
}

func (s *server) getRefusal(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	x, err := s.store.GetRefusal(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && !seesAll(st.member) && x.MemberID != st.member.ID {
		err = margen.NotFound("refusal")
	}
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, x)
}

type refusalBody struct {
	Wanted   string `json:"wanted"`
	Reason   string `json:"reason"`
	Left     string `json:"customer_left"`
	Customer *struct {
		Ref  string `json:"ref"`
		Name string `json:"name"`
	} `json:"customer"`
	Action string          `json:"action"`
	Amount json.RawMessage `json:"amount"`
	Rule   string          `json:"rule"`
	Note   string          `json:"note"`
}

var (
	refusalReasons = []string{margen.RefusalNotAllowed, margen.RefusalNoRule, margen.RefusalOtherDepartment, margen.RefusalOther}
	leftValues     = []string{margen.LeftAccepted, margen.LeftNeutral, margen.LeftUnhappy, margen.LeftLost, margen.LeftEscalation, margen.LeftUnknown}
)

func oneOf(field, v string, allowed []string) error {
	if v == "" {
		return margen.Invalid(field, "error.required", "field", field)
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return margen.Invalid(field, "error.invalid_value", "field", field, "allowed", allowed)
}

func (s *server) createRefusal(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	var in refusalBody
	body, ok := s.readJSON(w, r, &in)
	if !ok {
		return
	}
	amount, err := parseAmount(in.Amount)
	if err == nil {
		err = validateRefusal(&in)
	}
	if err == nil && in.Action != "" {
		// Without a policy yet there is no catalogue to check the action
		// against; a policy that cannot be read fails the request.
		pol, _, perr := s.engine.Policy(r.Context(), st.org.ID)
		switch {
		case perr == nil:
			if _, ok := pol.Action(in.Action); !ok {
				err = margen.Invalid("action", "error.unknown_action", "action", in.Action)
			}
		case !decision.IsNoPolicy(perr):
			err = fmt.Errorf("refusal: load the policy of %s: %w", st.org.ID, perr)
		}
	}
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	ref := &margen.Refusal{
		ID:         margen.NewID("ref"),
		OrgID:      st.org.ID,
		MemberID:   st.member.ID,
		Action:     in.Action,
		Amount:     amount,
		Wanted:     in.Wanted,
		ReasonKind: in.Reason,
		Rule:       in.Rule,
		Left:       in.Left,
		Note:       in.Note,
		CreatedAt:  s.clock.Now(),
	}
	// A customer first met by a "no" is still a customer: it is created
	// with the refusal.
	var cus *margen.Customer
	if in.Customer != nil && in.Customer.Ref != "" {
		ref.CustomerID = margen.CustomerID(st.org.ID, in.Customer.Ref)
		cus = &margen.Customer{ID: ref.CustomerID, OrgID: st.org.ID, Ref: in.Customer.Ref, Name: in.Customer.Name,
			Tags: []string{}, CreatedAt: ref.CreatedAt}
	}
	out, _ := json.Marshal(ref)
	err = s.store.RecordRefusal(r.Context(), ref, cus, ic.record(http.StatusCreated, out))
	s.respond(w, r, ic, err, http.StatusCreated, out)
}

func validateRefusal(in *refusalBody) error {
	switch {
	case in.Wanted == "":
		return margen.Invalid("wanted", "error.required", "field", "wanted")
	case len(in.Wanted) > maxWanted:
		return margen.Invalid("wanted", "error.too_long", "field", "wanted", "max", maxWanted)
	case len(in.Note) > maxNote:
		return margen.Invalid("note", "error.too_long", "field", "note", "max", maxNote)
	case len(in.Rule) > 64:
		return margen.Invalid("rule", "error.too_long", "field", "rule", "max", 64)
	case len(in.Action) > 64:
		return margen.Invalid("action", "error.too_long", "field", "action", "max", 64)
	case in.Customer != nil && len(in.Customer.Ref) > maxRef:
		return margen.Invalid("customer.ref", "error.too_long", "field", "customer.ref", "max", maxRef)
	case in.Customer != nil && len(in.Customer.Name) > maxRef:
		return margen.Invalid("customer.name", "error.too_long", "field", "customer.name", "max", maxRef)
	}
	if err := oneOf("reason", in.Reason, refusalReasons); err != nil {
		return err
	}
	return oneOf("customer_left", in.Left, leftValues)
}

func (s *server) listBudgets(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	f := margen.BudgetFilter{BudgetID: q.Get("budget"), Subject: q.Get("subject"), Period: q.Get("period")}
	if !seesAll(st.member) {
		if f.Subject != "" && f.Subject != st.member.ID {
			s.problem(w, r, margen.Errorf(margen.EFORBIDDEN, "error.forbidden"))
			return
		}
		f.Subject = st.member.ID
	}
	items, err := s.store.ListBudgets(r.Context(), st.org.ID, f)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list(items, ""))
}
