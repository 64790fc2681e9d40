package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/margenhq/margen"
)

// The inbox's activity: the acts and refusals of a team merged newest
// first, with the acts' reactions and the rows' customers, in one read
// (ListActs, its reactions, ListRefusals and CustomersByID were four).

// activityBranch are the columns both tables give the union, in this
// order; a table's own columns are empty (or false) in the other's rows.
// "(1 = 0)" is false on both engines (0 on SQLite, a boolean on
// PostgreSQL), as the acts' boolean columns are.
const (
	activityActs = "SELECT 'act' AS kind, id, decision_id, member_id, customer_id, action, amount, created_at," +
		" currency, reason, flagged, after_the_fact, team, '' AS reason_kind, '' AS rule, '' AS customer_left, '' AS note FROM acts"
	activityRefusals = "SELECT 'refusal' AS kind, id, decision_id, member_id, customer_id, action, amount, created_at," +
		" '' AS currency, wanted AS reason, (1 = 0) AS flagged, (1 = 0) AS after_the_fact, '' AS team, reason_kind, rule, customer_left, note FROM refusals"
	activityOrder = " ORDER BY created_at DESC, id DESC LIMIT ?"
	// The page's rows, then their customers (primary key) and the acts'
	// reactions (reactions_act), one row per reaction.
	activityHead = "SELECT p.kind, p.id, p.decision_id, p.member_id, p.customer_id, p.action, p.amount, p.created_at," +
		" p.currency, p.reason, p.flagged, p.after_the_fact, p.team, p.reason_kind, p.rule, p.customer_left, p.note," +
		" COALESCE(c.id, ''), COALESCE(c.ref, ''), COALESCE(c.name, ''), COALESCE(c.contact, ''), COALESCE(c.tags, '[]'), c.created_at," +
		" COALESCE(r.id, ''), COALESCE(r.source, ''), COALESCE(r.sentiment, ''), COALESCE(r.note, ''), COALESCE(r.member_id, '')," +
		" r.created_at, r.score FROM ("
	activityTail = ") AS p LEFT JOIN customers c ON c.org_id = ? AND c.id = p.customer_id" +
		" LEFT JOIN reactions r ON r.org_id = ? AND r.act_id = p.id AND p.kind = 'act'" +
		" ORDER BY p.created_at DESC, p.id DESC, r.id"
	// On PostgreSQL the same joins are LATERAL reads by key, one per row
	// of the page: joined plainly, its planner costed a probe of an index
	// as a page read from disk and hashed the whole of both tables for the
	// page's 21 rows (with the demo's 1,900 reactions and 440 customers:
	// 0.5-0.7 ms a call, against 0.2-0.25 ms; pgbench, prepared). OFFSET 0
	// keeps each subquery a subquery, not a join to plan again.
	activityTailPG = ") AS p LEFT JOIN LATERAL (SELECT id, ref, name, contact, tags, created_at FROM customers" +
		" WHERE org_id = ? AND id = p.customer_id OFFSET 0) AS c ON TRUE" +
		" LEFT JOIN LATERAL (SELECT id, source, sentiment, note, member_id, created_at, score FROM reactions" +
		" WHERE org_id = ? AND act_id = p.id AND p.kind = 'act' OFFSET 0) AS r ON TRUE" +
		" ORDER BY p.created_at DESC, p.id DESC, r.id"
)

// Activity lists the organisation's acts and refusals under f, newest
// first (margen.ActivityFilter's order), each table read through its
// created_at index up to the limit before the two are merged.
func (db *DB) Activity(ctx context.Context, orgID string, f margen.ActivityFilter) ([]margen.ActivityItem, error) {
	limit := pageLimit(f.Limit)
	var q strings.Builder
	var args []any
	q.WriteString(activityHead)
	// branch adds a table's rows under the filter, its own page first.
	branch := func(sel, alias string, w *where) {
		w.since(db.d, f.Since, f.Until)
		if f.Before.ID != "" {
			// "created_at <= ?" alone bounds the index range; the rest
			// drops the rows of that microsecond down to the cursor's.
			at := db.d.ts(f.Before.At)
			w.add("created_at <= ? AND (created_at < ? OR id < ?)", at, at, f.Before.ID)
		}
		if len(args) > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString("SELECT * FROM (" + sel + w.sql() + activityOrder + ") AS " + alias)
		args = append(append(args, w.args...), limit)
	}
	if f.Kind != margen.ActivityRefusal {
		var w where
		w.add("org_id = ?", orgID)
		if f.MemberID != "" {
			// As ListActs: through the decisions' member index.
			w.add("id IN (SELECT act_id FROM decisions WHERE org_id = ? AND act_id <> '' AND member_id = ?)", orgID, f.MemberID)
		}
		w.eq("action", f.Action)
		if f.Flagged {
			w.add("flagged")
		}
		branch(activityActs, "a", &w)
	}
	if f.Kind != margen.ActivityAct && !f.Flagged {
		var w where
		w.add("org_id = ?", orgID)
		w.eq("member_id", f.MemberID)
		w.eq("action", f.Action)
		branch(activityRefusals, "f", &w)
	}
	if len(args) == 0 {
		return []margen.ActivityItem{}, nil
	}
	q.WriteString(activityOrder + db.d.pick(activityTail, activityTailPG))
	args = append(args, limit, orgID, orgID)

	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := c.QueryContext(ctx, db.d.rebind(q.String()), args...)
	if err != nil {
		return nil, dbErr("activity", err)
	}
	defer rows.Close()
	out := make([]margen.ActivityItem, 0, limit)
	customers := map[string]*margen.Customer{}
	for rows.Next() {
		var (
			kind, reasonKind, rule, left, note string
			x                                  margen.Act
			cu                                 margen.Customer
			tags                               []byte
			r                                  margen.Reaction
			score                              sql.NullInt64
		)
		if err := rows.Scan(&kind, &x.ID, &x.DecisionID, &x.MemberID, &x.CustomerID, &x.Action, &x.Amount, tsCol{&x.CreatedAt},
			&x.Currency, &x.Reason, &x.Flagged, &x.AfterTheFact, &x.Team, &reasonKind, &rule, &left, &note,
			&cu.ID, &cu.Ref, &cu.Name, &cu.Contact, &tags, tsCol{&cu.CreatedAt},
			&r.ID, &r.Source, &r.Sentiment, &r.Note, &r.MemberID, tsCol{&r.CreatedAt}, &score); err != nil {
			return nil, dbErr("activity: scan", err)
		}
		if n := len(out); n > 0 && r.ID != "" {
			// Another reaction of the act just read.
			if last := out[n-1].Act; last != nil && last.ID == x.ID {
				last.Reactions = append(last.Reactions, reaction(orgID, x.ID, r, score))
				continue
			}
		}
		var item margen.ActivityItem
		if kind == margen.ActivityAct {
			x.OrgID = orgID
			x.Reactions = []margen.Reaction{}
			if r.ID != "" {
				x.Reactions = append(x.Reactions, reaction(orgID, x.ID, r, score))
			}
			item.Act = &x
		} else {
			item.Refusal = &margen.Refusal{ID: x.ID, OrgID: orgID, DecisionID: x.DecisionID, MemberID: x.MemberID,
				CustomerID: x.CustomerID, Action: x.Action, Amount: x.Amount, Wanted: x.Reason, ReasonKind: reasonKind,
				Rule: rule, Left: left, Note: note, CreatedAt: x.CreatedAt}
		}
		if cu.ID != "" {
			if item.Customer = customers[cu.ID]; item.Customer == nil {
				cu.OrgID = orgID
				cu.Tags = []string{}
				if len(tags) > 0 {
					if err := json.Unmarshal(tags, &cu.Tags); err != nil {
						return nil, dbErr("activity: scan", err)
					}
				}
				item.Customer = &cu
				customers[cu.ID] = &cu
			}
		}
		out = append(out, item)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("activity", err)
	}
	return out, nil
}

// reaction completes a reaction read beside its act.
func reaction(orgID, actID string, r margen.Reaction, score sql.NullInt64) margen.Reaction {
	r.OrgID, r.ActID = orgID, actID
	if score.Valid {
		v := int(score.Int64)
		r.Score = &v
	}
	return r
}
