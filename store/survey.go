package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// The customer's voice: survey settings, links, standing QR codes (points)
// and answers. Settings, links, points and answers are sealed rows; the
// refused counts are counters (like budget balances), not facts.

var _ margen.SurveyStore = (*DB)(nil)

var (
	surveySettingsCols = []string{"org_id", "scale", "updated_at"}
	surveyPointCols    = []string{"org_id", "id", "name", "kind", "team", "token", "token_hash", "ask_server", "active",
		"created_by", "created_at"}
	surveyLinkCols = []string{"org_id", "id", "token_hash", "act_id", "member_id", "customer_id", "team", "created_by",
		"created_at", "expires_at", "answered_at"}
	surveyAnswerCols = []string{"org_id", "id", "link_id", "point_id", "act_id", "member_id", "customer_id", "team",
		"scale", "score", "comment", "language", "low", "device", "created_at"}
)

var (
	surveyPointSelect  = "SELECT " + strings.Join(surveyPointCols, ", ") + " FROM survey_points"
	surveyLinkSelect   = "SELECT " + strings.Join(surveyLinkCols, ", ") + " FROM survey_links"
	surveyAnswerSelect = "SELECT " + strings.Join(surveyAnswerCols, ", ") + " FROM survey_answers"
)

func scanSurveyPoint(s scanner) (margen.SurveyPoint, error) {
	var p margen.SurveyPoint
	err := s.Scan(&p.OrgID, &p.ID, &p.Name, &p.Kind, &p.Team, &p.Token, &p.TokenHash, &p.AskServer, &p.Active,
		&p.CreatedBy, tsCol{&p.CreatedAt})
	return p, err
}

func scanSurveyLink(s scanner) (margen.SurveyLink, error) {
	var l margen.SurveyLink
	err := s.Scan(&l.OrgID, &l.ID, &l.TokenHash, &l.ActID, &l.MemberID, &l.CustomerID, &l.Team, &l.CreatedBy,
		tsCol{&l.CreatedAt}, tsCol{&l.ExpiresAt}, tsNullCol{&l.AnsweredAt})
	return l, err
}

func scanSurveyAnswer(s scanner) (margen.SurveyAnswer, error) {
	var a margen.SurveyAnswer
	err := s.Scan(&a.OrgID, &a.ID, &a.LinkID, &a.PointID, &a.ActID, &a.MemberID, &a.CustomerID, &a.Team,
		&a.Scale, &a.Score, &a.Comment, &a.Language, &a.Low, &a.Device, tsCol{&a.CreatedAt})
	return a, err
}

// SurveySettings returns the organisation's survey settings: CSAT until a
// manager chooses otherwise.
func (db *DB) SurveySettings(ctx context.Context, orgID string) (margen.SurveySettings, error) {
	s, err := getOne(ctx, db, "survey settings", func(sc scanner) (margen.SurveySettings, error) {
		var s margen.SurveySettings
		return s, sc.Scan(&s.OrgID, &s.Scale, tsCol{&s.UpdatedAt})
	}, "SELECT "+strings.Join(surveySettingsCols, ", ")+" FROM survey_settings WHERE org_id = ?", orgID)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return margen.SurveySettings{OrgID: orgID, Scale: margen.ScaleCSAT}, nil
	}
	if err != nil {
		return margen.SurveySettings{}, err
	}
	return *s, nil
}

// SetSurveyScale chooses the organisation's survey scale.
func (db *DB) SetSurveyScale(ctx context.Context, orgID, scale, actor string) error {
	if !margen.ValidScale(scale) {
		return margen.Errorf(margen.EINVALID, "survey.error.scale")
	}
	at := now()
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO survey_settings (org_id, scale, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET scale = excluded.scale, updated_at = excluded.updated_at`,
			orgID, scale, db.d.ts(at)); err != nil {
			return dbErr("set survey scale", err)
		}
		t.touch("survey_settings", orgID, "org_id", orgID)
		return t.audit(c, newAudit(orgID, actor, margen.ActionSurveySettings, orgID, map[string]any{"scale": scale}, at))
	})
}

// CreateSurveyLink stores a survey link; an act it names must exist. The
// idempotency record, when given, is written in the same transaction.
func (db *DB) CreateSurveyLink(ctx context.Context, link *margen.SurveyLink, actor string, idem *margen.Idempotency) error {
	return db.createSurveyLink(ctx, link, nil, actor, idem)
}

// createSurveyLink stores a link and, when e is not nil, its email send and
// the send's job, in one transaction.
func (db *DB) createSurveyLink(ctx context.Context, link *margen.SurveyLink, e *margen.SurveyEmail, actor string, idem *margen.Idempotency) error {
	l := *link
	if l.ID == "" {
		l.ID = margen.NewID("svl")
	}
	stamp(&l.CreatedAt)
	if l.ExpiresAt.IsZero() {
		l.ExpiresAt = l.CreatedAt.Add(margen.DefaultSurveyExpiry)
	}
	stamp(&l.ExpiresAt)
	if len(l.TokenHash) == 0 || l.MemberID == "" {
		return margen.Errorf(margen.EINTERNAL, "error.internal")
	}
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(l.OrgID)
		if err != nil {
			return err
		}
		if l.ActID != "" {
			if err := t.exists("act", "SELECT 1 FROM acts WHERE org_id = ? AND id = ?", l.OrgID, l.ActID); err != nil {
				return err
			}
		}
		if err := t.insertIdem(idem); err != nil {
			return err
		}
		_, err = t.exec(insertSurveyLink, l.OrgID, l.ID, l.TokenHash, l.ActID, l.MemberID, l.CustomerID, l.Team, l.CreatedBy,
			db.d.ts(l.CreatedAt), db.d.ts(l.ExpiresAt), db.d.tsPtr(l.AnsweredAt))
		if err != nil {
			return conflictOr("create survey link", err, "survey.error.link_exists")
		}
		t.touch("survey_links", l.OrgID, "id", l.ID)
		details := map[string]any{"act_id": l.ActID, "member": l.MemberID, "team": l.Team, "expires_at": l.ExpiresAt}
		if e != nil {
			// The send, never its address: the trail holds no contact.
			if err := t.insertSurveyEmail(&l, e); err != nil {
				return err
			}
			details["email"] = e.ID
		}
		return t.audit(c, newAudit(l.OrgID, actor, margen.ActionSurveyLink, l.ID, details, l.CreatedAt))
	})
	if err != nil {
		return err
	}
	*link = l
	return nil
}

// SurveyLinkByHash finds a link by its token's hash in any organisation.
func (db *DB) SurveyLinkByHash(ctx context.Context, hash []byte) (*margen.SurveyLink, error) {
	return getOne(ctx, db, "survey", scanSurveyLink, surveyLinkSelect+" WHERE token_hash = ?", hash)
}

// CreateSurveyPoint stores a standing QR code; a team it names must exist.
func (db *DB) CreateSurveyPoint(ctx context.Context, point *margen.SurveyPoint, actor string) error {
	p := *point
	if err := margen.ValidatePoint(&p); err != nil {
		return err
	}
	if p.ID == "" {
		p.ID = margen.NewID("svp")
	}
	stamp(&p.CreatedAt)
	p.Active = true
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(p.OrgID)
		if err != nil {
			return err
		}
		if p.Team != "" {
			if err := t.exists("team", "SELECT 1 FROM teams WHERE org_id = ? AND slug = ?", p.OrgID, p.Team); err != nil {
				return err
			}
		}
		_, err = t.exec(insertSurveyPoint, p.OrgID, p.ID, p.Name, p.Kind, p.Team, p.Token, p.TokenHash, p.AskServer, p.Active,
			p.CreatedBy, db.d.ts(p.CreatedAt))
		if err != nil {
			return conflictOr("create survey point", err, "survey.error.point_exists")
		}
		t.touch("survey_points", p.OrgID, "id", p.ID)
		return t.audit(c, newAudit(p.OrgID, actor, margen.ActionSurveyPoint, p.ID, map[string]any{
			"name": p.Name, "kind": p.Kind, "team": p.Team, "ask_server": p.AskServer,
		}, p.CreatedAt))
	})
	if err != nil {
		return err
	}
	*point = p
	return nil
}

// ListSurveyPoints lists the organisation's standing QR codes, oldest first
// (the order of the printed sheet).
func (db *DB) ListSurveyPoints(ctx context.Context, orgID string) ([]margen.SurveyPoint, error) {
	return getMany(ctx, db, scanSurveyPoint, surveyPointSelect+" WHERE org_id = ? ORDER BY created_at, id LIMIT ?",
		orgID, maxLimit)
}

// DeactivateSurveyPoint takes a standing QR code out of service.
func (db *DB) DeactivateSurveyPoint(ctx context.Context, orgID, id, actor string) error {
	at := now()
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if err := t.exists("survey point", "SELECT 1 FROM survey_points WHERE org_id = ? AND id = ?", orgID, id); err != nil {
			return err
		}
		res, err := t.exec("UPDATE survey_points SET active = ? WHERE org_id = ? AND id = ? AND active = ?", false, orgID, id, true)
		if err != nil {
			return dbErr("deactivate survey point", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("deactivate survey point", err)
		} else if n == 0 {
			return nil // already inactive
		}
		t.touch("survey_points", orgID, "id", id)
		return t.audit(c, newAudit(orgID, actor, margen.ActionSurveyPointDeactivate, id, nil, at))
	})
}

// SurveyPointByHash finds an active standing QR code by its token's hash.
func (db *DB) SurveyPointByHash(ctx context.Context, hash []byte) (*margen.SurveyPoint, error) {
	return getOne(ctx, db, "survey", scanSurveyPoint, surveyPointSelect+" WHERE token_hash = ? AND active = ?", hash, true)
}

// AnswerSurvey stores a customer's answer to a link or a standing QR code,
// in one transaction under the organisation's lock: a link is marked
// answered only if it was not (and has not expired), so concurrent answers
// on one token store exactly one; a point's answer is first admitted by
// margen.AdmitPointAnswer against the counts read under the lock.
func (db *DB) AnswerSurvey(ctx context.Context, answer *margen.SurveyAnswer, lim margen.SurveyLimits) (string, error) {
	a := *answer
	if a.ID == "" {
		a.ID = margen.NewID("sva")
	}
	stamp(&a.CreatedAt)
	if (a.LinkID == "") == (a.PointID == "") {
		return "", margen.Errorf(margen.EINTERNAL, "error.internal")
	}
	lim = lim.Normal()
	refused := ""
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(a.OrgID)
		if err != nil {
			return err
		}
		if a.LinkID != "" {
			res, err := t.exec(`UPDATE survey_links SET answered_at = ?
				WHERE org_id = ? AND id = ? AND answered_at IS NULL AND expires_at > ?`,
				db.d.ts(a.CreatedAt), a.OrgID, a.LinkID, db.d.ts(a.CreatedAt))
			if err != nil {
				return dbErr("answer survey", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return dbErr("answer survey", err)
			} else if n == 0 {
				var answered *time.Time
				err := t.queryRow("SELECT answered_at FROM survey_links WHERE org_id = ? AND id = ?", a.OrgID, a.LinkID).
					Scan(tsNullCol{&answered})
				switch {
				case errors.Is(err, sql.ErrNoRows):
					return margen.NotFound("survey")
				case err != nil:
					return dbErr("answer survey", err)
				case answered != nil:
					return margen.Errorf(margen.ECONFLICT, "survey.answered")
				}
				return margen.NotFound("survey") // expired: as if it never existed
			}
			t.touch("survey_links", a.OrgID, "id", a.LinkID)
		} else {
			var cnt margen.SurveyCounts
			err := t.queryRow(`SELECT COUNT(*) FROM survey_answers WHERE org_id = ? AND point_id = ? AND created_at > ?`,
				a.OrgID, a.PointID, db.d.ts(a.CreatedAt.Add(-time.Hour))).Scan(&cnt.PointHour)
			if err != nil {
				return dbErr("answer survey", err)
			}
			if a.Device != "" {
				err := t.queryRow(`SELECT COUNT(*) FROM survey_answers
					WHERE org_id = ? AND point_id = ? AND device = ? AND created_at > ?`,
					a.OrgID, a.PointID, a.Device, db.d.ts(a.CreatedAt.Add(-lim.DeviceEvery))).Scan(&cnt.DeviceRecent)
				if err != nil {
					return dbErr("answer survey", err)
				}
			}
			if refused = margen.AdmitPointAnswer(cnt, lim); refused != "" {
				return t.countRefused(a.OrgID, a.PointID, refused, a.CreatedAt)
			}
		}
		_, err = t.exec(insertSurveyAnswer, a.OrgID, a.ID, a.LinkID, a.PointID, a.ActID, a.MemberID, a.CustomerID, a.Team,
			a.Scale, a.Score, a.Comment, a.Language, a.Low, a.Device, db.d.ts(a.CreatedAt))
		if err != nil {
			return conflictOr("answer survey", err, "survey.answered")
		}
		t.touch("survey_answers", a.OrgID, "id", a.ID)
		// The entry routes the events (member, team) and carries no
		// comment: the comment is the customer's, kept in its row only.
		err = t.audit(c, newAudit(a.OrgID, "customer", margen.ActionSurveyAnswer, a.ID, map[string]any{
			"member": a.MemberID, "team": a.Team, "act_id": a.ActID, "link_id": a.LinkID, "point_id": a.PointID,
			"scale": a.Scale, "score": a.Score, "low": a.Low,
		}, a.CreatedAt))
		if err != nil {
			return err
		}
		// A low answer opens its follow-up case in this transaction.
		return t.openCase(c, &a, lim.Cases)
	})
	if err != nil {
		return "", err
	}
	if refused == "" {
		*answer = a
	}
	return refused, nil
}

// countRefused adds one to the refused count of the point, reason and hour.
func (t *wtx) countRefused(orgID, pointID, reason string, at time.Time) error {
	_, err := t.exec(`INSERT INTO survey_refused (org_id, point_id, reason, hour, n) VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (org_id, point_id, reason, hour) DO UPDATE SET n = survey_refused.n + 1`,
		orgID, pointID, reason, t.db.d.ts(at.UTC().Truncate(time.Hour)))
	return dbErr("count refused survey answer", err)
}

// CountSurveyRefused counts an answer a limit refused before it reached
// AnswerSurvey (the per-token rate limit).
func (db *DB) CountSurveyRefused(ctx context.Context, orgID, pointID, reason string, at time.Time) error {
	return db.writeTx(ctx, func(t *wtx) error { return t.countRefused(orgID, pointID, reason, at) })
}

// SurveyRefused lists the refused counts since a time, newest first.
func (db *DB) SurveyRefused(ctx context.Context, orgID string, since time.Time) ([]margen.SurveyRefusedCount, error) {
	return getMany(ctx, db, func(s scanner) (margen.SurveyRefusedCount, error) {
		var r margen.SurveyRefusedCount
		return r, s.Scan(&r.PointID, &r.Reason, tsCol{&r.Hour}, &r.N)
	}, `SELECT point_id, reason, hour, n FROM survey_refused WHERE org_id = ? AND hour >= ?
		ORDER BY hour DESC, point_id, reason LIMIT ?`, orgID, db.d.ts(since), maxLimit)
}

// ListSurveyAnswers pages through answers, newest first.
func (db *DB) ListSurveyAnswers(ctx context.Context, orgID string, f margen.SurveyAnswerFilter) ([]margen.SurveyAnswer, error) {
	var w where
	w.add("org_id = ?", orgID)
	w.eq("act_id", f.ActID)
	w.eq("member_id", f.MemberID)
	w.eq("team", f.Team)
	w.eq("point_id", f.PointID)
	if f.Low != nil {
		w.add("low = ?", *f.Low)
	}
	w.since(db.d, f.Since, f.Until)
	w.page(f.Page)
	return getMany(ctx, db, scanSurveyAnswer, surveyAnswerSelect+w.sql()+" ORDER BY id DESC LIMIT ?", w.argsLimit(f.Page)...)
}
