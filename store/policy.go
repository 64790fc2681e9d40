package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/margenhq/margen"
)

const policySelect = "SELECT org_id, version, source, active, created_by, note, created_at FROM policy_versions"

func scanPolicy(s scanner) (margen.PolicyVersion, error) {
	var p margen.PolicyVersion
	err := s.Scan(&p.OrgID, &p.Version, &p.Source, &p.Active, &p.CreatedBy, &p.Note, tsCol{&p.CreatedAt})
	return p, err
}

// PublishPolicy stores pv as the organisation's next version (max + 1) and
// makes it the active one, in one transaction; pv.Version is set. The
// idempotency record is stored in the same transaction, its answer rendered
// (idem.For) from the version numbered there.
func (db *DB) PublishPolicy(ctx context.Context, pv *margen.PolicyVersion, idem *margen.IdemWrite[*margen.PolicyVersion]) error {
	p := *pv
	stamp(&p.CreatedAt)
	p.Active = true
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(p.OrgID)
		if err != nil {
			return err
		}
		// Versions are numbered under the org row lock, so max+1 is safe.
		if err := t.queryRow("SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions WHERE org_id = ?", p.OrgID).
			Scan(&p.Version); err != nil {
			return dbErr("next policy version", err)
		}
		if _, err := t.exec("UPDATE policy_versions SET active = FALSE WHERE org_id = ? AND active", p.OrgID); err != nil {
			return dbErr("deactivate policy", err)
		}
		// Versions are never deleted, so the one deactivated is the
		// previous one.
		t.touch("policy_versions", p.OrgID, "version", p.Version-1)
		t.touch("policy_versions", p.OrgID, "version", p.Version)
		_, err = t.exec(`INSERT INTO policy_versions (org_id, version, source, active, created_by, note, created_at)
			VALUES (?, ?, ?, TRUE, ?, ?, ?)`,
			p.OrgID, p.Version, p.Source, p.CreatedBy, p.Note, db.d.ts(p.CreatedAt))
		if err != nil {
			return conflictOr("publish policy", err, "error.policy_version_exists")
		}
		if err := t.audit(c, newAudit(p.OrgID, p.CreatedBy, margen.ActionPolicyPublish, "policy", margen.PolicyAudit{
			Version: p.Version, Note: p.Note, SourceSHA256: sha256Hex(p.Source),
		}, p.CreatedAt)); err != nil {
			return err
		}
		// The answer is made from the version this transaction numbered,
		// and stored with it: a replay names exactly what was created.
		rec, err := idem.For(&p)
		if err != nil {
			return err
		}
		return t.insertIdem(rec)
	})
	if err != nil {
		return err
	}
	*pv = p
	return nil
}

// ActivePolicy returns the organisation's active version.
func (db *DB) ActivePolicy(ctx context.Context, orgID string) (*margen.PolicyVersion, error) {
	return getOne(ctx, db, "policy", scanPolicy, policySelect+" WHERE org_id = ? AND active", orgID)
}

// PolicyByVersion returns one version.
func (db *DB) PolicyByVersion(ctx context.Context, orgID string, version int) (*margen.PolicyVersion, error) {
	return getOne(ctx, db, "policy", scanPolicy, policySelect+" WHERE org_id = ? AND version = ?", orgID, version)
}

// ListPolicies returns all versions, newest first.
func (db *DB) ListPolicies(ctx context.Context, orgID string) ([]margen.PolicyVersion, error) {
	return getMany(ctx, db, scanPolicy, policySelect+" WHERE org_id = ? ORDER BY version DESC", orgID)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
