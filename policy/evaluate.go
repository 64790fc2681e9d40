package policy

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one "may I?" question: who asks, for which customer, to do
// what, for how much, and when.
type Request struct {
	MemberID    string
	MemberLogin string
	Role        string // the member's role id
	Team        string // the member's team slug; "" when none
	CustomerID  string
	CustomerRef string
	// CustomerTags are the customer's labels ("vip", "frecuente").
	CustomerTags []string
	CustomerNew  bool
	Action       string // an action id from the policy's catalogue
	// Amount is the cost of the act in minor units of the policy currency;
	// 0 for non-monetary actions.
	Amount int64
	// Context holds free facts about the situation (order_total, payment,
	// channel...) that conditions may read as context.key. Numbers decoded
	// from JSON are float64 and reach CEL as doubles.
	Context map[string]any
	// At is the decision time; it selects the budget periods and the hour
	// and weekday conditions see. Required.
	At time.Time
	// Loc is the organisation's time zone; nil means UTC.
	Loc *time.Location
}

// Outcome is the answer to a request.
type Outcome string

// The three outcomes.
const (
	Allowed       Outcome = "allowed"
	NeedsApproval Outcome = "needs_approval"
	Denied        Outcome = "denied"
)

// Verdict codes: why the outcome is what it is. They are stable identifiers
// for translation and reports.
const (
	// CodeUnsettled marks a provisional Allowed verdict from Evaluate that
	// still has to go through Settle with the budgets' usage.
	CodeUnsettled = "unsettled"
	// CodeForbidden: a forbid rule matched (Rule names it).
	CodeForbidden = "forbidden"
	// CodeNoGrant: no grant covers this role, team and action.
	CodeNoGrant = "no_grant"
	// CodeConditionNotMet: grants apply but none of their conditions holds.
	CodeConditionNotMet = "condition_not_met"
	// CodeOverMax: the amount is above every applicable hard max_amount.
	CodeOverMax = "over_max"
	// CodeWithinLatitude: allowed within the grant and its budgets.
	CodeWithinLatitude = "within_latitude"
	// CodeSoftOverMax: allowed above a soft max_amount; flagged.
	CodeSoftOverMax = "soft_over_max"
	// CodeSoftBudgetExceeded: allowed beyond a soft budget; flagged.
	CodeSoftBudgetExceeded = "soft_budget_exceeded"
	// CodeBudgetExhausted: every candidate grant has a hard budget without
	// room for the amount.
	CodeBudgetExhausted = "budget_exhausted"
)

// BudgetKey identifies one budget account: a budget, whose spending it
// counts (member id, customer id, team slug or "org") and which period.
type BudgetKey struct {
	BudgetID string
	Subject  string
	Period   string // see PeriodKey
}

// Charge is one budget an act draws on if it is allowed.
type Charge struct {
	Key    BudgetKey
	Scope  string
	Period string // day, week or month
	Limit  int64
	Hard   bool
}

// Candidate is a grant that could allow the request, pending its budgets.
type Candidate struct {
	Rule    string // grant id
	Max     int64  // the grant's max_amount
	Flagged bool   // the amount is above a soft max_amount
	Code    string // CodeWithinLatitude or CodeSoftOverMax
	Charges []Charge
	// Route is where the request goes when this candidate's budgets are
	// exhausted; nil means deny. Shared with the policy: do not modify.
	Route *Route
}

// BudgetState is what a budget account looks like around a decision.
type BudgetState struct {
	Key    BudgetKey
	Scope  string
	Period string
	Limit  int64
	Hard   bool
	// Used is what the account had spent before this decision.
	Used int64
	// Remaining is what is left after this decision: Limit - Used, minus the
	// amount when the verdict charges or holds it (allowed or
	// needs_approval); never below 0.
	Remaining int64
	// Exceeded reports that the amount did not fit (Limit - Used < amount).
	Exceeded bool
}

// Verdict is the policy's answer to a request, with its explanation.
type Verdict struct {
	Outcome Outcome
	Rule    string // the grant or forbid that decided; "" for no_grant
	Code    string // one of the Code* constants
	// Reason is the forbid rule's localized reason (language -> text);
	// shared with the policy: do not modify.
	Reason  map[string]string
	Max     int64 // max_amount of the deciding grant
	Flagged bool  // allowed beyond a soft limit: review it
	// Candidates are the grants that may allow the request, in the order
	// Settle tries them.
	Candidates []Candidate
	// Charges are the budgets to post (allowed) or hold (needs_approval).
	Charges []Charge
	// Budgets describe the deciding grant's budgets; set by Settle.
	Budgets []BudgetState
	// Route is who approves; set when Outcome is NeedsApproval. Shared with
	// the policy: do not modify.
	Route *Route
	// ConditionErrors lists conditions that failed at runtime (and so
	// counted as false), as "rule_id: message".
	ConditionErrors []string
	// Condition is, for CodeConditionNotMet, the first condition of Rule
	// that does not hold, to tell the member what is missing. Shared with
	// the policy: do not modify.
	Condition *Condition

	// scratch holds the slices of a verdict from EvaluateIn, and room
	// for Settle's budget states.
	scratch *Scratch
}

// Evaluate decides a request up to budgets (phase 1). It reads no clock and
// does no I/O. A verdict with Code CodeUnsettled must then be passed through
// Settle with the current usage of the budgets named by Keys.
//
// The error is a *RequestError (matching ErrInvalidRequest) when the request
// itself is invalid: unknown action, negative or too large amount, an
// amount on a non-monetary action, or a zero At.
func (p *Policy) Evaluate(r *Request) (Verdict, error) {
	return p.EvaluateIn(r, nil)
}

// Scratch is memory for the slices of a verdict (its candidates, charges
// and budget states), so that a caller deciding requests one after another
// can decide them without allocating. The zero value is ready to use. A
// Scratch belongs to one goroutine at a time.
type Scratch struct {
	cands   [4]Candidate
	charges [8]Charge
	budgets [4]BudgetState
	// act is the CEL activation, here rather than from the policy's pool.
	act activation
	// settled reports that a Settle took budgets, so that settling the
	// same verdict again does not overwrite what the first Settle returned.
	settled bool
}

// slices returns empty slices with room for n candidates and nc charges,
// from s when they fit.
func (s *Scratch) slices(n, nc int) ([]Candidate, []Charge) {
	if s == nil || n > len(s.cands) || nc > len(s.charges) {
		return make([]Candidate, 0, n), make([]Charge, 0, nc)
	}
	return s.cands[:0:n], s.charges[:0:nc]
}

// budgetStates returns room for n budget states: s's the first time it
// is asked, new memory after that.
func (s *Scratch) budgetStates(n int) []BudgetState {
	if s == nil || s.settled || n > len(s.budgets) {
		return make([]BudgetState, n)
	}
	s.settled = true
	return s.budgets[:n]
}

// EvaluateIn is Evaluate with the verdict's slices in s (in new memory when
// s is nil). The verdict and those Settle derives from it are valid until s
// is passed to EvaluateIn again: a caller that keeps a verdict longer must
// copy it or use another Scratch.
func (p *Policy) EvaluateIn(r *Request, s *Scratch) (Verdict, error) {
	if r == nil {
		return Verdict{}, &RequestError{Err: ErrNilRequest}
	}
	ai, ok := p.lookupAction(r.Action)
	if !ok {
		return Verdict{}, &RequestError{Field: "action", Err: ErrUnknownAction}
	}
	monetary := p.actions[ai].Monetary
	switch {
	case r.Amount < 0:
		return Verdict{}, &RequestError{Field: "amount", Err: ErrNegativeAmount}
	case r.Amount > MaxAmount:
		return Verdict{}, &RequestError{Field: "amount", Err: ErrAmountTooLarge}
	case !monetary && r.Amount != 0:
		return Verdict{}, &RequestError{Field: "amount", Err: ErrNonMonetaryAmount}
	case r.At.IsZero():
		return Verdict{}, &RequestError{Field: "at", Err: ErrZeroTime}
	case len(r.CustomerTags) > MaxCustomerTags:
		return Verdict{}, &RequestError{Field: "customer_tags", Err: ErrTooManyTags}
	}
	// Bounded tags let conditions over them run without runtime cost
	// tracking (see sizeEstimator).
	for _, tag := range r.CustomerTags {
		if len(tag) > MaxTagLen {
			return Verdict{}, &RequestError{Field: "customer_tags", Err: ErrTooManyTags}
		}
	}

	e := evaluator{r: r, pool: &p.acts, day: &p.day, scratch: s}
	defer e.release()
	ri := p.lookupRole(r.Role)
	forbids := p.anyRoleForbids[ai]
	if ri != nil {
		forbids = ri.forbids[ai]
	}
	for _, f := range forbids {
		// A forbid whose condition cannot be evaluated (a context key the
		// request did not send) forbids: a missing fact must not open a
		// door the owner closed. ConditionErrors says what was missing.
		if f.prg == nil || e.holdsOrFails(f.prg, f.ID) {
			return Verdict{
				Outcome:         Denied,
				Rule:            f.ID,
				Code:            CodeForbidden,
				Reason:          f.Reason,
				ConditionErrors: e.errs,
			}, nil
		}
	}
	if ri == nil {
		return Verdict{Outcome: Denied, Code: CodeNoGrant, ConditionErrors: e.errs}, nil
	}

	var first *grantRule // first applicable grant
	var buf [16]*grantRule
	holding := buf[:0]
	for _, g := range ri.grants[ai] {
		if !g.allTeams && !slices.Contains(g.Teams, r.Team) {
			continue
		}
		if first == nil {
			first = g
		}
		if len(holding) > 0 && monetary && g.Hard && r.Amount > g.MaxAmount {
			// It can be neither a candidate nor, with a grant already
			// holding before it, the one whose route an over_max uses:
			// its condition need not run.
			continue
		}
		if g.prg == nil || e.holds(g.prg, g.ID) {
			holding = append(holding, g)
		}
	}
	switch {
	case first == nil:
		return Verdict{Outcome: Denied, Code: CodeNoGrant, ConditionErrors: e.errs}, nil
	case len(holding) == 0:
		return Verdict{Outcome: Denied, Rule: first.ID, Code: CodeConditionNotMet, Condition: e.failing(first),
			ConditionErrors: e.errs}, nil
	}

	charge := monetary && r.Amount > 0
	n, nCharges := 0, 0
	for _, g := range holding {
		if r.Amount <= g.MaxAmount || !g.Hard || !monetary {
			n++
			nCharges += len(g.charges)
		}
	}
	if s != nil {
		s.settled = false
	}
	if n == 0 {
		g := holding[0]
		v := Verdict{Outcome: Denied, Rule: g.ID, Code: CodeOverMax, Max: g.MaxAmount, ConditionErrors: e.errs}
		if g.Above != nil {
			v.Outcome = NeedsApproval
			v.Route = g.Above
			if charge && len(g.charges) > 0 {
				_, backing := s.slices(0, len(g.charges))
				v.Charges = e.charges(g, backing)
				v.scratch = s
			}
		}
		return v, nil
	}

	if !charge {
		nCharges = 0
	}
	cands, backing := s.slices(n, nCharges)
	for _, g := range holding {
		over := monetary && r.Amount > g.MaxAmount
		if over && g.Hard {
			continue
		}
		// Filled in place: a Candidate is large enough for a copy to show.
		cands = append(cands, Candidate{Rule: g.ID, Max: g.MaxAmount, Code: CodeWithinLatitude, Route: g.Above})
		c := &cands[len(cands)-1]
		if over {
			c.Flagged, c.Code = true, CodeSoftOverMax
		}
		if charge && len(g.charges) > 0 {
			start := len(backing)
			backing = e.charges(g, backing)
			c.Charges = backing[start:len(backing):len(backing)]
		}
	}
	return Verdict{
		Outcome:         Allowed,
		Rule:            cands[0].Rule,
		Code:            CodeUnsettled,
		Max:             cands[0].Max,
		Flagged:         cands[0].Flagged,
		Candidates:      cands,
		ConditionErrors: e.errs,
		scratch:         s,
	}, nil
}

// evaluator carries per-request state through one Evaluate call.
type evaluator struct {
	r    *Request
	pool *sync.Pool
	// scratch, when not nil, holds the activation instead of pool.
	scratch *Scratch
	act     *activation
	// day is the policy's cache of the last day's period keys.
	day  *atomic.Pointer[dayKey]
	errs []string
	// keys are the period keys of the request's day, found on first use.
	keys *dayKey
}

// dayOf is the period keys of the day of t in loc, from the policy's
// one-entry cache when t falls on the day it holds.
func (e *evaluator) dayOf(t time.Time, loc *time.Location) *dayKey {
	if loc == nil {
		loc = time.UTC
	}
	c := e.day.Load()
	if u := t.Unix(); c != nil && c.loc == loc && c.from <= u && u < c.to {
		return c
	}
	t = t.In(loc)
	y, m, d := t.Date()
	if c != nil && c.loc == loc && c.y == y && c.m == int(m) && c.d == d {
		return c
	}
	c = newDayKey(t, loc)
	e.day.Store(c)
	return c
}

// newDayKey is the cache entry for the day of t (in loc). Its bounds are
// set when the day begins at a midnight and has one UTC offset throughout
// (so it is exactly 24 hours long); otherwise the entry is matched by date.
func newDayKey(t time.Time, loc *time.Location) *dayKey {
	y, m, d := t.Date()
	c := &dayKey{loc: loc, y: y, m: int(m), d: d, key: PeriodKey(PeriodDay, t, loc), week: PeriodKey(PeriodWeek, t, loc)}
	from := time.Date(y, m, d, 0, 0, 0, 0, loc)
	to := from.Add(24 * time.Hour)
	fy, fm, fd := from.Date()
	start, end := from.ZoneBounds()
	if fy == y && fm == m && fd == d && from.Hour() == 0 && from.Minute() == 0 && from.Second() == 0 &&
		!start.After(from) && (end.IsZero() || !end.Before(to)) {
		c.from, c.to = from.Unix(), to.Unix()
	}
	return c
}

func (e *evaluator) holds(prg *program, rule string) bool {
	if e.act == nil {
		switch {
		case e.scratch != nil:
			e.act = &e.scratch.act
		default:
			e.act, _ = e.pool.Get().(*activation)
			if e.act == nil {
				e.act = &activation{}
			}
		}
		e.act.reset(e.r)
	}
	ok, msg := prg.eval(e.act)
	if msg != "" {
		e.errs = append(e.errs, rule+": "+msg)
	}
	return ok
}

// failing returns the first of g's conditions that does not hold (or
// cannot be evaluated). Evaluation runs a grant's conditions as one
// program; this runs them one by one, only on the way to a refusal.
func (e *evaluator) failing(g *grantRule) *Condition {
	if e.act == nil {
		return nil
	}
	for i, prg := range g.conds {
		if ok, _ := prg.eval(e.act); !ok {
			return &g.Conditions[i]
		}
	}
	return nil
}

// holdsOrFails is holds, failing closed: a runtime error counts as true.
func (e *evaluator) holdsOrFails(prg *program, rule string) bool {
	n := len(e.errs)
	return e.holds(prg, rule) || len(e.errs) > n
}

// release recycles the activation; nothing in a verdict refers to it.
func (e *evaluator) release() {
	if e.act != nil {
		e.act.reset(nil)
		if e.scratch == nil {
			e.pool.Put(e.act)
		}
		e.act = nil
	}
}

func (e *evaluator) periodKey(period string) string {
	if e.keys == nil {
		e.keys = e.dayOf(e.r.At, e.r.Loc)
	}
	switch period {
	case PeriodDay:
		return e.keys.key
	case PeriodMonth:
		// "2026-11-25" -> "2026-11": one allocation serves both keys.
		return e.keys.key[:len(e.keys.key)-3]
	case PeriodWeek:
		return e.keys.week
	}
	return ""
}

func (e *evaluator) charges(g *grantRule, dst []Charge) []Charge {
	for i := range g.charges {
		t := &g.charges[i]
		dst = append(dst, *t)
		c := &dst[len(dst)-1]
		switch t.Scope {
		case ScopeMember:
			c.Key.Subject = e.r.MemberID
		case ScopeCustomer:
			c.Key.Subject = e.r.CustomerID
		case ScopeTeam:
			c.Key.Subject = e.r.Team
		case ScopeOrg:
			c.Key.Subject = "org"
		}
		c.Key.Period = e.periodKey(t.Period)
	}
	return dst
}

// Settle finishes a verdict with the budgets' usage (phase 2). used returns
// what a budget account has spent (posted plus held) before this decision;
// nil means nothing. Candidates are tried in order and the first whose every
// hard budget has room for amount wins. If none has room, the request goes
// to the first candidate's approval route (holding the amount on its
// budgets) or is denied.
//
// Settle is pure and safe on any verdict: one that is not CodeUnsettled is
// returned unchanged, except that Budgets is filled in for its Charges.
func (v Verdict) Settle(amount int64, used func(BudgetKey) int64) Verdict {
	usedOf := func(k BudgetKey) int64 {
		if used == nil {
			return 0
		}
		return max(used(k), 0)
	}
	if v.Code != CodeUnsettled || len(v.Candidates) == 0 {
		if len(v.Charges) > 0 && v.Budgets == nil {
			v.Budgets = budgetStates(v.scratch, v.Charges, amount, true, usedOf, nil)
		}
		return v
	}
	// The usage read to check a candidate is kept for its budget states
	// (up to a point): used may be a map lookup or more.
	var buf [8]int64
	for _, c := range v.Candidates {
		fits, softOver := true, false
		known := buf[:0]
		for _, ch := range c.Charges {
			u := usedOf(ch.Key)
			if len(known) < len(buf) {
				known = append(known, u)
			}
			if ch.Limit-u >= amount {
				continue
			}
			if ch.Hard {
				fits = false
				break
			}
			softOver = true
		}
		if !fits {
			continue
		}
		v.Outcome = Allowed
		v.Rule = c.Rule
		v.Max = c.Max
		v.Flagged = c.Flagged || softOver
		switch {
		case c.Flagged:
			v.Code = CodeSoftOverMax
		case softOver:
			v.Code = CodeSoftBudgetExceeded
		default:
			v.Code = CodeWithinLatitude
		}
		v.Charges = c.Charges
		v.Budgets = budgetStates(v.scratch, c.Charges, amount, true, usedOf, known)
		return v
	}
	c := v.Candidates[0]
	v.Rule = c.Rule
	v.Max = c.Max
	v.Code = CodeBudgetExhausted
	v.Flagged = false
	if c.Route != nil {
		v.Outcome = NeedsApproval
		v.Route = c.Route
		v.Charges = c.Charges
		v.Budgets = budgetStates(v.scratch, c.Charges, amount, true, usedOf, nil)
		return v
	}
	v.Outcome = Denied
	v.Charges = nil
	v.Budgets = budgetStates(v.scratch, c.Charges, amount, false, usedOf, nil)
	return v
}

// budgetStates describes charges after a decision. known holds the usage
// of the first charges when it has been read already.
func budgetStates(s *Scratch, charges []Charge, amount int64, charged bool, used func(BudgetKey) int64, known []int64) []BudgetState {
	if len(charges) == 0 {
		return nil
	}
	out := s.budgetStates(len(charges))
	for i, ch := range charges {
		var u int64
		if i < len(known) {
			u = known[i]
		} else {
			u = used(ch.Key)
		}
		rem := ch.Limit - u
		exceeded := rem < amount
		if charged {
			rem -= amount
		}
		out[i] = BudgetState{
			Key:       ch.Key,
			Scope:     ch.Scope,
			Period:    ch.Period,
			Limit:     ch.Limit,
			Hard:      ch.Hard,
			Used:      u,
			Remaining: max(rem, 0),
			Exceeded:  exceeded,
		}
	}
	return out
}

// Keys returns every budget account the verdict may touch (all candidates'
// charges and its own), deduplicated and sorted, so a caller can lock them
// in one fixed order before calling Settle.
func (v Verdict) Keys() []BudgetKey {
	var keys []BudgetKey
	for _, c := range v.Candidates {
		for _, ch := range c.Charges {
			keys = append(keys, ch.Key)
		}
	}
	for _, ch := range v.Charges {
		keys = append(keys, ch.Key)
	}
	slices.SortFunc(keys, compareKeys)
	return slices.Compact(keys)
}

func compareKeys(a, b BudgetKey) int {
	return cmp.Or(
		cmp.Compare(a.BudgetID, b.BudgetID),
		cmp.Compare(a.Subject, b.Subject),
		cmp.Compare(a.Period, b.Period),
	)
}

// PeriodKey names the budget period containing t in the time zone loc (nil
// means UTC): "2026-11-25" for day, "2026-W48" (ISO 8601 week, Monday start,
// ISO week-numbering year) for week and "2026-11" for month. It returns ""
// for an unknown period.
func PeriodKey(period string, t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	var buf [16]byte
	b := buf[:0]
	switch period {
	case PeriodDay:
		y, m, d := t.Date()
		b = appendYear(b, y)
		b = append(b, '-')
		b = append2(b, int(m))
		b = append(b, '-')
		b = append2(b, d)
	case PeriodWeek:
		y, w := t.ISOWeek()
		b = appendYear(b, y)
		b = append(b, '-', 'W')
		b = append2(b, w)
	case PeriodMonth:
		y, m, _ := t.Date()
		b = appendYear(b, y)
		b = append(b, '-')
		b = append2(b, int(m))
	default:
		return ""
	}
	return string(b)
}

// appendYear writes a year with at least four digits (and a sign when
// negative), as time.Format does for "2006".
func appendYear(b []byte, y int) []byte {
	if y < 0 {
		b = append(b, '-')
		y = -y
	}
	var digits [20]byte
	i := len(digits)
	for y > 0 || i > len(digits)-4 {
		i--
		digits[i] = byte('0' + y%10)
		y /= 10
	}
	return append(b, digits[i:]...)
}

func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}
