package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

var _ margen.AccountStore = (*DB)(nil)

// AnyOrg reports whether the database holds an organisation (the web's
// first-run setup is offered only when it does not).
func (db *DB) AnyOrg(ctx context.Context) (bool, error) {
	var one int
	err := db.readPool().QueryRowContext(ctx, "SELECT 1 FROM orgs LIMIT 1").Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, dbErr("any org", err)
}

// SetMemberPassword replaces a member's password hash. The hash never
// reaches the audit trail.
func (db *DB) SetMemberPassword(ctx context.Context, orgID, memberID, hash, actor string) error {
	return db.setMember(ctx, orgID, memberID, "password_hash", hash, actor, margen.ActionMemberPassword, map[string]any{})
}

// SetMemberLanguage sets a member's language.
func (db *DB) SetMemberLanguage(ctx context.Context, orgID, memberID, lang, actor string) error {
	return db.setMember(ctx, orgID, memberID, "language", lang, actor, margen.ActionMemberLanguage, map[string]any{"language": lang})
}

// setMember sets one column of a member (column is a constant of this
// file, never input) with its audit entry.
func (db *DB) setMember(ctx context.Context, orgID, memberID, column, value, actor string, action margen.AuditAction, data map[string]any) error {
	at := now()
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if err := t.exists("member", "SELECT 1 FROM members WHERE org_id = ? AND id = ?", orgID, memberID); err != nil {
			return err
		}
		if _, err := t.exec("UPDATE members SET "+column+" = ? WHERE org_id = ? AND id = ?", value, orgID, memberID); err != nil {
			return dbErr("update member", err)
		}
		t.touch("members", orgID, "id", memberID)
		return t.audit(c, newAudit(orgID, actor, action, memberID, data, at))
	})
}

// likeEscaper escapes LIKE's wildcards so a search is for the text typed.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// SearchCustomers finds customers by a part of their name or reference.
func (db *DB) SearchCustomers(ctx context.Context, orgID, query string, limit int) ([]margen.Customer, error) {
	pat := "%" + likeEscaper.Replace(strings.ToLower(query)) + "%"
	return getMany(ctx, db, scanCustomer, customerSelect+
		` WHERE org_id = ? AND ref <> id AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(ref) LIKE ? ESCAPE '\')
		ORDER BY name, ref LIMIT ?`, orgID, pat, pat, limit)
}

// Sessions is the web's session store (it implements the scs.Store and
// scs.CtxStore interfaces of github.com/alexedwards/scs/v2) in the sessions
// table of the same database, on both engines.
type Sessions struct{ db *DB }

// Sessions returns the session store over this database.
func (db *DB) Sessions() *Sessions { return &Sessions{db: db} }

// FindCtx returns a session's data, unless it is missing or expired.
func (s *Sessions) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := s.db.readPool().QueryRowContext(ctx, s.db.d.rebind("SELECT data FROM sessions WHERE token = ? AND expiry > ?"),
		token, time.Now().UnixNano()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, dbErr("find session", err)
	}
	return b, true, nil
}

// CommitCtx stores a session (inserted or replaced).
func (s *Sessions) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	_, err := s.db.write.ExecContext(ctx, s.db.d.rebind(`INSERT INTO sessions (token, data, expiry) VALUES (?, ?, ?)
		ON CONFLICT (token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry`), token, b, expiry.UnixNano())
	if err != nil {
		return dbErr("commit session", err)
	}
	return s.db.durable()
}

// DeleteCtx removes a session.
func (s *Sessions) DeleteCtx(ctx context.Context, token string) error {
	_, err := s.db.write.ExecContext(ctx, s.db.d.rebind("DELETE FROM sessions WHERE token = ?"), token)
	if err != nil {
		return dbErr("delete session", err)
	}
	// A signed-out session must stay signed out after a power cut.
	return s.db.durable()
}

// Find is FindCtx without a context.
func (s *Sessions) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit is CommitCtx without a context.
func (s *Sessions) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx without a context.
func (s *Sessions) Delete(token string) error { return s.DeleteCtx(context.Background(), token) }

// DeleteExpired removes the sessions that expired before now and says how
// many it removed.
func (s *Sessions) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.write.ExecContext(ctx, s.db.d.rebind("DELETE FROM sessions WHERE expiry <= ?"), now.UnixNano())
	if err != nil {
		return 0, dbErr("delete expired sessions", err)
	}
	return res.RowsAffected()
}

// RunSweep deletes expired sessions every interval until ctx ends.
func (s *Sessions) RunSweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.DeleteExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
				s.db.log.Warn("session sweep failed", "err", err)
			}
		}
	}
}

// UpdateMember sets a member's access level, policy role and team (a team
// slug of the organisation, or "" for none), with one audit entry naming
// what it was and what it is now.
func (db *DB) UpdateMember(ctx context.Context, orgID, memberID, access, role, team, actor string) error {
	at := now()
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		var oldAccess, oldRole, oldTeam string
		err = t.queryRow("SELECT access, role, team FROM members WHERE org_id = ? AND id = ?", orgID, memberID).Scan(&oldAccess, &oldRole, &oldTeam)
		if errors.Is(err, sql.ErrNoRows) {
			return margen.NotFound("member")
		}
		if err != nil {
			return dbErr("read member", err)
		}
		if team != "" {
			if err := t.exists("team", "SELECT 1 FROM teams WHERE org_id = ? AND slug = ?", orgID, team); err != nil {
				return err
			}
		}
		if _, err := t.exec("UPDATE members SET access = ?, role = ?, team = ? WHERE org_id = ? AND id = ?", access, role, team, orgID, memberID); err != nil {
			return dbErr("update member", err)
		}
		t.touch("members", orgID, "id", memberID)
		return t.audit(c, newAudit(orgID, actor, margen.ActionMemberUpdate, memberID, map[string]any{
			"access": access, "role": role, "team": team,
			"was": map[string]any{"access": oldAccess, "role": oldRole, "team": oldTeam},
		}, at))
	})
}
