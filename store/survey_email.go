package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// Survey links sent by email: the send's row and its job are written with
// the link; the job's handler records each attempt on the row together
// with the job's result (FinishSurveyEmail), as webhook deliveries do.

var _ margen.SurveyEmailStore = (*DB)(nil)

var surveyEmailCols = []string{"org_id", "id", "link_id", "address", "language", "token", "status", "attempts",
	"last_error", "created_by", "created_at", "updated_at", "sent_at"}

var surveyEmailSelect = "SELECT " + strings.Join(surveyEmailCols, ", ") + " FROM survey_emails"

func scanSurveyEmail(s scanner) (margen.SurveyEmail, error) {
	var e margen.SurveyEmail
	err := s.Scan(&e.OrgID, &e.ID, &e.LinkID, &e.Address, &e.Language, &e.Token, &e.Status, &e.Attempts,
		&e.LastError, &e.CreatedBy, tsCol{&e.CreatedAt}, tsCol{&e.UpdatedAt}, tsNullCol{&e.SentAt})
	return e, err
}

// CreateSurveyLinkEmail stores a link, its email send and the send's job
// in one transaction: the job exists if and only if the link does.
func (db *DB) CreateSurveyLinkEmail(ctx context.Context, l *margen.SurveyLink, e *margen.SurveyEmail, actor string, idem *margen.Idempotency) error {
	if e == nil || e.Token == "" {
		return margen.Errorf(margen.EINTERNAL, "error.internal")
	}
	addr, err := margen.ParseEmail(e.Address)
	if err != nil {
		return err
	}
	x := *e
	x.Address = addr
	if x.ID == "" {
		x.ID = margen.NewID("sve")
	}
	if err := db.createSurveyLink(ctx, l, &x, actor, idem); err != nil {
		return err
	}
	*e = x
	return nil
}

// insertSurveyEmail writes the send of link l and its job.
func (t *wtx) insertSurveyEmail(l *margen.SurveyLink, e *margen.SurveyEmail) error {
	e.OrgID, e.LinkID, e.Status, e.Attempts, e.LastError, e.SentAt = l.OrgID, l.ID, margen.EmailQueued, 0, "", nil
	e.Language = margen.EmailLanguage(e.Language, "")
	if e.CreatedBy == "" {
		e.CreatedBy = l.CreatedBy
	}
	e.CreatedAt, e.UpdatedAt = l.CreatedAt, l.CreatedAt
	d := t.db.d
	// Counted under the organisation's lock (createSurveyLink holds it),
	// so concurrent requests cannot pass the cap together.
	var n int
	if err := t.queryRow("SELECT count(*) FROM survey_emails WHERE org_id = ? AND created_at >= ? AND created_by = ?",
		e.OrgID, d.ts(e.CreatedAt.Add(-time.Hour)), e.CreatedBy).Scan(&n); err != nil {
		return dbErr("count survey emails", err)
	}
	if err := margen.AdmitSurveyEmail(n); err != nil {
		return err
	}
	_, err := t.exec(insertSurveyEmail, e.OrgID, e.ID, e.LinkID, e.Address, e.Language, e.Token, e.Status, e.Attempts,
		e.LastError, e.CreatedBy, d.ts(e.CreatedAt), d.ts(e.UpdatedAt), d.tsPtr(e.SentAt))
	if err != nil {
		return dbErr("create survey email", err)
	}
	payload, _ := json.Marshal(map[string]string{"email": e.ID})
	_, err = t.enqueueJobs([]margen.Job{{Kind: margen.JobSurveyEmail, OrgID: e.OrgID, Payload: payload,
		UniqueKey: e.OrgID + "/" + e.ID}}, e.CreatedAt)
	return err
}

// SurveyEmailForSend returns a send with its token.
func (db *DB) SurveyEmailForSend(ctx context.Context, orgID, id string) (*margen.SurveyEmail, error) {
	return getOne(ctx, db, "survey email", scanSurveyEmail, surveyEmailSelect+" WHERE org_id = ? AND id = ?", orgID, id)
}

// FinishSurveyEmail records an attempt on the send and the job's result,
// in one transaction. A sent mail is recorded even by a claim that lost
// its lease (the customer has it); a failure only while the claim holds
// the job. e is updated in place when the send changed.
func (db *DB) FinishSurveyEmail(ctx context.Context, e *margen.SurveyEmail, sent bool, j *margen.Job, r margen.JobResult) error {
	stamp(&r.At)
	var out margen.SurveyEmail
	changed := false
	err := db.writeTx(ctx, func(t *wtx) error {
		cur, err := scanSurveyEmail(t.queryRow(surveyEmailSelect+" WHERE org_id = ? AND id = ?", e.OrgID, e.ID))
		if err != nil {
			return dbErr("finish survey email", err)
		}
		held, err := t.finishJob(j, r)
		if err != nil {
			return err
		}
		if cur.Status == margen.EmailSent || cur.Status == margen.EmailFailed || (!sent && !held) {
			return nil
		}
		out = margen.EmailAfter(cur, sent, r)
		_, err = t.exec(`UPDATE survey_emails SET status = ?, attempts = ?, last_error = ?, token = ?, updated_at = ?,
			sent_at = ? WHERE org_id = ? AND id = ?`, out.Status, out.Attempts, out.LastError, out.Token,
			db.d.ts(out.UpdatedAt), db.d.tsPtr(out.SentAt), out.OrgID, out.ID)
		changed = err == nil
		return dbErr("finish survey email", err)
	})
	if err != nil {
		return err
	}
	if changed {
		*e = out
	}
	return nil
}

// ListSurveyEmails lists the latest sends, newest first, without tokens.
func (db *DB) ListSurveyEmails(ctx context.Context, orgID string, limit int) ([]margen.SurveyEmail, error) {
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	out, err := getMany(ctx, db, scanSurveyEmail, surveyEmailSelect+" WHERE org_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
		orgID, limit)
	for i := range out {
		out[i].Token = ""
	}
	return out, err
}
