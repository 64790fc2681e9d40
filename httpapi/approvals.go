package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
)

const (
	maxComment     = 1000
	maxDescription = 1000
	maxReason      = 1000
	recentActs     = 5
)

var approvalStatuses = []string{margen.ApprovalPending, margen.ApprovalApproved, margen.ApprovalRejected, margen.ApprovalExpired}

// approvalView is an approval request as the API shows it: the SLA as a Go
// duration string ("10m0s") and, for the people who may see the request,
// what an approver needs to answer it.
type approvalView struct {
	*margen.Approval
	SLA     string           `json:"sla"`
	Context *approvalContext `json:"context,omitempty"`
}

// approvalContext is what an approver sees beside the request: the
// decision (amount, reason, explanation), the customer, the requester's
// budgets as they stand now and the customer's most recent acts.
type approvalContext struct {
	Decision   *margen.Decision `json:"decision"`
	Requester  *requesterView   `json:"requester,omitempty"`
	Customer   *margen.Customer `json:"customer,omitempty"`
	Budgets    []budgetNow      `json:"budgets"`
	RecentActs []margen.Act     `json:"recent_acts"`
}

// requesterView names the member who asked, without their account details.
type requesterView struct {
	ID    string `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	Team  string `json:"team,omitempty"`
}

// budgetNow is a budget account the request would charge, as it stands
// now, with what remains of its limit.
type budgetNow struct {
	margen.BudgetAccount
	Remaining int64 `json:"remaining"`
}

func view(a *margen.Approval) approvalView {
	return approvalView{Approval: a, SLA: a.SLA.String()}
}

// withContext adds the approver's context to a request. A piece that cannot
// be read (a customer since erased, say) is left out rather than failing
// the whole answer; a store outage still fails it.
func (s *server) withContext(ctx context.Context, st *reqState, a *margen.Approval) (approvalView, error) {
	v := view(a)
	d, err := s.store.GetDecision(ctx, st.org.ID, a.DecisionID)
	if err != nil {
		return v, err
	}
	s.render(ctx, st, d)
	c := &approvalContext{Decision: d, Budgets: []budgetNow{}, RecentActs: []margen.Act{}}
	if m, err := s.store.MemberByID(ctx, st.org.ID, a.MemberID); err == nil {
		c.Requester = &requesterView{ID: m.ID, Login: m.Login, Name: m.Name, Role: m.Role, Team: m.Team}
	} else if !margen.IsCode(err, margen.ENOTFOUND) {
		return v, err
	}
	// The customer's record and their recent acts (by anyone) are for those
	// who decide: a frontline requester sees only their own acts, or a
	// request naming any customer reference would read that customer's file.
	approver := seesAll(st.member) || a.MemberID != st.member.ID
	if a.CustomerID != "" {
		if approver {
			cus, err := s.store.CustomerByID(ctx, st.org.ID, a.CustomerID)
			switch {
			case err == nil:
				c.Customer = cus
			case !margen.IsCode(err, margen.ENOTFOUND):
				return v, err
			}
		}
		f := margen.ActFilter{Page: margen.Page{Limit: recentActs}, CustomerID: a.CustomerID}
		if !approver {
			f.MemberID = st.member.ID
		}
		acts, err := s.store.ListActs(ctx, st.org.ID, f)
		if err != nil {
			return v, err
		}
		if acts != nil {
			c.RecentActs = acts
		}
	}
	for _, b := range d.Budgets {
		accts, err := s.store.ListBudgets(ctx, st.org.ID, margen.BudgetFilter{BudgetID: b.Budget, Subject: b.Subject, Period: b.Period})
		if err != nil {
			return v, err
		}
		for _, acc := range accts {
			c.Budgets = append(c.Budgets, budgetNow{BudgetAccount: acc, Remaining: acc.Limit - acc.Used()})
		}
	}
	v.Context = c
	return v, nil
}

// needApprovals answers 503 when the server runs without the approval
// service (an API built without it, as in some tests).
func (s *server) needApprovals(w http.ResponseWriter, r *http.Request) bool {
	if s.approvals == nil {
		s.problem(w, r, margen.Errorf(margen.EUNAVAILABLE, "error.unavailable"))
		return false
	}
	return true
}

// pendingApprovals lists the requests the member can decide now, each with
// its context.
func (s *server) pendingApprovals(w http.ResponseWriter, r *http.Request) {
	if !s.needApprovals(w, r) {
		return
	}
	st := state(r)
	p, err := page(r.URL.Query())
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, err := s.approvals.Pending(r.Context(), st.org, st.member, fetch(p))
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(a margen.Approval) string { return a.ID })
	out := make([]approvalView, 0, len(items))
	for i := range items {
		v, err := s.withContext(r.Context(), st, &items[i])
		if err != nil {
			s.problem(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, list(out, next))
}

// myRequests lists the requests the member made, newest first.
func (s *server) myRequests(w http.ResponseWriter, r *http.Request) {
	if !s.needApprovals(w, r) {
		return
	}
	st := state(r)
	p, err := page(r.URL.Query())
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, err := s.approvals.Mine(r.Context(), st.org, st.member, fetch(p))
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(a margen.Approval) string { return a.ID })
	out := make([]approvalView, len(items))
	for i := range items {
		out[i] = view(&items[i])
	}
	writeJSON(w, http.StatusOK, list(out, next))
}

// listApprovals lists every request of the organisation (supervisors and
// above), optionally narrowed by status, requester and approver role.
func (s *server) listApprovals(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	f := margen.ApprovalFilter{Page: fetch(p), Status: q.Get("status"), MemberID: q.Get("member")}
	if f.Status != "" && !slices.Contains(approvalStatuses, f.Status) {
		s.problem(w, r, margen.Invalid("status", "error.invalid_value", "field", "status", "allowed", approvalStatuses))
		return
	}
	if role := q.Get("approver_role"); role != "" {
		f.ApproverRoles = []string{role}
	}
	items, err := s.store.ListApprovals(r.Context(), st.org.ID, f)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(a margen.Approval) string { return a.ID })
	out := make([]approvalView, len(items))
	for i := range items {
		out[i] = view(&items[i])
	}
	writeJSON(w, http.StatusOK, list(out, next))
}

// getApproval answers one request with its history and context, to whoever
// may see it (approval.RightsOn); anyone else gets the answer for a missing
// id.
func (s *server) getApproval(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	a, err := s.store.GetApprovalWithHistory(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil {
		var see bool
		if see, err = s.maySee(r.Context(), st, a); err == nil && !see {
			err = margen.NotFound("approval")
		}
	}
	if err != nil {
		s.problem(w, r, err)
		return
	}
	v, err := s.withContext(r.Context(), st, a)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// maySee asks the approval service's one rule; without the service (an API
// built without it) only the requester and supervisors and above see.
func (s *server) maySee(ctx context.Context, st *reqState, a *margen.Approval) (bool, error) {
	if s.approvals == nil {
		return seesAll(st.member) || a.MemberID == st.member.ID, nil
	}
	rights, err := s.approvals.Rights(ctx, st.org, st.member, a)
	return rights.See, err
}

type answerBody struct {
	Comment string `json:"comment"`
}

func (s *server) approveApproval(w http.ResponseWriter, r *http.Request) { s.answer(w, r, true) }
func (s *server) rejectApproval(w http.ResponseWriter, r *http.Request)  { s.answer(w, r, false) }

// answer approves or rejects a request. The guards (not your own request,
// within your own latitude, still pending at the level you saw) are the
// approval service's; a request answered twice gets 409.
func (s *server) answer(w http.ResponseWriter, r *http.Request, approve bool) {
	if !s.needApprovals(w, r) {
		return
	}
	st := state(r)
	body, err := readBody(w, r, maxJSONBody)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	var in answerBody
	if len(bytes.TrimSpace(body)) > 0 { // the comment is optional, and so is the body
		if err := decodeStrict(body, &in); err != nil {
			s.problem(w, r, err)
			return
		}
	}
	if len(in.Comment) > maxComment {
		s.problem(w, r, margen.Invalid("comment", "error.too_long", "field", "comment", "max", maxComment))
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	a, err := s.approvals.Answer(r.Context(), st.org, st.member, r.PathValue("id"), approve, in.Comment,
		idemWrite(ic, http.StatusOK, answerJSON))
	if err != nil {
		s.respond(w, r, ic, err, 0, nil)
		return
	}
	out, err := ic.sentOr(func() ([]byte, error) { return answerJSON(a) })
	s.respond(w, r, ic, err, http.StatusOK, out)
}

// answerJSON is the body of an answer: the approval as answered, without
// its history. With a key it is the one rendered for the record (the
// approval as the service is about to store it), so a live answer and its
// replay are byte for byte the same.
func answerJSON(a *margen.Approval) ([]byte, error) {
	out := *a
	out.History = nil
	return json.Marshal(&out)
}

type exceptionBody struct {
	Description string                  `json:"description"`
	Customer    *decision.CustomerInput `json:"customer"`
	Reason      string                  `json:"reason"`
	Context     json.RawMessage         `json:"context"`
}

// exceptionAnswer is the answer of POST /api/v1/exceptions.
type exceptionAnswer struct {
	Decision *margen.Decision `json:"decision"`
	Approval approvalView     `json:"approval"`
}

// requestException asks for something no grant covers; the request goes to
// the lowest role that can decide it, or to the owner.
func (s *server) requestException(w http.ResponseWriter, r *http.Request) {
	if !s.needApprovals(w, r) {
		return
	}
	st := state(r)
	var in exceptionBody
	body, ok := s.readJSON(w, r, &in)
	if !ok {
		return
	}
	x, err := validateException(&in)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	// The answer: the decision with its explanation in the member's
	// language, and the request with its SLA; stored as sent.
	answer := func(x approval.ExceptionResult) ([]byte, error) {
		d := *x.Decision
		s.render(r.Context(), st, &d)
		return json.Marshal(exceptionAnswer{Decision: &d, Approval: view(x.Approval)})
	}
	d, a, err := s.approvals.RequestException(r.Context(), st.org, st.member, x, idemWrite(ic, http.StatusCreated, answer))
	if err != nil {
		s.respond(w, r, ic, err, 0, nil)
		return
	}
	s.metrics.Decision(d.Outcome)
	out, err := ic.sentOr(func() ([]byte, error) { return answer(approval.ExceptionResult{Decision: d, Approval: a}) })
	s.respond(w, r, ic, err, http.StatusCreated, out)
}

func validateException(in *exceptionBody) (approval.ExceptionRequest, error) {
	x := approval.ExceptionRequest{Description: in.Description, Reason: in.Reason}
	switch {
	case in.Description == "":
		return x, margen.Invalid("description", "error.required", "field", "description")
	case len(in.Description) > maxDescription:
		return x, margen.Invalid("description", "error.too_long", "field", "description", "max", maxDescription)
	case len(in.Reason) > maxReason:
		return x, margen.Invalid("reason", "error.too_long", "field", "reason", "max", maxReason)
	}
	if in.Customer != nil {
		switch {
		case len(in.Customer.Ref) > maxRef:
			return x, margen.Invalid("customer.ref", "error.too_long", "field", "customer.ref", "max", maxRef)
		case len(in.Customer.Name) > maxRef:
			return x, margen.Invalid("customer.name", "error.too_long", "field", "customer.name", "max", maxRef)
		case in.Customer.Ref == "" && (in.Customer.Name != "" || in.Customer.Contact != "" || len(in.Customer.Tags) > 0):
			return x, margen.Invalid("customer.ref", "error.required", "field", "customer.ref")
		}
		x.Customer = *in.Customer
	}
	ctx := bytes.TrimSpace(in.Context)
	if len(ctx) > 0 && !bytes.Equal(ctx, []byte("null")) {
		if ctx[0] != '{' {
			return x, margen.Invalid("context", "error.context_object")
		}
		x.Context = json.RawMessage(ctx)
	}
	return x, nil
}
