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
// transaction, under the organisation's case settings), closed by a
// supervisor, escalated step by step by the SLA worker. Every change is a
// conditional UPDATE under the organisation's lock, and each escalation
// step is a row unique per case and level (case_steps), so a case is
// closed once and each step happens once whatever races, also across
// processes sharing one PostgreSQL.

var _ margen.CaseStore = (*DB)(nil)

var caseCols = []string{"org_id", "id", "answer_id", "act_id", "member_id", "team", "scale", "score", "role", "status",
	"due_at", "escalated_at", "action", "outcome", "reaction", "closed_by", "closed_at", "created_at"}

var caseSelect = "SELECT " + strings.Join(caseCols, ", ") + " FROM survey_cases"

var (
	caseStepCols     = []string{"org_id", "id", "case_id", "level", "from_role", "to_role", "at", "due_at"}
	caseSettingsCols = []string{"org_id", "csat_max", "nps_max", "sla_s", "updated_at"}
)

// stepRow is a case's escalation step as withSteps reads it.
type stepRow struct {
	orgID, caseID, from string
	level               int
}

// withSteps fills each case's Level and Earlier from its escalation steps
// (one query per organisation). A case escalated before steps were
// recorded (migration 00019) went once, from the default route's
// approver to the owners.
func withSteps(cases []margen.FollowUpCase, query func(q string, args ...any) ([]stepRow, error)) error {
	byOrg := map[string][]any{}
	for i := range cases {
		byOrg[cases[i].OrgID] = append(byOrg[cases[i].OrgID], cases[i].ID)
	}
	steps := map[string][]string{}
	for org, ids := range byOrg {
		rows, err := query(`SELECT org_id, case_id, level, from_role FROM case_steps
			WHERE org_id = ? AND case_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY case_id, level`,
			append([]any{org}, ids...)...)
		if err != nil {
			return err
		}
		for _, r := range rows {
			k := r.orgID + "\x00" + r.caseID
			steps[k] = append(steps[k], r.from)
		}
	}
	for i := range cases {
		c := &cases[i]
		c.Earlier = steps[c.OrgID+"\x00"+c.ID]
		if len(c.Earlier) == 0 && c.EscalatedAt != nil {
			c.Earlier = []string{margen.CaseRoleSupervisor}
		}
		c.Level = len(c.Earlier)
	}
	return nil
}

func scanStepRow(s scanner) (stepRow, error) {
	var r stepRow
	return r, s.Scan(&r.orgID, &r.caseID, &r.level, &r.from)
}

// readSteps fills Level and Earlier through the read pool.
func (db *DB) readSteps(ctx context.Context, cases []margen.FollowUpCase) error {
	return withSteps(cases, func(q string, args ...any) ([]stepRow, error) {
		return getMany(ctx, db, scanStepRow, q, args...)
	})
}

// readSteps fills Level and Earlier inside the transaction.
func (t *wtx) readSteps(cases []margen.FollowUpCase) error {
	return withSteps(cases, func(q string, args ...any) ([]stepRow, error) {
		rows, err := t.query(q, args...)
		if err != nil {
			return nil, dbErr("read case steps", err)
		}
		return collect(rows, scanStepRow)
	})
}

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
	set, err := t.caseSettings(a.OrgID)
	if err != nil {
		return err
	}
	fc := margen.CaseFor(a, set.Over(rule))
	if fc == nil {
		return nil
	}
	d := t.db.d
	_, err = t.exec(insertCase, fc.OrgID, fc.ID, fc.AnswerID, fc.ActID, fc.MemberID, fc.Team, fc.Scale, fc.Score, fc.Role,
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
		ApproverRole: fc.Role, Earlier: fc.Earlier, Level: fc.Level, Status: fc.Status, Scale: fc.Scale, Score: fc.Score, DueAt: fc.DueAt.UTC().Format(time.RFC3339),
		Outcome: fc.Outcome, Reaction: fc.Reaction}
}

// GetCase returns one case.
func (db *DB) GetCase(ctx context.Context, orgID, id string) (*margen.FollowUpCase, error) {
	c, err := getOne(ctx, db, "case", scanCase, caseSelect+" WHERE org_id = ? AND id = ?", orgID, id)
	if err != nil {
		return nil, err
	}
	one := []margen.FollowUpCase{*c}
	if err := db.readSteps(ctx, one); err != nil {
		return nil, err
	}
	return &one[0], nil
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
	cs, err := getMany(ctx, db, scanCase, caseSelect+w.sql()+" ORDER BY id DESC LIMIT ?", w.argsLimit(f.Page)...)
	if err != nil {
		return nil, err
	}
	return cs, db.readSteps(ctx, cs)
}

// DueCases lists open cases not yet with the owners and due at or before
// now, oldest due first (the partial index survey_cases_due).
func (db *DB) DueCases(ctx context.Context, now time.Time, limit int) ([]margen.FollowUpCase, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	cs, err := getMany(ctx, db, scanCase, caseSelect+` WHERE status = 'open' AND role <> 'owner' AND due_at <= ?
		ORDER BY due_at LIMIT ?`, db.d.ts(now), limit)
	if err != nil {
		return nil, err
	}
	return cs, db.readSteps(ctx, cs)
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
		out, err = t.readCase(orgID, id)
		if err != nil {
			return err
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

// readCase reads one case, with its steps, inside the transaction.
func (t *wtx) readCase(orgID, id string) (margen.FollowUpCase, error) {
	c, err := scanCase(t.queryRow(caseSelect+" WHERE org_id = ? AND id = ?", orgID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, margen.NotFound("case")
	}
	if err != nil {
		return c, dbErr("read case", err)
	}
	one := []margen.FollowUpCase{c}
	if err := t.readSteps(one); err != nil {
		return c, err
	}
	return one[0], nil
}

// EscalateCase applies one escalation step computed by plan from the case
// read under the organisation's lock. The UPDATE repeats the condition the
// plan saw (open, same role, same due time) and the step is unique per
// case and level, so a step another sweeper applied first is ECONFLICT.
func (db *DB) EscalateCase(ctx context.Context, orgID, id string, plan func(*margen.FollowUpCase) (*margen.CaseEscalation, error)) (*margen.FollowUpCase, error) {
	var out margen.FollowUpCase
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		cur, err := t.readCase(orgID, id)
		if err != nil {
			return err
		}
		w, err := plan(&cur)
		if err != nil {
			return err
		}
		d, nc, st := db.d, &w.Case, &w.Step
		res, err := t.exec(`UPDATE survey_cases SET role = ?, escalated_at = ?, due_at = ?
			WHERE org_id = ? AND id = ? AND status = 'open' AND role = ? AND due_at = ?`,
			nc.Role, d.tsPtr(nc.EscalatedAt), d.ts(nc.DueAt), orgID, id, cur.Role, d.ts(cur.DueAt))
		if err != nil {
			return dbErr("escalate case", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("escalate case", err)
		} else if n == 0 {
			return margen.Errorf(margen.ECONFLICT, "cases.not_due")
		}
		err = t.insertMany("case_steps", caseStepCols, "", 1, func(_ int, v []any) []any {
			return append(v, orgID, st.ID, id, st.Level, st.FromRole, st.ToRole, d.ts(st.At), d.ts(st.DueAt))
		})
		if err != nil {
			return conflictOr("escalate case", err, "cases.not_due")
		}
		t.touch("survey_cases", orgID, "id", id)
		t.touch("case_steps", orgID, "id", st.ID)
		out = *nc
		return t.audit(c, newAudit(orgID, "system", margen.ActionCaseEscalate, id, w.Event, st.At))
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// caseSettings reads the organisation's own settings (none: zero).
func (t *wtx) caseSettings(orgID string) (margen.CaseSettings, error) {
	x, err := scanCaseSettings(t.queryRow("SELECT "+strings.Join(caseSettingsCols, ", ")+" FROM case_settings WHERE org_id = ?", orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return margen.CaseSettings{}, nil
	}
	if err != nil {
		return x, dbErr("read case settings", err)
	}
	return x, nil
}

func scanCaseSettings(s scanner) (margen.CaseSettings, error) {
	var (
		x        margen.CaseSettings
		org      string
		csat     sql.NullInt64
		nps      sql.NullInt64
		slaS     sql.NullInt64
		nullable = func(n sql.NullInt64) *int {
			if !n.Valid {
				return nil
			}
			v := int(n.Int64)
			return &v
		}
	)
	if err := s.Scan(&org, &csat, &nps, &slaS, tsCol{&x.UpdatedAt}); err != nil {
		return x, err
	}
	x.CSATMax, x.NPSMax = nullable(csat), nullable(nps)
	if slaS.Valid {
		x.SLA = time.Duration(slaS.Int64) * time.Second
	}
	return x, nil
}

// CaseSettings returns the organisation's own case settings.
func (db *DB) CaseSettings(ctx context.Context, orgID string) (margen.CaseSettings, error) {
	x, err := getOne(ctx, db, "case settings", scanCaseSettings,
		"SELECT "+strings.Join(caseSettingsCols, ", ")+" FROM case_settings WHERE org_id = ?", orgID)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return margen.CaseSettings{}, nil
	}
	if err != nil {
		return margen.CaseSettings{}, err
	}
	return *x, nil
}

// SetCaseSettings stores the organisation's case settings (validated),
// audited as case.settings with the values set.
func (db *DB) SetCaseSettings(ctx context.Context, orgID string, x margen.CaseSettings, actor string) error {
	if err := x.Validate(); err != nil {
		return err
	}
	at := now()
	opt := func(v *int) any {
		if v == nil {
			return nil
		}
		return int64(*v)
	}
	var sla any
	if x.SLA > 0 {
		sla = int64(x.SLA / time.Second)
	}
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO case_settings (org_id, csat_max, nps_max, sla_s, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET csat_max = excluded.csat_max, nps_max = excluded.nps_max,
				sla_s = excluded.sla_s, updated_at = excluded.updated_at`,
			orgID, opt(x.CSATMax), opt(x.NPSMax), sla, db.d.ts(at)); err != nil {
			return dbErr("set case settings", err)
		}
		t.touch("case_settings", orgID, "org_id", orgID)
		return t.audit(c, newAudit(orgID, actor, margen.ActionCaseSettings, orgID, map[string]any{
			"csat_max": x.CSATMax, "nps_max": x.NPSMax, "sla_seconds": sla}, at))
	})
}
