package approval_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
)

// TestResolve runs the pure resolution over the state the store reads
// under the request's lock: what each answer writes, and what it refuses.
func TestResolve(t *testing.T) {
	created := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := created.Add(90 * time.Second)
	due := at.Add(2 * time.Hour)
	food := margen.BudgetKey{BudgetID: "food", Subject: "mem_ana", Period: "2026-03-02"}
	team := margen.BudgetKey{BudgetID: "team", Subject: "sala", Period: "2026-03"}
	pending := func(kind string, amount int64, holds ...margen.Hold) *margen.ResolutionState {
		return &margen.ResolutionState{
			Approval: margen.Approval{ID: "apr_1", OrgID: "org_1", DecisionID: "dec_1", Kind: kind, MemberID: "mem_ana",
				CustomerID: "cus_1", Action: "gift", Amount: amount, ApproverRole: "manager", SLA: time.Hour,
				DueAt: created.Add(time.Hour), OnTimeout: "escalate", EscalateTo: "owner",
				Status: margen.ApprovalPending, CreatedAt: created},
			Team: "sala", Currency: "EUR", Reason: "cold soup", Flagged: true, Holds: holds,
		}
	}
	void := func(k margen.BudgetKey, n int64) margen.LedgerEntry {
		return margen.LedgerEntry{OrgID: "org_1", Key: k, DecisionID: "dec_1", Kind: margen.EntryPending, Amount: -n, CreatedAt: at}
	}
	post := func(k margen.BudgetKey, n int64) margen.LedgerEntry {
		return margen.LedgerEntry{OrgID: "org_1", Key: k, DecisionID: "dec_1", Kind: margen.EntryPosted, Amount: n, CreatedAt: at}
	}
	move := func(k margen.BudgetKey, posted, pend int64) margen.AccountDelta {
		return margen.AccountDelta{OrgBudgetKey: margen.OrgBudgetKey{OrgID: "org_1", BudgetKey: k}, Posted: posted, Pending: pend}
	}
	act := func(kind string, amount int64) *margen.Act {
		return &margen.Act{ID: "act_1", OrgID: "org_1", DecisionID: "dec_1", MemberID: "mem_ana", CustomerID: "cus_1",
			Action: "gift", Amount: amount, Currency: "EUR", Reason: "cold soup", Flagged: true, CreatedAt: at,
			AfterTheFact: kind == margen.ApprovalKindRatification, Team: "sala"}
	}
	idem := &margen.Idempotency{OrgID: "org_1", MemberID: "mem_boss", Key: "k1"}

	tests := []struct {
		name    string
		st      *margen.ResolutionState
		r       margen.Resolution
		idem    *margen.Idempotency
		errCode string
		errKey  string
		// What is written.
		status, role string
		level        int
		act          *margen.Act
		ledger       []margen.LedgerEntry
		accounts     []margen.AccountDelta
		data         margen.EventData
	}{{
		name: "approve: the hold is voided and posted, the act created",
		st:   pending("", 250, margen.Hold{Key: food, Amount: 250}),
		r: margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalApproved, Actor: "mem_boss", Comment: "ok",
			At: at, ActID: "act_1"},
		idem:   idem,
		status: margen.ApprovalApproved, role: "manager",
		act:      act("", 250),
		ledger:   []margen.LedgerEntry{void(food, 250), post(food, 250)},
		accounts: []margen.AccountDelta{move(food, 250, -250)},
		data: margen.EventData{Action: "gift", Amount: 250, Customer: "cus_1", Member: "mem_ana", Team: "sala",
			DecisionID: "dec_1", ActID: "act_1", ApprovalID: "apr_1", Status: margen.ApprovalApproved,
			ApproverRole: "manager", DecidedBy: "mem_boss", TimeToAnswer: 90_000},
	}, {
		name:   "approve over budget: an explicit yes posts every hold whatever the limits",
		st:     pending("", 900, margen.Hold{Key: food, Amount: 900}, margen.Hold{Key: team, Amount: 900}),
		r:      margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalApproved, Actor: "mem_boss", At: at, ActID: "act_1"},
		status: margen.ApprovalApproved, role: "manager",
		act:      act("", 900),
		ledger:   []margen.LedgerEntry{void(food, 900), post(food, 900), void(team, 900), post(team, 900)},
		accounts: []margen.AccountDelta{move(food, 900, -900), move(team, 900, -900)},
		data: margen.EventData{Action: "gift", Amount: 900, Customer: "cus_1", Member: "mem_ana", Team: "sala",
			DecisionID: "dec_1", ActID: "act_1", ApprovalID: "apr_1", Status: margen.ApprovalApproved,
			ApproverRole: "manager", DecidedBy: "mem_boss", TimeToAnswer: 90_000},
	}, {
		name:   "reject: the hold is voided, nothing posted, no act",
		st:     pending("", 250, margen.Hold{Key: food, Amount: 250}),
		r:      margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalRejected, Actor: "mem_boss", At: at, ActID: "act_x"},
		status: margen.ApprovalRejected, role: "manager",
		ledger:   []margen.LedgerEntry{void(food, 250)},
		accounts: []margen.AccountDelta{move(food, 0, -250)},
		data: margen.EventData{Action: "gift", Amount: 250, Customer: "cus_1", Member: "mem_ana", Team: "sala",
			DecisionID: "dec_1", ApprovalID: "apr_1", Status: margen.ApprovalRejected,
			ApproverRole: "manager", DecidedBy: "mem_boss", TimeToAnswer: 90_000},
	}, {
		name:   "expiry: the system voids the hold; a zero hold moves nothing",
		st:     pending("", 250, margen.Hold{Key: food, Amount: 250}, margen.Hold{Key: team}),
		r:      margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalExpired, At: at},
		status: margen.ApprovalExpired, role: "manager",
		ledger:   []margen.LedgerEntry{void(food, 250)},
		accounts: []margen.AccountDelta{move(food, 0, -250)},
		data: margen.EventData{Action: "gift", Amount: 250, Customer: "cus_1", Member: "mem_ana", Team: "sala",
			DecisionID: "dec_1", ApprovalID: "apr_1", Status: margen.ApprovalExpired,
			ApproverRole: "manager", DecidedBy: approval.SystemActor, TimeToAnswer: 90_000},
	}, {
		name: "escalation: the request moves up with a new due time, the hold stays",
		st:   pending("", 250, margen.Hold{Key: food, Amount: 250}),
		r: margen.Resolution{ApprovalID: "apr_1", Status: margen.Escalated, At: at, Approver: "owner", DueAt: due,
			OnTimeout: "deny"},
		status: margen.ApprovalPending, role: "owner", level: 1,
		data: margen.EventData{Action: "gift", Amount: 250, Customer: "cus_1", Member: "mem_ana", Team: "sala",
			DecisionID: "dec_1", ApprovalID: "apr_1", Status: margen.Escalated, ApproverRole: "owner",
			FromRole: "manager", DueAt: due.Format(time.RFC3339)},
	}, {
		name:   "exception approved: no hold, an act of the exception",
		st:     pending(margen.ApprovalKindException, 0),
		r:      margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalApproved, Actor: "mem_boss", At: at, ActID: "act_1"},
		status: margen.ApprovalApproved, role: "manager",
		act: act(margen.ApprovalKindException, 0),
		data: margen.EventData{Action: "gift", Customer: "cus_1", Member: "mem_ana", Team: "sala",
			DecisionID: "dec_1", ActID: "act_1", ApprovalID: "apr_1", Status: margen.ApprovalApproved,
			ApproverRole: "manager", DecidedBy: "mem_boss", TimeToAnswer: 90_000},
	}, {
		name: "ratification approved: the act was done after the fact",
		st:   pending(margen.ApprovalKindRatification, 250, margen.Hold{Key: food, Amount: 250}),
		r: margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalApproved, Actor: "mem_boss", At: at,
			ActID: "act_1"},
		status: margen.ApprovalApproved, role: "manager",
		act:      act(margen.ApprovalKindRatification, 250),
		ledger:   []margen.LedgerEntry{void(food, 250), post(food, 250)},
		accounts: []margen.AccountDelta{move(food, 250, -250)},
		data: margen.EventData{Action: "gift", Amount: 250, Customer: "cus_1", Member: "mem_ana", Team: "sala",
			DecisionID: "dec_1", ActID: "act_1", ApprovalID: "apr_1", Status: margen.ApprovalApproved,
			ApproverRole: "manager", DecidedBy: "mem_boss", TimeToAnswer: 90_000},
	}, {
		name: "answered meanwhile",
		st: func() *margen.ResolutionState {
			s := pending("", 250)
			s.Approval.Status = margen.ApprovalRejected
			return s
		}(),
		r:       margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalApproved, At: at},
		errCode: margen.ECONFLICT, errKey: "error.approval_already_decided",
	}, {
		name:    "moved meanwhile (another level)",
		st:      pending("", 250),
		r:       margen.Resolution{ApprovalID: "apr_1", Level: 1, Status: margen.ApprovalRejected, At: at},
		errCode: margen.ECONFLICT, errKey: "error.approval_already_decided",
	}, {
		name:    "unknown status",
		st:      pending("", 250),
		r:       margen.Resolution{ApprovalID: "apr_1", Status: "maybe", At: at},
		errCode: margen.EINVALID, errKey: "error.invalid_value",
	}, {
		name:    "escalation without a role",
		st:      pending("", 250),
		r:       margen.Resolution{ApprovalID: "apr_1", Status: margen.Escalated, At: at, DueAt: due},
		errCode: margen.EINVALID, errKey: "error.invalid_value",
	}, {
		name:    "escalation without a due time",
		st:      pending("", 250),
		r:       margen.Resolution{ApprovalID: "apr_1", Status: margen.Escalated, At: at, Approver: "owner"},
		errCode: margen.EINVALID, errKey: "error.invalid_time",
	}, {
		name:    "no time",
		st:      pending("", 250),
		r:       margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalRejected},
		errCode: margen.EINVALID, errKey: "error.invalid_time",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := *tc.st
			w, err := approval.Resolve(tc.st, tc.r, tc.idem)
			if tc.errCode != "" {
				wantErr(t, err, tc.errCode, tc.errKey)
				if w != nil {
					t.Fatalf("a refused resolution writes %+v", w)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, *tc.st) {
				t.Errorf("the state read was changed: %+v, was %+v", *tc.st, before)
			}
			a := w.Approval
			if a.ID != "apr_1" || a.OrgID != "org_1" || a.Status != tc.status || a.ApproverRole != tc.role || a.Level != tc.level {
				t.Errorf("approval = %s at %s level %d, want %s at %s level %d", a.Status, a.ApproverRole, a.Level,
					tc.status, tc.role, tc.level)
			}
			if tc.status == margen.ApprovalPending {
				if a.DecidedAt != nil || a.DecidedBy != "" || !a.DueAt.Equal(due) || a.SLA != 2*time.Hour ||
					a.OnTimeout != tc.r.OnTimeout || a.EscalateTo != tc.r.EscalateTo {
					t.Errorf("escalated = %+v", a)
				}
				if e := w.Event; e.Kind != margen.Escalated || e.FromRole != "manager" || e.ToRole != "owner" || e.Actor != approval.SystemActor {
					t.Errorf("event = %+v", e)
				}
			} else {
				if a.DecidedAt == nil || !a.DecidedAt.Equal(at) || a.DecidedBy != tc.data.DecidedBy || a.Comment != tc.r.Comment ||
					a.ActID != tc.data.ActID || !a.DueAt.Equal(tc.st.Approval.DueAt) || a.Level != 0 {
					t.Errorf("answered = %+v", a)
				}
				if e := w.Event; e.Kind != tc.status || e.Actor != tc.data.DecidedBy || e.FromRole != "" || e.ToRole != "" {
					t.Errorf("event = %+v", e)
				}
			}
			if e := w.Event; e.ID == "" || e.ApprovalID != "apr_1" || !e.At.Equal(at) || e.Comment != tc.r.Comment {
				t.Errorf("event = %+v", e)
			}
			if !reflect.DeepEqual(tc.act, w.Act) {
				t.Errorf("act = %+v, want %+v", w.Act, tc.act)
			}
			if (len(tc.ledger) > 0 || len(w.Ledger) > 0) && !reflect.DeepEqual(tc.ledger, w.Ledger) {
				t.Errorf("ledger = %+v, want %+v", w.Ledger, tc.ledger)
			}
			if (len(tc.accounts) > 0 || len(w.Accounts) > 0) && !reflect.DeepEqual(tc.accounts, w.Accounts) {
				t.Errorf("accounts = %+v, want %+v", w.Accounts, tc.accounts)
			}
			// The ledger balances: what leaves pending is what was held.
			var held, moved int64
			for _, h := range tc.st.Holds {
				if tc.status != margen.ApprovalPending {
					held += h.Amount
				}
			}
			for _, m := range w.Accounts {
				moved -= m.Pending
			}
			if held != moved {
				t.Errorf("pending released %d, held %d", moved, held)
			}
			au := w.Audit
			if au.OrgID != "org_1" || au.Action != margen.ResolutionAction(tc.r.Status) || au.Subject != "apr_1" || !au.At.Equal(at) ||
				au.Actor != w.Event.Actor {
				t.Errorf("audit = %+v", au)
			}
			var data margen.EventData
			if err := json.Unmarshal(au.Data, &data); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.data, data) {
				t.Errorf("audit data = %+v, want %+v", data, tc.data)
			}
			if w.Idem != tc.idem {
				t.Errorf("idempotency record = %v, want %v", w.Idem, tc.idem)
			}
		})
	}
}

// TestResolveNewAct: an approval without an act id gets a fresh one, and the
// same resolution twice gives two distinct ids (a retry is a new act only
// if the first one never committed: the store's level guard sees to that).
func TestResolveNewAct(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	st := &margen.ResolutionState{Approval: margen.Approval{ID: "apr_1", OrgID: "org_1", DecisionID: "dec_1",
		Status: margen.ApprovalPending, CreatedAt: at}}
	r := margen.Resolution{ApprovalID: "apr_1", Status: margen.ApprovalApproved, At: at}
	w1, err := approval.Resolve(st, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := approval.Resolve(st, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w1.Act == nil || w1.Act.ID == "" || w1.Act.ID != w1.Approval.ActID || w1.Act.ID == w2.Act.ID {
		t.Fatalf("acts %+v and %+v", w1.Act, w2.Act)
	}
}

// TestExceptionWrite: what an exception request writes, from what the caller
// built and the requester's team read under the organisation's lock.
func TestExceptionWrite(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC)
	st := &margen.ExceptionState{Team: "sala"}
	tests := []struct {
		name    string
		d       margen.Decision
		a       margen.Approval
		errCode string
		// want
		due     time.Time
		member  string
		action  string
		outcome string
	}{{
		name: "defaults from the decision, due one SLA after creation",
		d: margen.Decision{OrgID: "org_1", MemberID: "mem_ana", CustomerID: "cus_1", Action: "exception",
			Outcome: margen.OutcomeAllowed, ActID: "act_x", PolicyVersion: 3, CreatedAt: at,
			Budgets: []margen.BudgetView{{Budget: "food"}}},
		a:      margen.Approval{ApproverRole: "owner", SLA: time.Hour, Status: margen.ApprovalApproved, Level: 4, DecidedBy: "x", Description: "staff ATM"},
		due:    at.Truncate(time.Microsecond).Add(time.Hour),
		member: "mem_ana", action: "exception",
	}, {
		name: "what the request names stays",
		d:    margen.Decision{OrgID: "org_1", MemberID: "mem_ana", Action: "exception", CreatedAt: at},
		a: margen.Approval{MemberID: "mem_ana", Action: "exception", ApproverRole: "manager", SLA: time.Hour,
			DueAt: at.Add(5 * time.Minute), Description: "open late"},
		due:    at.Add(5 * time.Minute).Truncate(time.Microsecond),
		member: "mem_ana", action: "exception",
	}, {
		name:    "no time",
		d:       margen.Decision{OrgID: "org_1", MemberID: "mem_ana", Action: "exception"},
		a:       margen.Approval{ApproverRole: "owner"},
		errCode: margen.EINVALID,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := approval.Exception(st, tc.d, tc.a, nil, nil)
			if tc.errCode != "" {
				wantErr(t, err, tc.errCode, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, a := w.Decision, w.Approval
			if d.ID == "" || a.ID == "" || d.ApprovalID != a.ID || a.DecisionID != d.ID || a.OrgID != "org_1" {
				t.Fatalf("ids: decision %+v, approval %+v", d, a)
			}
			if d.Outcome != margen.OutcomeNeedsApproval || d.ActID != "" || len(d.Budgets) != 0 || d.Budgets == nil || d.Team != "sala" {
				t.Errorf("decision = %+v", d)
			}
			if a.Kind != margen.ApprovalKindException || a.Status != margen.ApprovalPending || a.Level != 0 ||
				a.DecidedBy != "" || a.MemberID != tc.member || a.Action != tc.action || a.CustomerID != tc.d.CustomerID ||
				!a.CreatedAt.Equal(d.CreatedAt) || !a.DueAt.Equal(tc.due) || d.CreatedAt.Nanosecond()%1000 != 0 {
				t.Errorf("approval = %+v", a)
			}
			if e := w.Event; e.Kind != margen.EventRequested || e.Actor != "mem_ana" || e.ToRole != tc.a.ApproverRole ||
				e.Comment != tc.a.Description || !e.At.Equal(a.CreatedAt) || len(a.History) != 1 || a.History[0] != e {
				t.Errorf("event = %+v, history %+v", e, a.History)
			}
			au := w.Audit
			if au.Action != "exception.request" || au.Subject != a.ID || au.Actor != "mem_ana" || au.OrgID != "org_1" {
				t.Errorf("audit = %+v", au)
			}
			var data margen.EventData
			if err := json.Unmarshal(au.Data, &data); err != nil {
				t.Fatal(err)
			}
			if data.Team != "sala" || data.ApprovalID != a.ID || data.DecisionID != d.ID || data.Outcome != margen.OutcomeNeedsApproval ||
				data.DueAt != tc.due.Format(time.RFC3339) || data.Version != tc.d.PolicyVersion {
				t.Errorf("audit data = %+v", data)
			}
		})
	}
}
