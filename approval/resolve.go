package approval

import (
	"encoding/json"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/ledger"
)

// Resolver returns the pure resolution of r, for the store to call with the
// state it read under the request's lock:
//
//	st.ResolveApproval(ctx, orgID, r.ApprovalID, r.Level, approval.Resolver(r, idem))
func Resolver(r margen.Resolution, idem *margen.Idempotency) func(*margen.ResolutionState) (*margen.ResolutionWrite, error) {
	return func(st *margen.ResolutionState) (*margen.ResolutionWrite, error) {
		return Resolve(st, r, idem)
	}
}

// Resolve computes what resolution r writes on the request read in st (see
// margen.Resolution): the request's new state, the ledger moves that end
// its hold (approved: void and post; rejected, expired: void; escalated:
// none), the act of an approval, the history event and the audit entry,
// with the idempotency record idem. It is pure: it reads no clock and no
// database (new ids aside), so the same state and resolution always give
// the same write.
//
// r.At is required (the time of the answer); an empty r.Actor is "system";
// an approval without r.ActID gets a new act id. A request that is not
// pending at r.Level is refused with ECONFLICT
// "error.approval_already_decided".
func Resolve(st *margen.ResolutionState, r margen.Resolution, idem *margen.Idempotency) (*margen.ResolutionWrite, error) {
	terminal := false
	switch r.Status {
	case margen.ApprovalApproved, margen.ApprovalRejected, margen.ApprovalExpired:
		terminal = true
	case margen.Escalated:
		if r.Approver == "" {
			return nil, margen.Invalid("approver", "error.invalid_value", "field", "approver", "allowed", "a policy role")
		}
		if r.DueAt.IsZero() {
			return nil, margen.Invalid("due_at", "error.invalid_time", "field", "due_at")
		}
		r.DueAt = r.DueAt.UTC().Truncate(time.Microsecond)
	default:
		return nil, margen.Invalid("status", "error.invalid_value", "field", "status",
			"allowed", "approved, rejected, expired, escalated")
	}
	if r.At.IsZero() {
		return nil, margen.Invalid("at", "error.invalid_time", "field", "at")
	}
	r.At = r.At.UTC().Truncate(time.Microsecond)
	if r.Actor == "" {
		r.Actor = SystemActor
	}
	switch {
	case r.Status != margen.ApprovalApproved:
		r.ActID = ""
	case r.ActID == "":
		r.ActID = margen.NewID("act")
	}
	a := st.Approval
	if a.Status != margen.ApprovalPending || a.Level != r.Level || a.ID != r.ApprovalID {
		return nil, margen.Errorf(margen.ECONFLICT, "error.approval_already_decided")
	}
	a.History = nil
	fromRole := a.ApproverRole

	w := &margen.ResolutionWrite{Idem: idem}
	ev := margen.ApprovalEvent{ID: margen.NewID("ape"), ApprovalID: a.ID, Kind: r.Status, Actor: r.Actor,
		Comment: r.Comment, At: r.At}
	ed := margen.EventData{Action: a.Action, Amount: a.Amount, Customer: a.CustomerID, Member: a.MemberID,
		Team: st.Team, DecisionID: a.DecisionID, ActID: r.ActID, ApprovalID: a.ID, Status: r.Status}
	if terminal {
		at := r.At
		a.Status, a.DecidedBy, a.DecidedAt, a.Comment, a.ActID = r.Status, r.Actor, &at, r.Comment, r.ActID
		w.Ledger, w.Accounts = endHold(a.OrgID, a.DecisionID, st.Holds, r.Status == margen.ApprovalApproved, r.At)
		ed.ApproverRole = fromRole
		ed.DecidedBy = r.Actor
		ed.TimeToAnswer = max(r.At.Sub(a.CreatedAt), 0).Milliseconds()
	} else {
		a.ApproverRole, a.DueAt, a.OnTimeout, a.EscalateTo = r.Approver, r.DueAt, r.OnTimeout, r.EscalateTo
		a.SLA = max(r.DueAt.Sub(r.At), 0).Truncate(time.Microsecond)
		a.Level++
		ev.FromRole, ev.ToRole = fromRole, r.Approver
		ed.ApproverRole = r.Approver
		ed.FromRole = fromRole
		ed.DueAt = r.DueAt.Format(time.RFC3339)
	}
	if r.Status == margen.ApprovalApproved {
		w.Act = &margen.Act{ID: r.ActID, OrgID: a.OrgID, DecisionID: a.DecisionID, MemberID: a.MemberID,
			CustomerID: a.CustomerID, Action: a.Action, Amount: a.Amount, Currency: st.Currency, Reason: st.Reason,
			Flagged: st.Flagged, CreatedAt: r.At, AfterTheFact: a.Kind == margen.ApprovalKindRatification,
			Team: st.Team} // the requester's team as it is now: the act keeps it
	}
	data, err := json.Marshal(ed)
	if err != nil {
		return nil, err
	}
	w.Approval, w.Event = a, ev
	w.Audit = margen.AuditEntry{OrgID: a.OrgID, At: r.At, Actor: r.Actor, Action: margen.ResolutionAction(r.Status),
		Subject: a.ID, Data: data}
	return w, nil
}

// endHold is the ledger side of a terminal answer: every amount the
// decision holds is voided (a pending entry of the opposite sign, pending
// down on its account) and, when post is set, posted on the same account
// (a posted entry, posted up). Accounts come out in the holds' order.
func endHold(orgID, decisionID string, holds []margen.Hold, post bool, at time.Time) ([]margen.LedgerEntry, []margen.AccountDelta) {
	ms, ds := ledger.Release(holds, post)
	var entries []margen.LedgerEntry
	for _, m := range ms {
		entries = append(entries, margen.LedgerEntry{OrgID: orgID, Key: m.Key, DecisionID: decisionID,
			Kind: m.Kind, Amount: m.Amount, CreatedAt: at})
	}
	var deltas []margen.AccountDelta
	for _, d := range ds {
		deltas = append(deltas, margen.AccountDelta{OrgBudgetKey: margen.OrgBudgetKey{OrgID: orgID, BudgetKey: d.Key},
			Posted: d.Posted, Pending: d.Pending})
	}
	return entries, deltas
}

// Exception computes what an exception request writes (see
// margen.ExceptionWrite) from the decision and approval request the caller
// built and the requester's team read under the organisation's lock: the
// decision asks (outcome needs_approval) and holds no budget; the request is
// a pending exception at level 0 that takes the decision's member,
// customer, action and amount when it names none, is due SLA after its
// creation unless DueAt is set, and opens with a "requested" event; the
// audit entry is "exception.request". Empty ids are filled in; d.CreatedAt
// is required. cus, when set, is created with the request if it is new.
func Exception(st *margen.ExceptionState, d margen.Decision, a margen.Approval, cus *margen.Customer, idem *margen.Idempotency) (*margen.ExceptionWrite, error) {
	if d.CreatedAt.IsZero() {
		return nil, margen.Invalid("created_at", "error.invalid_time", "field", "created_at")
	}
	if d.ID == "" {
		d.ID = margen.NewID("dec")
	}
	if a.ID == "" {
		a.ID = margen.NewID("apr")
	}
	d.CreatedAt = d.CreatedAt.UTC().Truncate(time.Microsecond)
	d.Outcome = margen.OutcomeNeedsApproval
	d.ApprovalID = a.ID
	d.ActID, d.RefusalID = "", ""
	d.Budgets = []margen.BudgetView{} // an exception holds no budget
	d.Team = st.Team                  // as it is now: the decision keeps it
	a.OrgID, a.DecisionID = d.OrgID, d.ID
	a.Kind = margen.ApprovalKindException
	a.Status = margen.ApprovalPending
	a.Level = 0
	a.DecidedBy, a.DecidedAt, a.Comment, a.ActID = "", nil, "", ""
	if a.MemberID == "" {
		a.MemberID = d.MemberID
	}
	if a.CustomerID == "" {
		a.CustomerID = d.CustomerID
	}
	if a.Action == "" {
		a.Action = d.Action
	}
	if a.Amount == 0 {
		a.Amount = d.Amount
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = d.CreatedAt
	}
	a.CreatedAt = a.CreatedAt.UTC().Truncate(time.Microsecond)
	if a.DueAt.IsZero() {
		a.DueAt = a.CreatedAt.Add(a.SLA)
	}
	a.DueAt = a.DueAt.UTC().Truncate(time.Microsecond)
	ev := margen.ApprovalEvent{ID: margen.NewID("ape"), ApprovalID: a.ID, Kind: margen.EventRequested,
		Actor: a.MemberID, ToRole: a.ApproverRole, Comment: a.Description, At: a.CreatedAt}
	a.History = []margen.ApprovalEvent{ev}
	data, err := json.Marshal(margen.EventData{Outcome: d.Outcome, Action: a.Action, Amount: a.Amount,
		Customer: a.CustomerID, Version: d.PolicyVersion, Member: a.MemberID, Team: st.Team, DecisionID: d.ID,
		ApprovalID: a.ID, ApproverRole: a.ApproverRole, DueAt: a.DueAt.Format(time.RFC3339)})
	if err != nil {
		return nil, err
	}
	return &margen.ExceptionWrite{Decision: d, Approval: a, Event: ev, Customer: cus, Idem: idem,
		Audit: margen.AuditEntry{OrgID: d.OrgID, At: d.CreatedAt, Actor: d.MemberID, Action: margen.ActionExceptionRequest,
			Subject: a.ID, Data: data}}, nil
}

// ExceptionPlan returns Exception for the store to call with the state it
// read under the organisation's lock.
func ExceptionPlan(d margen.Decision, a margen.Approval, cus *margen.Customer, idem *margen.Idempotency) func(*margen.ExceptionState) (*margen.ExceptionWrite, error) {
	return func(st *margen.ExceptionState) (*margen.ExceptionWrite, error) {
		return Exception(st, d, a, cus, idem)
	}
}
