package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/margenhq/margen"
)

// CheckLedger re-derives the organisation's accounts twice: from the ledger
// entries (posted and pending must equal the sums of their entries), and
// from the decisions that caused the entries (an allowed decision posts its
// amount on every budget it lists; a decision waiting for approval holds it
// as pending; an approved one has it posted, its hold reversed to zero, and
// the act the approval created; a rejected or expired one has its hold
// reversed to zero and nothing posted). Every difference is reported.
func (db *DB) CheckLedger(ctx context.Context, orgID string) (margen.LedgerReport, error) {
	rep := margen.LedgerReport{Mismatches: []margen.LedgerMismatch{}}
	var opts *sql.TxOptions
	if db.d.pg {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return rep, err
	}
	defer release()
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		return rep, dbErr("check ledger", err)
	}
	defer tx.Rollback()
	q := func(query string, args ...any) (*sql.Rows, error) {
		return tx.QueryContext(ctx, db.d.rebind(query), args...)
	}

	type sums struct{ posted, pending int64 }
	// 1. Accounts against the sums of their entries.
	accounts := map[margen.BudgetKey]margen.Balance{}
	rows, err := q("SELECT budget_id, subject, period, posted, pending FROM budget_accounts WHERE org_id = ?", orgID)
	if err != nil {
		return rep, dbErr("check ledger", err)
	}
	for rows.Next() {
		var k margen.BudgetKey
		var b margen.Balance
		if err := rows.Scan(&k.BudgetID, &k.Subject, &k.Period, &b.Posted, &b.Pending); err != nil {
			rows.Close()
			return rep, dbErr("check ledger", err)
		}
		accounts[k] = b
	}
	rows.Close()
	rep.Accounts = len(accounts)

	// Entry sums per (decision, account, kind).
	type dk struct {
		decision string
		key      margen.BudgetKey
	}
	byDecision := map[dk]sums{}
	byAccount := map[margen.BudgetKey]sums{}
	rows, err = q(`SELECT decision_id, budget_id, subject, period, kind, SUM(amount), COUNT(*)
		FROM ledger_entries WHERE org_id = ?
		GROUP BY decision_id, budget_id, subject, period, kind`, orgID)
	if err != nil {
		return rep, dbErr("check ledger", err)
	}
	for rows.Next() {
		var x dk
		var kind string
		var sum, n int64
		if err := rows.Scan(&x.decision, &x.key.BudgetID, &x.key.Subject, &x.key.Period, &kind, &sum, &n); err != nil {
			rows.Close()
			return rep, dbErr("check ledger", err)
		}
		rep.Entries += int(n)
		s, a := byDecision[x], byAccount[x.key]
		if kind == margen.EntryPosted {
			s.posted += sum
			a.posted += sum
		} else {
			s.pending += sum
			a.pending += sum
		}
		byDecision[x], byAccount[x.key] = s, a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, dbErr("check ledger", err)
	}

	keys := make([]margen.BudgetKey, 0, len(accounts))
	for k := range accounts {
		keys = append(keys, k)
	}
	for k := range byAccount {
		if _, ok := accounts[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b margen.BudgetKey) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	for _, k := range keys {
		b, s := accounts[k], byAccount[k]
		if _, ok := accounts[k]; !ok {
			rep.Mismatches = append(rep.Mismatches, margen.LedgerMismatch{Key: k, What: "account_missing",
				Want: s.posted + s.pending, Detail: "entries name an account that does not exist"})
			continue
		}
		if b.Posted != s.posted {
			rep.Mismatches = append(rep.Mismatches, margen.LedgerMismatch{Key: k, What: "posted", Want: s.posted, Got: b.Posted,
				Detail: "account posted differs from the sum of its posted entries"})
		}
		if b.Pending != s.pending {
			rep.Mismatches = append(rep.Mismatches, margen.LedgerMismatch{Key: k, What: "pending", Want: s.pending, Got: b.Pending,
				Detail: "account pending differs from the sum of its pending entries"})
		}
	}

	// 2. Entries against the decisions that caused them.
	want := map[dk]sums{}
	rows, err = q(`SELECT d.id, d.outcome, d.amount, d.budgets, COALESCE(a.status, ''), d.act_id,
			COALESCE(a.act_id, ''), COALESCE(x.amount, -1)
		FROM decisions d
		LEFT JOIN approvals a ON a.org_id = d.org_id AND a.decision_id = d.id
		LEFT JOIN acts x ON x.org_id = d.org_id AND x.id = a.act_id
		WHERE d.org_id = ? AND d.outcome IN ('allowed', 'needs_approval')`, orgID)
	if err != nil {
		return rep, dbErr("check ledger", err)
	}
	for rows.Next() {
		var id, outcome, status, decisionAct, approvalAct string
		var amount, actAmount int64
		var budgets []byte
		if err := rows.Scan(&id, &outcome, &amount, &budgets, &status, &decisionAct, &approvalAct, &actAmount); err != nil {
			rows.Close()
			return rep, dbErr("check ledger", err)
		}
		// An approved request posted its amount through the act it created
		// (linked from both the request and the decision); a request not
		// approved created none.
		if outcome == margen.OutcomeNeedsApproval {
			switch {
			case status == margen.ApprovalApproved && (approvalAct == "" || decisionAct != approvalAct || actAmount != amount):
				rep.Mismatches = append(rep.Mismatches, margen.LedgerMismatch{What: "approval_act", Want: amount, Got: actAmount,
					Detail: "decision " + id + ": approved request without its act (act " + approvalAct + ", decision links " + decisionAct + ")"})
			case status != margen.ApprovalApproved && decisionAct != "":
				rep.Mismatches = append(rep.Mismatches, margen.LedgerMismatch{What: "approval_act",
					Detail: "decision " + id + ": act " + decisionAct + " without an approved request (" + status + ")"})
			}
		}
		var views []margen.BudgetView
		if len(budgets) > 0 {
			if err := json.Unmarshal(budgets, &views); err != nil {
				rows.Close()
				return rep, fmt.Errorf("store: check ledger: decision %s budgets: %w", id, err)
			}
		}
		var s sums
		switch {
		case outcome == margen.OutcomeAllowed, status == margen.ApprovalApproved:
			s.posted = amount
		case status == margen.ApprovalPending:
			s.pending = amount
		default: // rejected or expired: the hold was reversed, nothing remains
		}
		for _, v := range views {
			x := dk{id, margen.BudgetKey{BudgetID: v.Budget, Subject: v.Subject, Period: v.Period}}
			w := want[x]
			w.posted += s.posted
			w.pending += s.pending
			want[x] = w
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, dbErr("check ledger", err)
	}
	derived := make([]dk, 0, len(want)+len(byDecision))
	for x := range want {
		derived = append(derived, x)
	}
	for x := range byDecision {
		if _, ok := want[x]; !ok {
			derived = append(derived, x)
		}
	}
	slices.SortFunc(derived, func(a, b dk) int {
		if a.decision != b.decision {
			if a.decision < b.decision {
				return -1
			}
			return 1
		}
		if a.key.Less(b.key) {
			return -1
		}
		if b.key.Less(a.key) {
			return 1
		}
		return 0
	})
	for _, x := range derived {
		w, g := want[x], byDecision[x]
		if w.posted != g.posted {
			rep.Mismatches = append(rep.Mismatches, margen.LedgerMismatch{Key: x.key, What: "decision_posted", Want: w.posted, Got: g.posted,
				Detail: "decision " + x.decision})
		}
		if w.pending != g.pending {
			rep.Mismatches = append(rep.Mismatches, margen.LedgerMismatch{Key: x.key, What: "decision_pending", Want: w.pending, Got: g.pending,
				Detail: "decision " + x.decision})
		}
	}
	return rep, nil
}
