package ledger

import (
	"reflect"
	"strings"
	"testing"

	"github.com/margenhq/margen"
)

var (
	kDay   = margen.BudgetKey{BudgetID: "daily", Subject: "mem_ana", Period: "2026-12-02"}
	kMonth = margen.BudgetKey{BudgetID: "monthly", Subject: "team_sala", Period: "2026-12"}
)

func TestCharge(t *testing.T) {
	tests := []struct {
		name    string
		outcome string
		amount  int64
		keys    []margen.BudgetKey
		want    []Movement
		deltas  []Delta
	}{
		{"allowed posts on every account", margen.OutcomeAllowed, 300, []margen.BudgetKey{kDay, kMonth},
			[]Movement{{kDay, margen.EntryPosted, 300}, {kMonth, margen.EntryPosted, 300}},
			[]Delta{{kDay, margen.Balance{Posted: 300}}, {kMonth, margen.Balance{Posted: 300}}}},
		{"a request holds", margen.OutcomeNeedsApproval, 500, []margen.BudgetKey{kDay},
			[]Movement{{kDay, margen.EntryPending, 500}}, []Delta{{kDay, margen.Balance{Pending: 500}}}},
		{"denied moves nothing", margen.OutcomeDenied, 500, []margen.BudgetKey{kDay}, nil, nil},
		{"zero moves nothing", margen.OutcomeAllowed, 0, []margen.BudgetKey{kDay}, nil, nil},
		{"no budgets, nothing", margen.OutcomeAllowed, 10, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, ds := Charge(tt.outcome, tt.amount, tt.keys)
			if !reflect.DeepEqual(ms, tt.want) || !reflect.DeepEqual(ds, tt.deltas) {
				t.Fatalf("Charge = %+v, %+v; want %+v, %+v", ms, ds, tt.want, tt.deltas)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	holds := []Hold{{kDay, 300}, {kMonth, 0}, {kMonth, 120}}
	tests := []struct {
		name   string
		post   bool
		want   []Movement
		deltas []Delta
	}{
		{"approved: reversed and posted", true,
			[]Movement{{kDay, margen.EntryPending, -300}, {kDay, margen.EntryPosted, 300},
				{kMonth, margen.EntryPending, -120}, {kMonth, margen.EntryPosted, 120}},
			[]Delta{{kDay, margen.Balance{Posted: 300, Pending: -300}}, {kMonth, margen.Balance{Posted: 120, Pending: -120}}}},
		{"rejected or expired: voided", false,
			[]Movement{{kDay, margen.EntryPending, -300}, {kMonth, margen.EntryPending, -120}},
			[]Delta{{kDay, margen.Balance{Pending: -300}}, {kMonth, margen.Balance{Pending: -120}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, ds := Release(holds, tt.post)
			if !reflect.DeepEqual(ms, tt.want) || !reflect.DeepEqual(ds, tt.deltas) {
				t.Fatalf("Release = %+v, %+v; want %+v, %+v", ms, ds, tt.want, tt.deltas)
			}
		})
	}
	if ms, ds := Release(nil, true); ms != nil || ds != nil {
		t.Fatalf("Release(nil) = %+v, %+v", ms, ds)
	}
}

// The derivation agrees with the postings: what Charge and Release write
// sums to what Expected says, for every path of a decision.
func TestExpectedMatchesPostings(t *testing.T) {
	const amt = 250
	sum := func(ms ...[]Movement) margen.Balance {
		var b margen.Balance
		for _, m := range ms {
			for _, x := range m {
				if x.Kind == margen.EntryPosted {
					b.Posted += x.Amount
				} else {
					b.Pending += x.Amount
				}
			}
		}
		return b
	}
	keys := []margen.BudgetKey{kDay}
	allowed, _ := Charge(margen.OutcomeAllowed, amt, keys)
	held, _ := Charge(margen.OutcomeNeedsApproval, amt, keys)
	posted, _ := Release([]Hold{{kDay, amt}}, true)
	voided, _ := Release([]Hold{{kDay, amt}}, false)
	tests := []struct {
		outcome, status string
		entries         margen.Balance
	}{
		{margen.OutcomeAllowed, "", sum(allowed)},
		{margen.OutcomeNeedsApproval, margen.ApprovalPending, sum(held)},
		{margen.OutcomeNeedsApproval, margen.ApprovalApproved, sum(held, posted)},
		{margen.OutcomeNeedsApproval, margen.ApprovalRejected, sum(held, voided)},
		{margen.OutcomeNeedsApproval, margen.ApprovalExpired, sum(held, voided)},
		{margen.OutcomeDenied, "", margen.Balance{}},
	}
	for _, tt := range tests {
		if got := Expected(tt.outcome, tt.status, amt); got != tt.entries {
			t.Errorf("Expected(%s, %s) = %+v; the postings sum to %+v", tt.outcome, tt.status, got, tt.entries)
		}
	}
}

// feed is one row of a check's input.
type feed func(c *Check)

func account(k margen.BudgetKey, posted, pending int64) feed {
	return func(c *Check) { c.Account(k, margen.Balance{Posted: posted, Pending: pending}) }
}

func accEntry(k margen.BudgetKey, kind string, amount int64) feed {
	return func(c *Check) { c.AccountEntry(k, kind, amount) }
}

func decision(d Decision) feed { return func(c *Check) { c.Decision(d) } }

func entry(dec string, k margen.BudgetKey, kind string, amount int64) feed {
	return func(c *Check) { c.Entries(dec, k, kind, amount, 1) }
}

func TestCheck(t *testing.T) {
	allowed := Decision{ID: "dec_1", Outcome: margen.OutcomeAllowed, Amount: 300, Accounts: []margen.BudgetKey{kDay, kMonth}, ActAmount: -1}
	pending := Decision{ID: "dec_2", Outcome: margen.OutcomeNeedsApproval, Amount: 500, Accounts: []margen.BudgetKey{kDay},
		ApprovalStatus: margen.ApprovalPending, ActAmount: -1}
	approved := Decision{ID: "dec_3", Outcome: margen.OutcomeNeedsApproval, Amount: 700, Accounts: []margen.BudgetKey{kDay},
		ApprovalStatus: margen.ApprovalApproved, ActID: "act_3", ApprovalActID: "act_3", ActAmount: 700}
	rejected := Decision{ID: "dec_4", Outcome: margen.OutcomeNeedsApproval, Amount: 900, Accounts: []margen.BudgetKey{kDay},
		ApprovalStatus: margen.ApprovalRejected, ActAmount: -1}
	clean := []feed{
		account(kDay, 1000, 500), accEntry(kDay, margen.EntryPosted, 300), accEntry(kDay, margen.EntryPending, 500),
		accEntry(kDay, margen.EntryPending, 700), accEntry(kDay, margen.EntryPending, -700), accEntry(kDay, margen.EntryPosted, 700),
		accEntry(kDay, margen.EntryPending, 900), accEntry(kDay, margen.EntryPending, -900),
		accEntry(kMonth, margen.EntryPosted, 300), account(kMonth, 300, 0), // an account after its entries
		decision(allowed), entry("dec_1", kDay, margen.EntryPosted, 300), entry("dec_1", kMonth, margen.EntryPosted, 300),
		decision(pending), entry("dec_2", kDay, margen.EntryPending, 500),
		decision(approved), entry("dec_3", kDay, margen.EntryPending, 700), entry("dec_3", kDay, margen.EntryPending, -700),
		entry("dec_3", kDay, margen.EntryPosted, 700),
		decision(rejected), entry("dec_4", kDay, margen.EntryPending, 900), entry("dec_4", kDay, margen.EntryPending, -900),
	}
	with := func(extra ...feed) []feed { return append(append([]feed{}, clean...), extra...) }
	tests := []struct {
		name string
		in   []feed
		want []string // What of each mismatch, in order
		// detail, when set, must be in the first mismatch's Detail.
		detail string
	}{
		{name: "a clean ledger", in: clean},
		{name: "an account off its entries", in: []feed{account(kDay, 10, 0), accEntry(kDay, margen.EntryPosted, 5)},
			want: []string{"posted"}},
		{name: "a hold off its entries", in: []feed{accEntry(kDay, margen.EntryPending, 5), account(kDay, 0, 6)},
			want: []string{"pending"}},
		{name: "entries on a missing account", in: []feed{accEntry(kMonth, margen.EntryPosted, 5)},
			want: []string{"account_missing"}},
		{name: "an account without entries must be empty", in: []feed{account(kMonth, 0, 0), account(kDay, 1, 0)},
			want: []string{"posted"}},
		{name: "an entry no decision explains", in: with(entry("dec_9", kDay, margen.EntryPosted, 40)),
			want: []string{"decision_posted"}, detail: "dec_9"},
		{name: "an allowed decision that lost an entry",
			in:   []feed{decision(allowed), entry("dec_1", kDay, margen.EntryPosted, 300)},
			want: []string{"decision_posted"}, detail: "dec_1"},
		{name: "a pending request without its hold", in: []feed{decision(pending)},
			want: []string{"decision_pending"}},
		{name: "a rejected request whose hold was not voided",
			in:   []feed{decision(rejected), entry("dec_4", kDay, margen.EntryPending, 900)},
			want: []string{"decision_pending"}},
		{name: "an approved request without its act",
			in: []feed{decision(Decision{ID: "dec_5", Outcome: margen.OutcomeNeedsApproval, Amount: 5, ActAmount: -1,
				ApprovalStatus: margen.ApprovalApproved})},
			want: []string{"approval_act"}},
		{name: "an approved request whose act has another amount",
			in: []feed{decision(Decision{ID: "dec_5", Outcome: margen.OutcomeNeedsApproval, Amount: 5, ActID: "act_5",
				ApprovalActID: "act_5", ActAmount: 6, ApprovalStatus: margen.ApprovalApproved})},
			want: []string{"approval_act"}},
		{name: "an act for a request not approved",
			in: []feed{decision(Decision{ID: "dec_6", Outcome: margen.OutcomeNeedsApproval, Amount: 5, ActID: "act_6",
				ActAmount: -1, ApprovalStatus: margen.ApprovalExpired})},
			want: []string{"approval_act"}, detail: "act_6"},
		{name: "a decision listing a budget twice wants it twice",
			in: []feed{decision(Decision{ID: "dec_7", Outcome: margen.OutcomeAllowed, Amount: 5, ActAmount: -1,
				Accounts: []margen.BudgetKey{kDay, kDay}}), entry("dec_7", kDay, margen.EntryPosted, 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCheck()
			for _, f := range tt.in {
				f(c)
			}
			rep := c.Report()
			var got []string
			for _, m := range rep.Mismatches {
				got = append(got, m.What)
			}
			if !reflect.DeepEqual(got, tt.want) || rep.MismatchCount != len(tt.want) || rep.OK() != (len(tt.want) == 0) {
				t.Fatalf("mismatches = %+v (count %d); want %v", rep.Mismatches, rep.MismatchCount, tt.want)
			}
			if tt.detail != "" && !strings.Contains(rep.Mismatches[0].Detail, tt.detail) {
				t.Fatalf("detail %q does not name %q", rep.Mismatches[0].Detail, tt.detail)
			}
		})
	}
	c := NewCheck()
	for _, f := range clean {
		f(c)
	}
	if rep := c.Report(); rep.Accounts != 2 || rep.Entries != 8 {
		t.Fatalf("counts = %d accounts, %d entries; want 2, 8", rep.Accounts, rep.Entries)
	}
}

// The decision given to Check may be the caller's scratch space, reused for
// the next row: the check keeps what it needs.
func TestCheckCopiesTheDecision(t *testing.T) {
	c := NewCheck()
	d := Decision{ID: "dec_1", Outcome: margen.OutcomeAllowed, Amount: 5, ActAmount: -1, Accounts: []margen.BudgetKey{kDay}}
	c.Decision(d)
	d.Accounts[0] = kMonth // the caller reuses its slice
	c.Entries("dec_1", kDay, margen.EntryPosted, 5, 1)
	if rep := c.Report(); !rep.OK() {
		t.Fatalf("mismatches = %+v", rep.Mismatches)
	}
}

// A ledger broken everywhere gives a bounded report that counts it all.
func TestCheckBoundsTheReport(t *testing.T) {
	c := NewCheck()
	const n = 3 * MaxMismatches
	for i := range n {
		k := margen.BudgetKey{BudgetID: "b", Subject: "s", Period: strings.Repeat("x", i+1)}
		c.Account(k, margen.Balance{Posted: 1})
	}
	rep := c.Report()
	if len(rep.Mismatches) != MaxMismatches || rep.MismatchCount != n || rep.OK() {
		t.Fatalf("listed %d, counted %d; want %d, %d", len(rep.Mismatches), rep.MismatchCount, MaxMismatches, n)
	}
}
