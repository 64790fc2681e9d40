package store

import (
	"context"

	"github.com/margenhq/margen"
)

// --- idempotency ---

var idemCols = []string{"org_id", "member_id", "key", "request_hash", "status", "body", "created_at"}

const idemSelect = "SELECT org_id, member_id, key, request_hash, status, body, created_at FROM idempotency"

func scanIdem(s scanner) (margen.Idempotency, error) {
	var i margen.Idempotency
	err := s.Scan(&i.OrgID, &i.MemberID, &i.Key, &i.RequestHash, &i.Status, &i.Body, tsCol{&i.CreatedAt})
	return i, err
}

// insertIdems records idempotency keys; a key already recorded fails the
// whole transaction with ECONFLICT "error.idempotency_exists".
func (t *wtx) insertIdems(recs []margen.Idempotency) error {
	for i := range recs {
		stamp(&recs[i].CreatedAt)
	}
	d := t.db.d
	err := t.insertMany("idempotency", idemCols, "", len(recs), func(i int, a []any) []any {
		r := &recs[i]
		return append(a, r.OrgID, r.MemberID, r.Key, r.RequestHash, r.Status, r.Body, d.ts(r.CreatedAt))
	})
	return conflictOr("insert idempotency", err, "error.idempotency_exists")
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

// Idempotency returns the stored answer for a key.
func (db *DB) Idempotency(ctx context.Context, orgID, memberID, key string) (*margen.Idempotency, error) {
	return getOne(ctx, db, "idempotency", scanIdem, idemSelect+" WHERE org_id = ? AND member_id = ? AND key = ?",
		orgID, memberID, key)
}

// --- reactions ---

const reactionSelect = "SELECT org_id, id, act_id, source, sentiment, note, member_id, created_at FROM reactions"

func scanReaction(s scanner) (margen.Reaction, error) {
	var r margen.Reaction
	err := s.Scan(&r.OrgID, &r.ID, &r.ActID, &r.Source, &r.Sentiment, &r.Note, &r.MemberID, tsCol{&r.CreatedAt})
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
		_, err = t.exec(`INSERT INTO reactions (org_id, id, act_id, source, sentiment, note, member_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.OrgID, r.ID, r.ActID, r.Source, r.Sentiment, r.Note, r.MemberID, db.d.ts(r.CreatedAt))
		if err != nil {
			return conflictOr("record reaction", err, "error.reaction_exists")
		}
		t.touch("reactions", r.OrgID, "id", r.ID)
		return t.audit(c, newAudit(r.OrgID, actorOr(r.MemberID, r.Source), "reaction.record", r.ID, map[string]any{
			"act_id": r.ActID, "source": r.Source, "sentiment": r.Sentiment,
		}, r.CreatedAt))
	})
	if err != nil {
		return err
	}
	*reaction = r
	return nil
}

// --- refusals ---

var refusalCols = []string{"org_id", "id", "decision_id", "member_id", "customer_id", "action", "amount", "wanted",
	"reason_kind", "rule", "customer_left", "note", "created_at"}

func refusalArgs(d dialect, r *margen.Refusal, a []any) []any {
	return append(a, r.OrgID, r.ID, r.DecisionID, r.MemberID, r.CustomerID, r.Action, r.Amount, r.Wanted,
		r.ReasonKind, r.Rule, r.Left, r.Note, d.ts(r.CreatedAt))
}

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
		err = t.insertMany("refusals", refusalCols, "", 1, func(_ int, a []any) []any { return refusalArgs(db.d, &r, a) })
		if err != nil {
			return conflictOr("record refusal", err, "error.refusal_exists")
		}
		t.touch("refusals", r.OrgID, "id", r.ID)
		return t.audit(c, newAudit(r.OrgID, r.MemberID, "refusal.record", r.ID, map[string]any{
			"reason": r.ReasonKind, "rule": r.Rule, "customer_left": r.Left, "action": r.Action, "amount": r.Amount,
		}, r.CreatedAt))
	})
	if err != nil {
		return err
	}
	*refusal = r
	return nil
}
