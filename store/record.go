package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// --- idempotency ---

var idemCols = []string{"org_id", "member_id", "key", "request_hash", "response", "created_at", "expires_at"}

const idemSelect = "SELECT org_id, member_id, key, request_hash, response, created_at, expires_at FROM idempotency"

func scanIdem(s scanner) (margen.Idempotency, error) {
	var i margen.Idempotency
	err := s.Scan(&i.OrgID, &i.MemberID, &i.Key, &i.RequestHash, &i.Response, tsCol{&i.CreatedAt}, tsCol{&i.ExpiresAt})
	return i, err
}

// insertIdems records idempotency keys. A key already recorded fails the
// whole transaction with ECONFLICT "error.idempotency_exists", unless its
// record had expired when the new one was created: the new one replaces it
// (a purge may not have run yet).
func (t *wtx) insertIdems(recs []margen.Idempotency) error {
	if len(recs) == 0 {
		return nil
	}
	seen := make(map[margen.IdemKey]bool, len(recs))
	for i := range recs {
		r := &recs[i]
		stamp(&r.CreatedAt)
		if r.ExpiresAt.IsZero() {
			r.ExpiresAt = r.CreatedAt.Add(margen.DefaultIdempotencyTTL)
		}
		stamp(&r.ExpiresAt)
		k := margen.IdemKey{OrgID: r.OrgID, MemberID: r.MemberID, Key: r.Key}
		if seen[k] {
			return margen.Errorf(margen.ECONFLICT, "error.idempotency_exists")
		}
		seen[k] = true
	}
	d := t.db.d
	n, err := t.insertCount("idempotency", idemCols, ` ON CONFLICT (org_id, member_id, key) DO UPDATE SET
		request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at,
		expires_at = excluded.expires_at WHERE idempotency.expires_at <= excluded.created_at`, len(recs),
		func(i int, a []any) []any {
			r := &recs[i]
			return append(a, r.OrgID, r.MemberID, r.Key, r.RequestHash, response(r), d.ts(r.CreatedAt), d.ts(r.ExpiresAt))
		})
	if err != nil {
		return dbErr("insert idempotency", err)
	}
	if n != int64(len(recs)) {
		return margen.Errorf(margen.ECONFLICT, "error.idempotency_exists")
	}
	return nil
}

// response is a record's response as stored: never NULL.
func response(r *margen.Idempotency) []byte {
	if r.Response == nil {
		return []byte{}
	}
	return r.Response
}

func (t *wtx) insertIdem(idem *margen.Idempotency) error {
	if idem == nil {
		return nil
	}
	recs := []margen.Idempotency{*idem}
	if err := t.insertIdems(recs); err != nil {
		return err
	}
	*idem = recs[0]
	return nil
}

// Idempotency returns the stored answer for a key (perhaps expired: the
// caller checks Live). A stored answer is replayed to a client, so it is
// returned only once it is durable (walSync): the write that stored it may
// have committed a moment ago, its own caller not answered yet.
func (db *DB) Idempotency(ctx context.Context, orgID, memberID, key string) (*margen.Idempotency, error) {
	rec, err := getOne(ctx, db, "idempotency", scanIdem, idemSelect+" WHERE org_id = ? AND member_id = ? AND key = ?",
		orgID, memberID, key)
	if err != nil {
		return nil, err
	}
	if err := db.durable(); err != nil {
		return nil, err
	}
	return rec, nil
}

// PurgeIdempotency deletes up to limit records expired at now, of every
// organisation.
func (db *DB) PurgeIdempotency(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	var n int64
	err := db.writeTx(ctx, func(t *wtx) error {
		res, err := t.exec(`DELETE FROM idempotency WHERE (org_id, member_id, key) IN (
			SELECT org_id, member_id, key FROM idempotency WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`,
			db.d.ts(now), limit)
		if err != nil {
			return dbErr("purge idempotency", err)
		}
		n, err = res.RowsAffected()
		return dbErr("purge idempotency", err)
	})
	return int(n), err
}

// --- reactions ---

var reactionSelect = "SELECT " + strings.Join(reactionCols, ", ") + " FROM reactions"

func scanReaction(s scanner) (margen.Reaction, error) {
	var r margen.Reaction
	var score sql.NullInt64
	err := s.Scan(&r.OrgID, &r.ID, &r.ActID, &r.Source, &r.Sentiment, &r.Note, &r.MemberID, tsCol{&r.CreatedAt}, &score)
	if score.Valid {
		v := int(score.Int64)
		r.Score = &v
	}
	return r, err
}

// RecordReaction adds a reaction to an act of the organisation.
func (db *DB) RecordReaction(ctx context.Context, reaction *margen.Reaction, idem *margen.Idempotency) error {
	r := *reaction
	if r.ID == "" {
		r.ID = margen.NewID("rea")
	}
	stamp(&r.CreatedAt)
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(r.OrgID)
		if err != nil {
			return err
		}
		if err := t.exists("act", "SELECT 1 FROM acts WHERE org_id = ? AND id = ?", r.OrgID, r.ActID); err != nil {
			return err
		}
		if err := t.insertIdem(idem); err != nil {
			return err
		}
		if _, err := t.exec(insertReaction, reactionArgs(db.d, &r, nil)...); err != nil {
			return conflictOr("record reaction", err, "error.reaction_exists")
		}
		t.touch("reactions", r.OrgID, "id", r.ID)
		return t.audit(c, newAudit(r.OrgID, actorOr(r.MemberID, r.Source), margen.ActionReactionRecord, r.ID, margen.ReactionAudit{
			ActID: r.ActID, Source: r.Source, Sentiment: r.Sentiment,
		}, r.CreatedAt))
	})
	if err != nil {
		return err
	}
	*reaction = r
	return nil
}

// --- refusals ---

// RecordRefusal stores a refusal given outside the decision flow.
func (db *DB) RecordRefusal(ctx context.Context, refusal *margen.Refusal, cus *margen.Customer, idem *margen.Idempotency) error {
	r := *refusal
	if r.ID == "" {
		r.ID = margen.NewID("ref")
	}
	stamp(&r.CreatedAt)
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(r.OrgID)
		if err != nil {
			return err
		}
		if err := t.insertIdem(idem); err != nil {
			return err
		}
		if err := t.firstSight(cus, r.CreatedAt); err != nil {
			return err
		}
		if _, err := t.exec(insertRefusal, refusalArgs(db.d, &r, nil)...); err != nil {
			return conflictOr("record refusal", err, "error.refusal_exists")
		}
		t.touch("refusals", r.OrgID, "id", r.ID)
		return t.audit(c, newAudit(r.OrgID, r.MemberID, margen.ActionRefusalRecord, r.ID, margen.RefusalAudit{
			Reason: r.ReasonKind, Rule: r.Rule, CustomerLeft: r.Left, Action: r.Action, Amount: r.Amount,
		}, r.CreatedAt))
	})
	if err != nil {
		return err
	}
	*refusal = r
	return nil
}
