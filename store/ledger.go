package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/ledger"
)

// CheckLedger re-derives the organisation's accounts (ledger.Check): from
// the ledger entries (posted and pending must equal the sums of their
// entries), and from the decisions that caused the entries. The store only
// reads: two ordered scans in one snapshot, each fed row by row to the
// check, so memory stays flat however many decisions the organisation has
// (the sorts run in the database: on SQLite in temporary files, see
// scanConn).
//
//   - accounts and entries, grouped by account (ORDER BY the key);
//   - decisions that may have moved budgets (with their approval and its
//     act) and entries, grouped by decision (ORDER BY the decision id).
func (db *DB) CheckLedger(ctx context.Context, orgID string) (margen.LedgerReport, error) {
	chk := ledger.NewCheck()
	err := db.scanSnapshot(ctx, "check ledger", func(q queryFunc) error {
		if err := db.ledgerAccounts(q, orgID, chk); err != nil {
			return err
		}
		return db.ledgerDecisions(q, orgID, chk)
	})
	if err != nil {
		return margen.LedgerReport{}, err
	}
	return chk.Report(), nil
}

// scanSnapshot runs fn on one read connection, in one read-only snapshot
// (REPEATABLE READ on PostgreSQL; a SQLite read transaction is one). On
// SQLite the connection sorts in temporary files and keeps a small page
// cache for the while: the read pool keeps its sorts in memory and a large
// cache, which is right for a page of rows read again and again, not for one
// pass over every entry of an organisation (a cache that big would only hold
// pages the scan never reads twice, in a server's memory, beside its other
// readers').
func (db *DB) scanSnapshot(ctx context.Context, what string, fn func(q queryFunc) error) error {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return err
	}
	defer release()
	if !db.d.pg {
		if _, err := c.ExecContext(ctx, scanPragmas); err != nil {
			return dbErr(what, err)
		}
		// Back to the pool's settings; a connection that cannot be reset
		// is not returned to the pool.
		defer func() {
			if _, err := c.ExecContext(context.WithoutCancel(ctx), readPragmas); err != nil {
				c.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	var opts *sql.TxOptions
	if db.d.pg {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		return dbErr(what, err)
	}
	defer tx.Rollback()
	return fn(func(query string, args ...any) (*sql.Rows, error) {
		return tx.QueryContext(ctx, db.d.rebind(query), args...)
	})
}

// ledgerAccounts feeds every account and every entry, grouped by account.
func (db *DB) ledgerAccounts(q queryFunc, orgID string, chk *ledger.Check) error {
	rows, err := q(`SELECT budget_id, subject, period, 0 AS src, '' AS kind, posted, pending
		FROM budget_accounts WHERE org_id = ?
		UNION ALL
		SELECT budget_id, subject, period, 1, kind, amount, 0
		FROM ledger_entries WHERE org_id = ?
		ORDER BY 1, 2, 3, 4`, orgID, orgID)
	if err != nil {
		return dbErr("check ledger", err)
	}
	defer rows.Close()
	var k margen.BudgetKey
	var src int
	var kind string
	var a, b int64
	for rows.Next() {
		if err := rows.Scan(&k.BudgetID, &k.Subject, &k.Period, &src, &kind, &a, &b); err != nil {
			return dbErr("check ledger", err)
		}
		if src == 0 {
			chk.Account(k, margen.Balance{Posted: a, Pending: b})
		} else {
			chk.AccountEntry(k, kind, a)
		}
	}
	return dbErr("check ledger", rows.Err())
}

// ledgerDecisions feeds every decision that may have moved budgets and
// every entry, grouped by decision.
func (db *DB) ledgerDecisions(q queryFunc, orgID string, chk *ledger.Check) error {
	budgets := "d.budgets"
	if db.d.pg {
		budgets = "d.budgets::text"
	}
	rows, err := q(`SELECT d.id, 0 AS src, d.outcome, d.amount, `+budgets+`, COALESCE(a.status, ''), d.act_id,
			COALESCE(a.act_id, ''), COALESCE(x.amount, -1), '', '', '', ''
		FROM decisions d
		LEFT JOIN approvals a ON a.org_id = d.org_id AND a.decision_id = d.id
		LEFT JOIN acts x ON x.org_id = d.org_id AND x.id = a.act_id
		WHERE d.org_id = ? AND d.outcome IN ('allowed', 'needs_approval')
		UNION ALL
		SELECT decision_id, 1, '', amount, '', '', '', '', 0, budget_id, subject, period, kind
		FROM ledger_entries WHERE org_id = ?
		ORDER BY 1, 2`, orgID, orgID)
	if err != nil {
		return dbErr("check ledger", err)
	}
	defer rows.Close()
	var d ledger.Decision
	var src int
	var views []struct {
		Budget  string `json:"budget"`
		Subject string `json:"subject"`
		Period  string `json:"period"`
	}
	var raw []byte
	var k margen.BudgetKey
	var kind string
	for rows.Next() {
		if err := rows.Scan(&d.ID, &src, &d.Outcome, &d.Amount, &raw, &d.ApprovalStatus, &d.ActID,
			&d.ApprovalActID, &d.ActAmount, &k.BudgetID, &k.Subject, &k.Period, &kind); err != nil {
			return dbErr("check ledger", err)
		}
		if src == 1 {
			chk.Entries(d.ID, k, kind, d.Amount, 1)
			continue
		}
		views = views[:0]
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &views); err != nil {
				return fmt.Errorf("store: check ledger: decision %s budgets: %w", d.ID, err)
			}
		}
		d.Accounts = d.Accounts[:0]
		for _, v := range views {
			d.Accounts = append(d.Accounts, margen.BudgetKey{BudgetID: v.Budget, Subject: v.Subject, Period: v.Period})
		}
		chk.Decision(d)
	}
	return dbErr("check ledger", rows.Err())
}
