package ledger

import (
	"slices"

	"github.com/margenhq/margen"
)

// MaxMismatches bounds the mismatches a report lists; MismatchCount counts
// them all. A ledger broken everywhere must not make its report (or the
// memory of the check) grow with the organisation.
const MaxMismatches = 200

// Decision is what the check knows of a decision that may have moved
// budgets: its outcome and amount, the accounts it charged (the budgets it
// lists) and, for a request, its approval and the act the approval created.
type Decision struct {
	ID       string
	Outcome  string
	Amount   int64
	Accounts []margen.BudgetKey
	// ApprovalStatus is "" when the decision has no approval request.
	ApprovalStatus string
	// ActID is the act the decision links to; ApprovalActID the act its
	// approval links to, and ActAmount that act's amount (-1: no act).
	ActID         string
	ApprovalActID string
	ActAmount     int64
}

// Check is the derivation `margen ledger check` verifies, fed row by row so
// that it runs in constant memory whatever the size of the ledger. It takes
// two streams, one after the other, each grouped (the rows of one group
// adjacent, groups in any order):
//
//   - by account: Account (the account's balance, at most once) and
//     AccountEntry (each of its entries, before or after it);
//   - by decision: Decision (a decision that may have moved budgets:
//     allowed or waiting for approval; at most once) and Entries (the
//     decision's entries, one by one or summed).
//
// Report ends the last groups and returns what was found.
type Check struct {
	rep margen.LedgerReport

	// The account group being read.
	acc     margen.BudgetKey
	accOpen bool
	accHave *margen.Balance
	accBal  margen.Balance
	accSums margen.Balance

	// The decision group being read.
	cur      string
	open     bool
	dec      Decision
	hasDec   bool
	accounts []margen.BudgetKey
	got      []Delta // entry sums of cur, per account
	scratch  []Delta
}

// NewCheck starts a check.
func NewCheck() *Check {
	return &Check{rep: margen.LedgerReport{Mismatches: []margen.LedgerMismatch{}}}
}

func (c *Check) mismatch(m margen.LedgerMismatch) {
	c.rep.MismatchCount++
	if len(c.rep.Mismatches) < MaxMismatches {
		c.rep.Mismatches = append(c.rep.Mismatches, m)
	}
}

func (c *Check) beginAccount(k margen.BudgetKey) {
	if c.accOpen && c.acc == k {
		return
	}
	c.endAccount()
	c.acc, c.accOpen, c.accHave, c.accSums = k, true, nil, margen.Balance{}
}

// Account is the balance an account records.
func (c *Check) Account(k margen.BudgetKey, b margen.Balance) {
	c.beginAccount(k)
	c.accBal = b
	c.accHave = &c.accBal
}

// AccountEntry is one entry on account k (or the sum of several of one
// kind).
func (c *Check) AccountEntry(k margen.BudgetKey, kind string, amount int64) {
	c.beginAccount(k)
	if kind == margen.EntryPosted {
		c.accSums.Posted += amount
	} else {
		c.accSums.Pending += amount
	}
}

func (c *Check) endAccount() {
	if c.accOpen {
		c.accOpen = false
		c.CompareAccount(c.acc, c.accHave, c.accSums)
	}
}

// CompareAccount compares one account with the sums of its entries. have
// is nil when entries name an account that does not exist.
func (c *Check) CompareAccount(k margen.BudgetKey, have *margen.Balance, sums margen.Balance) {
	if have == nil {
		c.mismatch(margen.LedgerMismatch{Key: k, What: "account_missing", Want: sums.Posted + sums.Pending,
			Detail: "entries name an account that does not exist"})
		return
	}
	c.rep.Accounts++
	if have.Posted != sums.Posted {
		c.mismatch(margen.LedgerMismatch{Key: k, What: "posted", Want: sums.Posted, Got: have.Posted,
			Detail: "account posted differs from the sum of its posted entries"})
	}
	if have.Pending != sums.Pending {
		c.mismatch(margen.LedgerMismatch{Key: k, What: "pending", Want: sums.Pending, Got: have.Pending,
			Detail: "account pending differs from the sum of its pending entries"})
	}
}

// begin moves to the group of decision id, ending the previous one.
func (c *Check) begin(id string) {
	if c.open && c.cur == id {
		return
	}
	c.end()
	c.cur, c.open, c.hasDec = id, true, false
	c.got = c.got[:0]
}

// Decision starts the group of a decision that may have moved budgets
// (allowed or waiting for approval); it comes before the decision's
// entries.
func (c *Check) Decision(d Decision) {
	c.begin(d.ID)
	// d.Accounts may be the caller's scratch space: keep a copy.
	c.accounts = append(c.accounts[:0], d.Accounts...)
	c.dec, c.hasDec = d, true
	c.dec.Accounts = c.accounts
	// An approved request posted its amount through the act it created
	// (linked from both the request and the decision); a request not
	// approved created none.
	if d.Outcome != margen.OutcomeNeedsApproval {
		return
	}
	switch {
	case d.ApprovalStatus == margen.ApprovalApproved &&
		(d.ApprovalActID == "" || d.ActID != d.ApprovalActID || d.ActAmount != d.Amount):
		c.mismatch(margen.LedgerMismatch{What: "approval_act", Want: d.Amount, Got: d.ActAmount,
			Detail: "decision " + d.ID + ": approved request without its act (act " + d.ApprovalActID +
				", decision links " + d.ActID + ")"})
	case d.ApprovalStatus != margen.ApprovalApproved && d.ActID != "":
		c.mismatch(margen.LedgerMismatch{What: "approval_act",
			Detail: "decision " + d.ID + ": act " + d.ActID + " without an approved request (" + d.ApprovalStatus + ")"})
	}
}

// Entries adds n entries of one kind of decision decisionID on account k,
// summing to sum.
func (c *Check) Entries(decisionID string, k margen.BudgetKey, kind string, sum, n int64) {
	c.begin(decisionID)
	c.rep.Entries += int(n)
	i := slices.IndexFunc(c.got, func(d Delta) bool { return d.Key == k })
	if i < 0 {
		c.got = append(c.got, Delta{Key: k})
		i = len(c.got) - 1
	}
	if kind == margen.EntryPosted {
		c.got[i].Posted += sum
	} else {
		c.got[i].Pending += sum
	}
}

// end compares the group's entries with what its decision implies.
func (c *Check) end() {
	if !c.open {
		return
	}
	c.open = false
	want := c.scratch[:0]
	if c.hasDec {
		e := Expected(c.dec.Outcome, c.dec.ApprovalStatus, c.dec.Amount)
		for _, k := range c.dec.Accounts {
			i := slices.IndexFunc(want, func(d Delta) bool { return d.Key == k })
			if i < 0 {
				want = append(want, Delta{Key: k})
				i = len(want) - 1
			}
			want[i].Posted += e.Posted
			want[i].Pending += e.Pending
		}
	}
	for _, g := range c.got {
		if !slices.ContainsFunc(want, func(d Delta) bool { return d.Key == g.Key }) {
			want = append(want, Delta{Key: g.Key})
		}
	}
	slices.SortFunc(want, func(a, b Delta) int { return compareKeys(a.Key, b.Key) })
	for _, w := range want {
		var g Delta
		if i := slices.IndexFunc(c.got, func(d Delta) bool { return d.Key == w.Key }); i >= 0 {
			g = c.got[i]
		}
		if w.Posted != g.Posted {
			c.mismatch(margen.LedgerMismatch{Key: w.Key, What: "decision_posted", Want: w.Posted, Got: g.Posted,
				Detail: "decision " + c.cur})
		}
		if w.Pending != g.Pending {
			c.mismatch(margen.LedgerMismatch{Key: w.Key, What: "decision_pending", Want: w.Pending, Got: g.Pending,
				Detail: "decision " + c.cur})
		}
	}
	c.scratch = want
}

// Report ends the last decision group and returns the report.
func (c *Check) Report() margen.LedgerReport {
	c.endAccount()
	c.end()
	return c.rep
}

func compareKeys(a, b margen.BudgetKey) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
