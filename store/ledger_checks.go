package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/margenhq/margen"
)

var _ margen.LedgerCheckStore = (*DB)(nil)

// keepLedgerChecks is how many reports of an organisation are kept.
const keepLedgerChecks = 10

// SaveLedgerCheck stores a report of `ledger check` (filling its id) and
// deletes the organisation's older ones beyond the newest few.
func (db *DB) SaveLedgerCheck(ctx context.Context, c *margen.LedgerCheck) error {
	if c.ID == "" {
		c.ID = margen.NewID("lck")
	}
	stamp(&c.StartedAt)
	stamp(&c.FinishedAt)
	report, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("store: save ledger check: %w", err)
	}
	return db.writeTx(ctx, func(t *wtx) error {
		d := t.db.d
		if _, err := t.exec(`INSERT INTO ledger_checks (org_id, id, started_at, finished_at, ok, report)
			VALUES (?, ?, ?, ?, ?, ?)`, c.OrgID, c.ID, d.ts(c.StartedAt), d.ts(c.FinishedAt), c.OK, string(report)); err != nil {
			return conflictOr("save ledger check", err, "error.ledger_check_exists")
		}
		_, err := t.exec(`DELETE FROM ledger_checks WHERE org_id = ? AND id NOT IN (
			SELECT id FROM ledger_checks WHERE org_id = ? ORDER BY finished_at DESC, id DESC LIMIT ?)`,
			c.OrgID, c.OrgID, keepLedgerChecks)
		return dbErr("save ledger check", err)
	})
}

// LatestLedgerCheck returns the organisation's newest report (with ok,
// the newest that found nothing wrong).
func (db *DB) LatestLedgerCheck(ctx context.Context, orgID string, ok bool) (*margen.LedgerCheck, error) {
	where := ""
	if ok {
		where = " AND ok = ?"
	}
	args := []any{orgID}
	if ok {
		args = append(args, true)
	}
	return getOne(ctx, db, "ledger_check", func(s scanner) (margen.LedgerCheck, error) {
		var c margen.LedgerCheck
		var report string
		if err := s.Scan(&report); err != nil {
			return c, err
		}
		if err := json.Unmarshal([]byte(report), &c); err != nil {
			return c, fmt.Errorf("ledger check report: %w", err)
		}
		c.OrgID = orgID
		return c, nil
	}, `SELECT report FROM ledger_checks WHERE org_id = ?`+where+` ORDER BY finished_at DESC, id DESC LIMIT 1`, args...)
}

// LedgerCheckQueued reports whether a ledger check of the organisation is
// waiting in the queue or running.
func (db *DB) LedgerCheckQueued(ctx context.Context, orgID string) (bool, error) {
	var n int
	err := db.readPool().QueryRowContext(ctx, db.d.rebind(
		"SELECT COUNT(*) FROM jobs WHERE kind = ? AND org_id = ? AND status = 'pending'"),
		margen.JobLedgerCheck, orgID).Scan(&n)
	return n > 0, dbErr("ledger check queued", err)
}
