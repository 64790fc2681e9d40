package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// Follow-up cases: opened by AnswerSurvey (openCase, in the answer's
// transaction), closed by a supervisor, escalated by the SLA worker. Every
// change is a conditional UPDATE under the organisation's lock, so a case
// is closed once and escalated once whatever races, also across processes
// sharing one PostgreSQL.

var _ margen.CaseStore = (*DB)(nil)

var caseCols = []string{"org_id", "id", "answer_id", "act_id", "member_id", "team", "scale", "score", "role", "status",
	"due_at", "escalated_at", "action", "outcome", "reaction", "closed_by", "closed_at", "created_at"}

var caseSelect = "SELECT " + strings.Join(caseCols, ", ") + " FROM survey_cases"

func scanCase(s scanner) (margen.FollowUpCase, error) {
	var c margen.FollowUpCase
	err := s.Scan(&c.OrgID, &c.ID, &c.AnswerID, &c.ActID, &c.MemberID, &c.Team, &c.Scale, &c.Score, &c.Role, &c.Status,
		tsCol{&c.DueAt}, tsNullCol{&c.EscalatedAt}, &c.Action, &c.Outcome, &c.Reaction, &c.ClosedBy,
		tsNullCol{&c.ClosedAt}, tsCol{&c.CreatedAt})
	return c, err
}

// openCase writes the case a stored answer opens, if any (margen.CaseFor),
// with its audit entry: called inside AnswerSurvey's transaction.
func (t *wtx) openCase(c *chain, a *margen.SurveyAnswer, rule margen.CaseRule) error {
	fc := margen.CaseFor(a, rule)
	if fc == nil {
		return nil
	}
	d := t.db.d
	_, err := t.exec(insertCase, fc.OrgID, fc.ID, fc.AnswerID, fc.ActID, fc.MemberID, fc.Team, fc.Scale, fc.Score, fc.Role,
		fc.Status, d.ts(fc.DueAt), d.tsPtr(fc.EscalatedAt), fc.Action, fc.Outcome, fc.Reaction, fc.ClosedBy,
		d.tsPtr(fc.ClosedAt), d.ts(fc.CreatedAt))
	if err != nil {
		return conflictOr("open case", err, "cases.exists")
	}
	t.touch("survey_cases", fc.OrgID, "id", fc.ID)
	return t.audit(c, newAudit(fc.OrgID, "system", margen.ActionCaseOpen, fc.ID, caseEventData(fc), fc.CreatedAt))
}

// caseEventData routes a case's events (member, team, act) without a
// lookup; it carries no comment.
func caseEventData(fc *margen.FollowUpCase) margen.FollowUpChanged {
	return margen.FollowUpChanged{CaseID: fc.ID, AnswerID: fc.AnswerID, ActID: fc.ActID, Member: fc.MemberID, Team: fc.Team,
		ApproverRole: fc.Role, Status: fc.Status, Scale: fc.Scale, Score: fc.Score, DueAt: fc.DueAt.UTC().Format(time.RFC3339),
		Outcome: fc.Outcome, Reaction: fc.Reaction}
}

// GetCase returns one case.
func (db *DB) GetCase(ctx context.Context, orgID, id string) (*margen.FollowUpCase, error) {
	return getOne(ctx, db, "case", scanCase, caseSelect+" WHERE org_id = ? AND id = ?", orgID, id)
}

// ListCases pages through cases, newest first.
func (db *DB) ListCases(ctx context.Context, orgID string, f margen.CaseFilter) ([]margen.FollowUpCase, error) {
	var w where
	w.add("org_id = ?", orgID)
	w.eq("status", f.Status)
	w.eq("member_id", f.MemberID)
	w.eq("team", f.Team)
	w.eq("act_id", f.ActID)
	w.eq("answer_id", f.AnswerID)
	w.page(f.Page)
	return getMany(ctx, db, scanCase, caseSelect+w.sql()+" ORDER BY id DESC LIMIT ?", w.argsLimit(f.Page)...)
}

// DueCases lists open, never-escalated cases due at or before now, oldest
// due first (the partial index survey_cases_due).
func (db *DB) DueCases(ctx context.Context, now time.Time, limit int) ([]margen.FollowUpCase, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	return getMany(ctx, db, scanCase, caseSelect+` WHERE status = 'open' AND escalated_at IS NULL AND due_at <= ?
		ORDER BY due_at LIMIT ?`, db.d.ts(now), limit)
}

// changeCase applies one conditional UPDATE to a case under the
// organisation's lock and audits it; conflict is returned when no row
// matched (the case exists but is no longer in the state the change needs).
func (db *DB) changeCase(ctx context.Context, orgID, id string, action margen.AuditAction, actor string, at time.Time, conflict func() error,
	update string, args ...any) (*margen.FollowUpCase, error) {
	var out margen.FollowUpCase
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		res, err := t.exec(update, args...)
		if err != nil {
			return dbErr(string(action), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbErr(string(action), err)
		}
		if n == 0 {
			if err := t.exists("case", "SELECT 1 FROM survey_cases WHERE org_id = ? AND id = ?", orgID, id); err != nil {
				return err
			}
			return conflict()
		}
		out, err = scanCase(t.queryRow(caseSelect+" WHERE org_id = ? AND id = ?", orgID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return margen.NotFound("case")
		}
		if err != nil {
			return dbErr(string(action), err)
		}
		t.touch("survey_cases", orgID, "id", id)
		return t.audit(c, newAudit(orgID, actor, action, id, caseEventData(&out), at))
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CloseCase closes an open case exactly once.
func (db *DB) CloseCase(ctx context.Context, orgID, id string, x margen.CaseClose, actor string, at time.Time) (*margen.FollowUpCase, error) {
	if err := x.Validate(); err != nil {
		return nil, err
	}
	stamp(&at)
	return db.changeCase(ctx, orgID, id, margen.ActionCaseClose, actor, at,
		func() error { return margen.Errorf(margen.ECONFLICT, "cases.closed") },
		`UPDATE survey_cases SET status = 'closed', action = ?, outcome = ?, reaction = ?, closed_by = ?, closed_at = ?
			WHERE org_id = ? AND id = ? AND status = 'open'`,
		x.Action, x.Outcome, x.Reaction, actor, db.d.ts(at), orgID, id)
}

// EscalateCase routes a due case to the owners exactly once.
func (db *DB) EscalateCase(ctx context.Context, orgID, id string, now time.Time) (*margen.FollowUpCase, error) {
	stamp(&now)
	ts := db.d.ts(now)
	return db.changeCase(ctx, orgID, id, margen.ActionCaseEscalate, "system", now,
		func() error { return margen.Errorf(margen.ECONFLICT, "cases.not_due") },
		`UPDATE survey_cases SET role = ?, escalated_at = ?
			WHERE org_id = ? AND id = ? AND status = 'open' AND escalated_at IS NULL AND due_at <= ?`,
		margen.CaseRoleOwner, ts, orgID, id, ts)
}
