package storetest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/margenhq/margen"
)

// Request is one "¿puedo?" for the Decider.
type Request struct {
	OrgID       string
	MemberID    string
	CustomerRef string
	Action      string // "ask" asks for approval instead of deciding alone
	Amount      int64
	IdemKey     string // optional
	Team        string // the member's team, recorded on the decision and act
}

// Decider is a small stand-in for the decision engine, enough to drive
// DecideBatch realistically in the suite and the benchmark: every request
// charges two budgets (the member's day and the customer's month) with a flat
// Limit; it is allowed when both have room, denied (with a refusal)
// otherwise, and "ask" requests open an approval that holds the amount.
// Each decision writes its decision, act or refusal or approval, ledger
// entries, account deltas, an audit entry and its idempotency record.
type Decider struct {
	Reqs  []Request
	Limit int64
	At    time.Time // decision time; zero means now
	// SLA is the time an "ask" request's approver has before it is due;
	// zero means 15 minutes.
	SLA time.Duration
	// Out holds the decisions of the last Decide call, one per request
	// (zero Decision for a request answered from its idempotency record).
	Out []margen.Decision
}

// Period names for the two budgets.
func day(t time.Time) string   { return t.Format("2006-01-02") }
func month(t time.Time) string { return t.Format("2006-01") }

func (d *Decider) at() time.Time {
	if d.At.IsZero() {
		return margen.SystemClock{}.Now()
	}
	return d.At
}

func (d *Decider) keys(r Request, at time.Time) [2]margen.OrgBudgetKey {
	return [2]margen.OrgBudgetKey{
		{OrgID: r.OrgID, BudgetKey: margen.BudgetKey{BudgetID: "daily", Subject: r.MemberID, Period: day(at)}},
		{OrgID: r.OrgID, BudgetKey: margen.BudgetKey{BudgetID: "customer_month", Subject: margen.CustomerID(r.OrgID, r.CustomerRef), Period: month(at)}},
	}
}

// Query names what the batch reads.
func (d *Decider) Query() margen.BatchQuery {
	at := d.at()
	var q margen.BatchQuery
	for _, r := range d.Reqs {
		q.OrgIDs = append(q.OrgIDs, r.OrgID)
		k := d.keys(r, at)
		q.Budgets = append(q.Budgets, k[0], k[1])
		q.Customers = append(q.Customers, margen.OrgRef{OrgID: r.OrgID, Ref: r.CustomerRef})
		if r.IdemKey != "" {
			q.Idem = append(q.Idem, margen.IdemKey{OrgID: r.OrgID, MemberID: r.MemberID, Key: r.IdemKey})
		}
	}
	return q
}

// Decide evaluates the requests in order against the running balances.
func (d *Decider) Decide(st *margen.BatchState) (*margen.BatchWrite, error) {
	at := d.at()
	sla := d.SLA
	if sla == 0 {
		sla = 15 * time.Minute
	}
	w := &margen.BatchWrite{}
	d.Out = make([]margen.Decision, len(d.Reqs))
	bal := make(map[margen.OrgBudgetKey]margen.Balance, len(st.Balances))
	for k, v := range st.Balances {
		bal[k] = v
	}
	seenCustomer := map[margen.OrgRef]bool{}
	seenIdem := map[margen.IdemKey]bool{}
	for i, r := range d.Reqs {
		ik := margen.IdemKey{OrgID: r.OrgID, MemberID: r.MemberID, Key: r.IdemKey}
		if r.IdemKey != "" {
			if _, ok := st.Idem[ik]; ok || seenIdem[ik] {
				continue // a retry: the stored answer stands
			}
			seenIdem[ik] = true
		}
		ref := margen.OrgRef{OrgID: r.OrgID, Ref: r.CustomerRef}
		cid := margen.CustomerID(r.OrgID, r.CustomerRef)
		if _, ok := st.Customers[ref]; !ok && !seenCustomer[ref] {
			seenCustomer[ref] = true
			w.Customers = append(w.Customers, margen.Customer{OrgID: r.OrgID, ID: cid, Ref: r.CustomerRef, CreatedAt: at})
		}
		keys := d.keys(r, at)
		fits := true
		views := make([]margen.BudgetView, 0, 2)
		for _, k := range keys {
			b := bal[k]
			if b.Used()+r.Amount > d.Limit {
				fits = false
			}
			views = append(views, margen.BudgetView{Budget: k.BudgetID, Scope: "member", Subject: k.Subject, Period: k.Period,
				Limit: d.Limit, Used: b.Used(), Remaining: d.Limit - b.Used() - r.Amount, Hard: true})
		}
		views[1].Scope = "customer"
		action := r.Action
		if action == "" {
			action = "gift"
		}
		x := margen.Decision{
			ID: margen.NewID("dec"), OrgID: r.OrgID, MemberID: r.MemberID, Team: r.Team, CustomerID: cid, Action: action,
			Amount: r.Amount, Currency: "EUR", Reason: "customer waited too long",
			Context:       json.RawMessage(`{"order_total":4200,"table":"7"}`),
			PolicyVersion: st.PolicyVersions[r.OrgID], Rule: "frontline.gift", Budgets: views, CreatedAt: at,
		}
		kind := ""
		switch {
		case !fits:
			x.Outcome = margen.OutcomeDenied
			x.Rule = "budget.daily"
			x.Explanation = margen.Explanation{Code: "denied.budget", Args: map[string]any{"budget": "daily", "remaining": views[0].Remaining + r.Amount}}
			x.RefusalID = margen.NewID("ref")
			w.Refusals = append(w.Refusals, margen.Refusal{ID: x.RefusalID, OrgID: r.OrgID, DecisionID: x.ID, MemberID: r.MemberID,
				CustomerID: cid, Action: action, Amount: r.Amount, Wanted: "a gift", ReasonKind: margen.RefusalNotAllowed,
				Rule: x.Rule, Left: margen.LeftUnknown, CreatedAt: at})
		case action == "ask":
			x.Outcome = margen.OutcomeNeedsApproval
			x.Explanation = margen.Explanation{Code: "approval.needed", Args: map[string]any{"role": "manager"}}
			x.ApprovalID = margen.NewID("apr")
			w.Approvals = append(w.Approvals, margen.Approval{ID: x.ApprovalID, OrgID: r.OrgID, DecisionID: x.ID, MemberID: r.MemberID,
				CustomerID: cid, Action: action, Amount: r.Amount, ApproverRole: "manager", SLA: sla,
				DueAt: at.Add(sla), OnTimeout: "escalate", EscalateTo: "owner", Status: margen.ApprovalPending, CreatedAt: at})
			kind = margen.EntryPending
		default:
			x.Outcome = margen.OutcomeAllowed
			x.Explanation = margen.Explanation{Code: "allowed.within", Args: map[string]any{"remaining": views[0].Remaining}}
			x.ActID = margen.NewID("act")
			w.Acts = append(w.Acts, margen.Act{ID: x.ActID, OrgID: r.OrgID, DecisionID: x.ID, MemberID: r.MemberID, CustomerID: cid,
				Action: action, Amount: r.Amount, Currency: "EUR", Reason: x.Reason, CreatedAt: at, Team: r.Team})
			kind = margen.EntryPosted
		}
		if kind != "" {
			for j, k := range keys {
				w.Ledger = append(w.Ledger, margen.LedgerEntry{ID: margen.NewID("led"), OrgID: r.OrgID, Key: k.BudgetKey,
					DecisionID: x.ID, Kind: kind, Amount: r.Amount, CreatedAt: at})
				delta := margen.AccountDelta{OrgBudgetKey: k, Scope: views[j].Scope, PeriodKind: "day", Limit: d.Limit}
				if j == 1 {
					delta.PeriodKind = "month"
				}
				b := bal[k]
				if kind == margen.EntryPosted {
					delta.Posted, b.Posted = r.Amount, b.Posted+r.Amount
				} else {
					delta.Pending, b.Pending = r.Amount, b.Pending+r.Amount
				}
				bal[k] = b
				w.Accounts = append(w.Accounts, delta)
			}
		}
		w.Decisions = append(w.Decisions, x)
		w.Audit = append(w.Audit, margen.AuditEntry{OrgID: r.OrgID, At: at, Actor: r.MemberID, Action: margen.ActionDecisionCreate,
			Subject: x.ID, Data: json.RawMessage(fmt.Sprintf(`{"outcome":%q,"action":%q,"amount":%d}`, x.Outcome, action, r.Amount))})
		if r.IdemKey != "" {
			w.Idem = append(w.Idem, margen.Idempotency{OrgID: r.OrgID, MemberID: r.MemberID, Key: r.IdemKey,
				RequestHash: "h-" + r.IdemKey, Response: []byte(`{"id":"` + x.ID + `"}`), CreatedAt: at})
		}
		d.Out[i] = x
	}
	return w, nil
}
