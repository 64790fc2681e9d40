package store

import (
	"context"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// todayReactionsQuery reads the newest reactions with their acts. The
// newest reactions are picked first, on their primary key, and only they
// are joined: written as one join, SQLite's planner (without statistics)
// walked every act of the organisation and sorted the result, 8 ms a page
// with the demo's 2,000 acts.
const todayReactionsQuery = `SELECT r.id, r.act_id, r.source, r.sentiment, r.note, r.member_id, r.created_at,
		a.member_id, a.action, a.amount
	FROM (SELECT id, act_id, source, sentiment, note, member_id, created_at, org_id FROM reactions
		WHERE org_id = ? ORDER BY id DESC LIMIT ?) r
	JOIN acts a ON a.org_id = r.org_id AND a.id = r.act_id
	ORDER BY r.id DESC`

// Today reads an organisation's day for the manager's desk in three reads:
// the decisions made in [since, until) by outcome (decisions_created
// index), the open approval requests and the oldest one's time
// (approvals_status index), and the last `reactions` reactions with their
// acts (primary keys).
func (db *DB) Today(ctx context.Context, orgID string, since, until time.Time, reactions int) (*margen.Today, error) {
	out := &margen.Today{Outcomes: map[string]int64{}, Reactions: []margen.ReactionSeen{}}
	rows, err := db.readPool().QueryContext(ctx, db.d.rebind(`SELECT outcome, approval_id = '', COUNT(*) FROM decisions
		WHERE org_id = ? AND created_at >= ? AND created_at < ? GROUP BY outcome, approval_id = ''`),
		orgID, db.d.ts(since), db.d.ts(until))
	if err != nil {
		return nil, dbErr("today: decisions", err)
	}
	for rows.Next() {
		var outcome string
		var alone bool
		var n int64
		if err := rows.Scan(&outcome, &alone, &n); err != nil {
			rows.Close()
			return nil, dbErr("today: decisions", err)
		}
		out.Outcomes[outcome] += n
		if alone && outcome == margen.OutcomeAllowed {
			out.Alone += n
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, dbErr("today: decisions", err)
	}
	rows.Close()

	err = db.readPool().QueryRowContext(ctx, db.d.rebind(`SELECT COUNT(*), MIN(created_at) FROM approvals
		WHERE org_id = ? AND status = 'pending'`), orgID).Scan(&out.Pending, tsCol{&out.OldestPending})
	if err != nil {
		return nil, dbErr("today: pending approvals", err)
	}

	rows, err = db.readPool().QueryContext(ctx, db.d.rebind(todayReactionsQuery), orgID, pageLimit(reactions))
	if err != nil {
		return nil, dbErr("today: reactions", err)
	}
	defer rows.Close()
	for rows.Next() {
		x := margen.ReactionSeen{}
		x.OrgID = orgID
		if err := rows.Scan(&x.ID, &x.ActID, &x.Source, &x.Sentiment, &x.Note, &x.MemberID, tsCol{&x.CreatedAt},
			&x.ActMember, &x.ActAction, &x.ActAmount); err != nil {
			return nil, dbErr("today: reactions", err)
		}
		out.Reactions = append(out.Reactions, x)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("today: reactions", err)
	}
	return out, nil
}

// ListAuditNewest pages the organisation's audit trail newest first, on
// the primary key (org_id, seq), or on audit_log_action when filtered.
func (db *DB) ListAuditNewest(ctx context.Context, orgID string, f margen.AuditFilter) ([]margen.AuditEntry, error) {
	var w where
	w.add("org_id = ?", orgID)
	if f.Before > 0 {
		w.add("seq < ?", f.Before)
	}
	sel := auditSelect
	if f.Action != "" {
		w.add("action = ?", f.Action)
		if !db.d.pg {
			// SQLite's planner prefers walking the primary key backwards
			// (no temporary sort) even when few entries match.
			sel = strings.Replace(sel, "FROM audit_log", "FROM audit_log INDEXED BY audit_log_action", 1)
		}
	}
	rows, err := db.readPool().QueryContext(ctx, db.d.rebind(sel+w.sql()+" ORDER BY seq DESC LIMIT ?"),
		append(w.args, pageLimit(f.Limit))...)
	if err != nil {
		return nil, dbErr("list audit", err)
	}
	return collect(rows, scanAudit)
}

var _ margen.DeskStore = (*DB)(nil)
