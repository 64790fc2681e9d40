package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/margenhq/margen"
)

// Invitations: the table is not sealed (not in sealTables: an invitation
// is machinery, like a session; the member it creates is sealed and named
// with t.touch); every creation and acceptance has its audit entry.

const invitationSelect = `SELECT org_id, id, token_hash, name, access, role, team, created_by, created_at, expires_at, used_at, member_id
	FROM invitations`

func scanInvitation(s scanner) (margen.Invitation, error) {
	var i margen.Invitation
	err := s.Scan(&i.OrgID, &i.ID, &i.TokenHash, &i.Name, &i.Access, &i.Role, &i.Team, &i.CreatedBy,
		tsCol{&i.CreatedAt}, tsCol{&i.ExpiresAt}, tsNullCol{&i.UsedAt}, &i.MemberID)
	return i, err
}

// CreateInvitation stores an invitation.
func (db *DB) CreateInvitation(ctx context.Context, inv *margen.Invitation, actor string) error {
	in := *inv
	if in.ID == "" {
		in.ID = margen.NewID("inv")
	}
	stamp(&in.CreatedAt)
	in.ExpiresAt = in.ExpiresAt.UTC().Truncate(time.Microsecond)
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(in.OrgID)
		if err != nil {
			return err
		}
		if in.Team != "" {
			if err := t.exists("team", "SELECT 1 FROM teams WHERE org_id = ? AND slug = ?", in.OrgID, in.Team); err != nil {
				return err
			}
		}
		if _, err := t.exec(`INSERT INTO invitations (org_id, id, token_hash, name, access, role, team, created_by, created_at, expires_at, member_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
			in.OrgID, in.ID, in.TokenHash, in.Name, in.Access, in.Role, in.Team, in.CreatedBy,
			db.d.ts(in.CreatedAt), db.d.ts(in.ExpiresAt)); err != nil {
			return dbErr("create invitation", err)
		}
		return t.audit(c, newAudit(in.OrgID, actor, margen.ActionInvitationCreate, in.ID, map[string]any{
			"name": in.Name, "access": in.Access, "role": in.Role, "team": in.Team, "expires_at": in.ExpiresAt,
		}, in.CreatedAt))
	})
	if err != nil {
		return err
	}
	*inv = in
	return nil
}

// InvitationByHash finds an invitation by its token's hash.
func (db *DB) InvitationByHash(ctx context.Context, hash []byte) (*margen.Invitation, error) {
	return getOne(ctx, db, "invitation", scanInvitation, invitationSelect+" WHERE token_hash = ?", hash)
}

// ListInvitations lists an organisation's invitations, newest first.
func (db *DB) ListInvitations(ctx context.Context, orgID string) ([]margen.Invitation, error) {
	return getMany(ctx, db, scanInvitation, invitationSelect+" WHERE org_id = ? ORDER BY created_at DESC, id", orgID)
}

// AcceptInvitation creates the invited member and uses the invitation.
func (db *DB) AcceptInvitation(ctx context.Context, hash []byte, member *margen.Member, at time.Time) (*margen.Invitation, error) {
	at = at.UTC().Truncate(time.Microsecond)
	found, err := db.InvitationByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	m := *member
	var inv margen.Invitation
	err = db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(found.OrgID)
		if err != nil {
			return err
		}
		// Read again under the organisation's lock: two tabs accepting the
		// same link at once create one member.
		inv, err = scanInvitation(t.queryRow(invitationSelect+" WHERE token_hash = ?", hash))
		if errors.Is(err, sql.ErrNoRows) {
			return margen.NotFound("invitation")
		}
		if err != nil {
			return dbErr("read invitation", err)
		}
		switch {
		case inv.UsedAt != nil:
			return margen.Errorf(margen.ECONFLICT, "error.invitation_used")
		case !at.Before(inv.ExpiresAt):
			return margen.Errorf(margen.ECONFLICT, "error.invitation_expired")
		}
		m.ID, m.OrgID = margen.NewID("mem"), inv.OrgID
		m.Access, m.Role, m.Team, m.Active, m.CreatedAt = inv.Access, inv.Role, inv.Team, true, at
		if err := t.insertMember(&m); err != nil {
			return err
		}
		t.touch("members", m.OrgID, "id", m.ID)
		if _, err := t.exec("UPDATE invitations SET used_at = ?, member_id = ? WHERE org_id = ? AND id = ?",
			db.d.ts(at), m.ID, inv.OrgID, inv.ID); err != nil {
			return dbErr("use invitation", err)
		}
		inv.UsedAt, inv.MemberID = &at, m.ID
		if err := t.audit(c, memberAudit(&m, inv.CreatedBy)); err != nil {
			return err
		}
		return t.audit(c, newAudit(inv.OrgID, m.ID, margen.ActionInvitationAccept, inv.ID, map[string]any{"member": m.ID, "login": m.Login}, at))
	})
	if err != nil {
		return nil, err
	}
	*member = m
	return &inv, nil
}
