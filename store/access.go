package store

import (
	"context"

	"github.com/margenhq/margen"
)

// ListTokens lists a member's API tokens (never their hashes), newest first.
func (db *DB) ListTokens(ctx context.Context, orgID, memberID string) ([]margen.Token, error) {
	return getMany(ctx, db, scanToken, tokenSelect+" WHERE org_id = ? AND member_id = ? ORDER BY id DESC", orgID, memberID)
}

// RevokeToken revokes a token of the organisation; revoking twice is a no-op.
func (db *DB) RevokeToken(ctx context.Context, orgID, id, actor string) error {
	at := now()
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if err := t.exists("token", "SELECT 1 FROM tokens WHERE org_id = ? AND id = ?", orgID, id); err != nil {
			return err
		}
		res, err := t.exec("UPDATE tokens SET revoked_at = ? WHERE org_id = ? AND id = ? AND revoked_at IS NULL",
			db.d.ts(at), orgID, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("revoke token", err)
		} else if n == 0 {
			return nil
		}
		t.touch("tokens", orgID, "id", id)
		return t.audit(c, newAudit(orgID, actor, margen.ActionTokenRevoke, id, map[string]any{}, at))
	})
}

// SetMemberActive activates or deactivates a member. A deactivated member's
// tokens stop working and they can no longer ask for decisions.
func (db *DB) SetMemberActive(ctx context.Context, orgID, memberID string, active bool, actor string) error {
	at := now()
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if err := t.exists("member", "SELECT 1 FROM members WHERE org_id = ? AND id = ?", orgID, memberID); err != nil {
			return err
		}
		if _, err := t.exec("UPDATE members SET active = ? WHERE org_id = ? AND id = ?", active, orgID, memberID); err != nil {
			return err
		}
		action := margen.ActionMemberDeactivate
		if active {
			action = margen.ActionMemberActivate
		}
		t.touch("members", orgID, "id", memberID)
		return t.audit(c, newAudit(orgID, actor, action, memberID, map[string]any{"active": active}, at))
	})
}
