package decision

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/ledger"
	"github.com/margenhq/margen/policy"
)

// possibleKeys lists every budget account a request could charge: the
// budgets of every grant that applies to the member's role, team and action,
// whatever the grants' conditions say. Conditions are evaluated under the
// lock, so the batch locks this superset up front.
func (e *Engine) possibleKeys(c *compiled, p *pending) []margen.OrgBudgetKey {
	r := p.req
	ids := c.budgetsFor(r.Member.Role, r.Member.Team, r.Action)
	if len(ids) == 0 {
		return nil
	}
	loc := r.Org.Location()
	keys := make([]margen.OrgBudgetKey, 0, len(ids))
	for _, b := range ids {
		keys = append(keys, margen.OrgBudgetKey{OrgID: r.Org.ID, BudgetKey: margen.BudgetKey{
			BudgetID: b.ID,
			Subject:  subject(b.Scope, r.Member, p.cusID),
			Period:   policy.PeriodKey(b.Period, p.at, loc),
		}})
	}
	return keys
}

func subject(scope string, m *margen.Member, customerID string) string {
	switch scope {
	case policy.ScopeMember:
		return m.ID
	case policy.ScopeCustomer:
		return customerID
	case policy.ScopeTeam:
		return m.Team
	}
	return "org"
}

// budgetsFor memoises, for the compiled policy, the budgets reachable for a
// role, team and action (the memo goes away with the policy version).
func (c *compiled) budgetsFor(role, team, action string) []policy.Budget {
	pol, memo := c.pol, &c.budgets
	k := role + "\x00" + team + "\x00" + action
	if v, ok := memo.Load(k); ok {
		return v.([]policy.Budget)
	}
	roles := pol.RolesReaching(role)
	var out []policy.Budget
	for _, g := range pol.Grants() {
		if !slices.Contains(roles, g.Role) {
			continue
		}
		if len(g.Teams) > 0 && !slices.Contains(g.Teams, team) {
			continue
		}
		if !(len(g.Actions) == 1 && g.Actions[0] == "*") && !slices.Contains(g.Actions, action) {
			continue
		}
		for _, id := range g.Budgets {
			b, ok := pol.Budget(id)
			if ok && !slices.ContainsFunc(out, func(x policy.Budget) bool { return x.ID == id }) {
				out = append(out, b)
			}
		}
	}
	memo.Store(k, out)
	return out
}

// verdict runs both phases of the policy for a prepared request: Evaluate
// against the customer, then Settle against the budgets' usage. The
// verdict's slices live in s (see policy.Policy.EvaluateIn); nil gives
// it memory of its own.
func (p *pending) verdict(s *policy.Scratch, cus margen.Customer, isNew bool, used func(policy.BudgetKey) int64) (policy.Verdict, error) {
	v, err := p.pol.pol.EvaluateIn(policyRequest(p, cus, isNew, p.req.Org.Location()), s)
	if err != nil {
		return v, margen.Invalid("action", "error.invalid_request", "detail", err.Error())
	}
	return v.Settle(p.req.Amount, used), nil
}

// newDecision is the decision a verdict implies, without an id: Decide
// names it when it records it, Explain never does.
func newDecision(p *pending, cus margen.Customer, v policy.Verdict) *margen.Decision {
	r := p.req
	return &margen.Decision{
		OrgID:         r.Org.ID,
		MemberID:      r.Member.ID,
		Team:          r.Member.Team,
		CustomerID:    cus.ID,
		Action:        r.Action,
		Amount:        r.Amount,
		Currency:      r.Org.Currency,
		Reason:        r.Reason,
		Context:       r.Context,
		Outcome:       string(v.Outcome),
		PolicyVersion: p.pol.version,
		Rule:          v.Rule,
		Flagged:       v.Flagged,
		Explanation:   explain(v, r),
		Budgets:       views(v, r.Amount),
		CreatedAt:     p.at,
		AfterTheFact:  r.AfterTheFact,
	}
}

// evaluate decides every request of a batch, in arrival order, against the
// balances read under lock, and returns what to write. Per-request problems
// (an idempotency key recorded since the caller looked) fail that request
// alone.
func (e *Engine) evaluate(batch []*pending, st *margen.BatchState) (*margen.BatchWrite, error) {
	// Sized for the usual batch (every request recorded, as an act, with a
	// charge on each locked account at most) so that the single writer
	// does not grow and copy them decision by decision.
	n := len(batch)
	w := &margen.BatchWrite{
		Decisions: make([]margen.Decision, 0, n),
		Acts:      make([]margen.Act, 0, n),
		Audit:     make([]margen.AuditEntry, 0, n),
		Ledger:    make([]margen.LedgerEntry, 0, 2*n),
	}
	bal := make(map[margen.OrgBudgetKey]margen.Balance, len(st.Balances))
	for k, v := range st.Balances {
		bal[k] = v
	}
	deltas := make(map[margen.OrgBudgetKey]*margen.AccountDelta, len(st.Balances))
	order := make([]margen.OrgBudgetKey, 0, len(st.Balances))
	addDelta := func(k margen.OrgBudgetKey, c policy.Charge, posted, held int64) {
		d := deltas[k]
		if d == nil {
			d = &margen.AccountDelta{OrgBudgetKey: k, Scope: c.Scope, PeriodKind: c.Period, Limit: c.Limit}
			deltas[k] = d
			order = append(order, k)
		}
		d.Posted += posted
		d.Pending += held
		b := bal[k]
		b.Posted += posted
		b.Pending += held
		bal[k] = b
	}
	customers := map[margen.OrgRef]bool{}
	idems := map[margen.IdemKey]bool{} // recorded by this batch
	var keys []margen.BudgetKey        // the accounts a decision charges, reused
	// Each verdict is done with (copied into the write) before the next
	// request is decided, so one Scratch serves the whole batch.
	var scratch policy.Scratch

	for _, p := range batch {
		p.err, p.result = nil, Result{}
		r := p.req
		org := r.Org.ID
		if r.Idem != nil {
			// Recorded since the caller looked (another process, or this
			// batch): the caller replays the stored answer.
			if rec, ok := st.Idem[p.idemKey]; (ok && rec.Live(p.at)) || idems[p.idemKey] {
				p.err = margen.Errorf(margen.ECONFLICT, "error.idempotency_exists")
				continue
			}
		}
		ref := margen.OrgRef{OrgID: org, Ref: r.Customer.Ref}
		cus, known := st.Customers[ref]
		isNew := !known && !customers[ref]
		if !known {
			cus = margen.Customer{ID: p.cusID, OrgID: org, Ref: r.Customer.Ref, Name: r.Customer.Name,
				Contact: r.Customer.Contact, Tags: tags(r.Customer.Tags), CreatedAt: p.at}
			if !customers[ref] {
				customers[ref] = true
				w.Customers = append(w.Customers, cus)
			}
		}
		v, err := p.verdict(&scratch, cus, isNew, func(k policy.BudgetKey) int64 { return bal[orgKey(org, k)].Used() })
		if err != nil {
			p.err = err
			continue
		}
		for _, c := range v.Charges {
			if _, locked := bal[orgKey(org, c.Key)]; !locked {
				// possibleKeys must cover every charge; if it does not, do
				// not write an unlocked account.
				p.err = &margen.Error{Code: margen.EINTERNAL, Key: "error.internal"}
				break
			}
		}
		if p.err != nil {
			continue
		}

		d := newDecision(p, cus, v)
		d.ID = margen.NewID("dec")
		// An act already done (after the fact) goes through the same
		// check: within latitude it is an act like any other; above it,
		// a request to ratify it, holding the amount like any request;
		// refused by the policy, it is still recorded, as an act flagged
		// for review that charges no budget (no rule allowed it), and not
		// as a refusal: the customer was served.
		act := func(flagged bool) {
			d.ActID = margen.NewID("act")
			w.Acts = append(w.Acts, margen.Act{ID: d.ActID, OrgID: org, DecisionID: d.ID, MemberID: r.Member.ID,
				CustomerID: cus.ID, Action: r.Action, Amount: r.Amount, Currency: d.Currency, Reason: r.Reason,
				Flagged: flagged, CreatedAt: p.at, AfterTheFact: r.AfterTheFact, Team: r.Member.Team})
		}
		switch {
		case v.Outcome == policy.Allowed:
			act(v.Flagged)
		case v.Outcome == policy.NeedsApproval:
			d.ApprovalID = margen.NewID("apr")
			rt := v.Route
			kind := margen.ApprovalKindAmount
			if r.AfterTheFact {
				kind = margen.ApprovalKindRatification
			}
			w.Approvals = append(w.Approvals, margen.Approval{ID: d.ApprovalID, OrgID: org, DecisionID: d.ID, Kind: kind,
				MemberID: r.Member.ID, CustomerID: cus.ID, Action: r.Action, Amount: r.Amount,
				ApproverRole: rt.Approver, SLA: rt.SLA, DueAt: p.at.Add(rt.SLA), OnTimeout: rt.OnTimeout,
				EscalateTo: rt.EscalateTo, Status: margen.ApprovalPending, CreatedAt: p.at})
		case r.AfterTheFact:
			d.Flagged = true
			act(true)
		default:
			d.RefusalID = margen.NewID("ref")
			w.Refusals = append(w.Refusals, margen.Refusal{ID: d.RefusalID, OrgID: org, DecisionID: d.ID,
				MemberID: r.Member.ID, CustomerID: cus.ID, Action: r.Action, Amount: r.Amount,
				Wanted: wanted(r), ReasonKind: refusalKind(v.Code), Rule: v.Rule, Left: margen.LeftUnknown,
				CreatedAt: p.at})
		}
		// What the decision moves on its budgets is the ledger's rule
		// (an allowed decision posts, a request holds, nothing else
		// moves), the same rule an approval's answer releases.
		keys = keys[:0]
		for _, c := range v.Charges {
			keys = append(keys, orgKey(org, c.Key).BudgetKey)
		}
		moves, ds := ledger.Charge(d.Outcome, r.Amount, keys)
		for _, m := range moves {
			w.Ledger = append(w.Ledger, margen.LedgerEntry{ID: margen.NewID("led"), OrgID: org, Key: m.Key,
				DecisionID: d.ID, Kind: m.Kind, Amount: m.Amount, CreatedAt: d.CreatedAt})
		}
		for i, x := range ds {
			// Charge returns one delta per key, in the keys' order.
			addDelta(margen.OrgBudgetKey{OrgID: org, BudgetKey: x.Key}, v.Charges[i], x.Posted, x.Pending)
		}
		w.Decisions = append(w.Decisions, *d)
		var apr *margen.Approval
		if d.ApprovalID != "" {
			apr = &w.Approvals[len(w.Approvals)-1]
		}
		w.Audit = append(w.Audit, margen.AuditEntry{OrgID: org, At: p.at, Actor: r.Member.ID,
			Action: margen.ActionDecisionCreate, Subject: d.ID, Data: auditData(d, r.Member, apr)})
		if r.Idem != nil {
			// The caller renders its answer from the decision; it cannot
			// fail but for a bug, which fails the batch (then split, so
			// this request alone fails).
			rec, err := r.Idem.For(d)
			if err != nil {
				return nil, err
			}
			if rec.CreatedAt.IsZero() {
				rec.CreatedAt = p.at
			}
			idems[p.idemKey] = true
			w.Idem = append(w.Idem, *rec)
		}
		p.result = Result{Decision: d}
	}
	for _, k := range order {
		w.Accounts = append(w.Accounts, *deltas[k])
	}
	return w, nil
}

func orgKey(org string, k policy.BudgetKey) margen.OrgBudgetKey {
	return margen.OrgBudgetKey{OrgID: org, BudgetKey: margen.BudgetKey{BudgetID: k.BudgetID, Subject: k.Subject, Period: k.Period}}
}

func tags(in []string) []string {
	if in == nil {
		return []string{}
	}
	return in
}

// views reports, for each budget the deciding rule charges, what it allows,
// what is used including this decision (posted, or held for approval) and
// what remains after it.
func views(v policy.Verdict, amount int64) []margen.BudgetView {
	out := make([]margen.BudgetView, 0, len(v.Budgets))
	for _, b := range v.Budgets {
		used := b.Used
		if v.Outcome != policy.Denied {
			used += amount // posted, or held by the approval request
		}
		out = append(out, margen.BudgetView{Budget: b.Key.BudgetID, Scope: b.Scope, Subject: b.Key.Subject,
			Period: b.Key.Period, Limit: b.Limit, Used: used, Remaining: b.Remaining, Hard: b.Hard})
	}
	return out
}

// explain turns a verdict into an explanation code with the values its
// message needs; the message itself is rendered in the member's language
// when answering.
func explain(v policy.Verdict, r *Request) margen.Explanation {
	args := map[string]any{"amount": r.Amount, "action": r.Action}
	if v.Rule != "" {
		args["rule"] = v.Rule
	}
	if v.Max > 0 || v.Code == "over_max" {
		args["max"] = v.Max
	}
	if len(v.Reason) > 0 {
		args["reason"] = v.Reason
	}
	if v.Route != nil && v.Outcome == policy.NeedsApproval {
		args["approver"] = v.Route.Approver
		args["sla"] = v.Route.SLA.String()
	}
	for _, b := range v.Budgets {
		if b.Exceeded {
			args["budget"] = b.Key.BudgetID
			args["remaining"] = max(b.Limit-b.Used, 0)
			break
		}
	}
	if v.Code == "no_grant" {
		args["role"] = r.Member.Role
	}
	if c := v.Condition; c != nil {
		// Which condition failed, in the policy's words when it has
		// them ({es, en}), else the expression itself.
		if c.Label != nil {
			args["condition"] = c.Label
		} else {
			args["condition"] = "«" + c.When + "»"
		}
	}
	if r.AfterTheFact {
		// The message says what was recorded, by outcome.
		args["after_the_fact"] = string(v.Outcome)
	}
	if len(v.ConditionErrors) > 0 {
		// Say which facts were missing, e.g. a forbid rule that failed
		// closed because the request did not state the payment method.
		args["condition_errors"] = v.ConditionErrors
	}
	return margen.Explanation{Code: v.Code, Args: args}
}

func refusalKind(code string) string {
	if code == "no_grant" {
		return margen.RefusalNoRule
	}
	return margen.RefusalNotAllowed
}

func wanted(r *Request) string {
	if r.Reason != "" {
		return r.Reason
	}
	return r.Action
}

// auditData is what the audit entry of a decision says; events (webhooks,
// the live stream) are derived from it, so it carries what routing needs.
func auditData(d *margen.Decision, m *margen.Member, a *margen.Approval) json.RawMessage {
	ed := margen.EventData{Outcome: d.Outcome, Action: d.Action, Amount: d.Amount, Customer: d.CustomerID,
		Rule: d.Rule, Version: d.PolicyVersion, Member: m.ID, Team: m.Team, DecisionID: d.ID,
		ActID: d.ActID, ApprovalID: d.ApprovalID, RefusalID: d.RefusalID}
	if a != nil {
		ed.ApproverRole = a.ApproverRole
		ed.DueAt = a.DueAt.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(ed)
	return b
}
