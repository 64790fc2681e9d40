package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// now is the store's fallback clock for rows the caller did not stamp.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// stamp fills a zero time and truncates it to what the engines store.
func stamp(t *time.Time) {
	if t.IsZero() {
		*t = now()
		return
	}
	*t = t.UTC().Truncate(time.Microsecond)
}

func actorOr(actor, fallback string) string {
	if actor != "" {
		return actor
	}
	return fallback
}

// --- organisations ---

const orgSelect = "SELECT id, slug, name, currency, timezone, language, created_at FROM orgs"

func scanOrg(s scanner) (margen.Org, error) {
	var o margen.Org
	err := s.Scan(&o.ID, &o.Slug, &o.Name, &o.Currency, &o.Timezone, &o.Language, tsCol{&o.CreatedAt})
	return o, err
}

// CreateOrg creates an organisation and its owner, and starts its audit
// chain, atomically.
func (db *DB) CreateOrg(ctx context.Context, org *margen.Org, owner *margen.Member, actor string) error {
	o := *org
	if o.ID == "" {
		o.ID = margen.NewID("org")
	}
	stamp(&o.CreatedAt)
	var m margen.Member
	if owner != nil {
		m = *owner
		m.OrgID = o.ID
		if m.ID == "" {
			m.ID = margen.NewID("mem")
		}
		if m.Access == "" {
			m.Access = margen.AccessOwner
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = o.CreatedAt
		}
		stamp(&m.CreatedAt)
	}
	err := db.writeTx(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO orgs (id, slug, name, currency, timezone, language, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.Slug, o.Name, o.Currency, o.Timezone, o.Language, db.d.ts(o.CreatedAt))
		if err != nil {
			return conflictOr("create org", err, "error.slug_taken", "slug", o.Slug)
		}
		// The row is new and invisible to others until commit: no lock
		// needed. Its chain is sealed under the key from the first entry.
		c := &chain{sealedFrom: 1, keyID: db.key.ID()}
		entries := []margen.AuditEntry{newAudit(o.ID, actorOr(actor, m.ID), margen.ActionOrgCreate, o.ID, map[string]any{
			"slug": o.Slug, "name": o.Name, "currency": o.Currency, "timezone": o.Timezone, "language": o.Language,
		}, o.CreatedAt)}
		if owner != nil {
			if err := t.insertMember(&m); err != nil {
				return err
			}
			entries = append(entries, memberAudit(&m, actorOr(actor, m.ID)))
			t.touch("members", o.ID, "id", m.ID)
		}
		return t.appendAudit(map[string]*chain{o.ID: c}, entries)
	})
	if err != nil {
		return err
	}
	*org = o
	if owner != nil {
		*owner = m
	}
	return nil
}

// OrgByID returns an organisation.
func (db *DB) OrgByID(ctx context.Context, id string) (*margen.Org, error) {
	return getOne(ctx, db, "org", scanOrg, orgSelect+" WHERE id = ?", id)
}

// OrgBySlug returns an organisation by its slug.
func (db *DB) OrgBySlug(ctx context.Context, slug string) (*margen.Org, error) {
	return getOne(ctx, db, "org", scanOrg, orgSelect+" WHERE slug = ?", slug)
}

// --- teams ---

const teamSelect = "SELECT org_id, id, slug, name, created_at FROM teams"

func scanTeam(s scanner) (margen.Team, error) {
	var t margen.Team
	err := s.Scan(&t.OrgID, &t.ID, &t.Slug, &t.Name, tsCol{&t.CreatedAt})
	return t, err
}

// CreateTeam creates a team (or site).
func (db *DB) CreateTeam(ctx context.Context, team *margen.Team, actor string) error {
	tm := *team
	if tm.ID == "" {
		tm.ID = margen.NewID("team")
	}
	stamp(&tm.CreatedAt)
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(tm.OrgID)
		if err != nil {
			return err
		}
		_, err = t.exec("INSERT INTO teams (org_id, id, slug, name, created_at) VALUES (?, ?, ?, ?, ?)",
			tm.OrgID, tm.ID, tm.Slug, tm.Name, db.d.ts(tm.CreatedAt))
		if err != nil {
			return conflictOr("create team", err, "error.team_taken", "slug", tm.Slug)
		}
		t.touch("teams", tm.OrgID, "id", tm.ID)
		return t.audit(c, newAudit(tm.OrgID, actor, margen.ActionTeamCreate, tm.ID,
			map[string]any{"slug": tm.Slug, "name": tm.Name}, tm.CreatedAt))
	})
	if err != nil {
		return err
	}
	*team = tm
	return nil
}

// ListTeams returns the organisation's teams by slug.
func (db *DB) ListTeams(ctx context.Context, orgID string) ([]margen.Team, error) {
	return getMany(ctx, db, scanTeam, teamSelect+" WHERE org_id = ? ORDER BY slug", orgID)
}

// --- members ---

const memberSelect = `SELECT org_id, id, login, name, access, role, team, language, active, password_hash, created_at
	FROM members`

func scanMember(s scanner) (margen.Member, error) {
	var m margen.Member
	err := s.Scan(&m.OrgID, &m.ID, &m.Login, &m.Name, &m.Access, &m.Role, &m.Team, &m.Language, &m.Active,
		&m.PasswordHash, tsCol{&m.CreatedAt})
	return m, err
}

func (t *wtx) insertMember(m *margen.Member) error {
	_, err := t.exec(`INSERT INTO members (org_id, id, login, name, access, role, team, language, active, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.OrgID, m.ID, m.Login, m.Name, m.Access, m.Role, m.Team, m.Language, m.Active, m.PasswordHash,
		t.db.d.ts(m.CreatedAt))
	return conflictOr("create member", err, "error.login_taken", "login", m.Login)
}

// memberAudit never carries the password hash.
func memberAudit(m *margen.Member, actor string) margen.AuditEntry {
	return newAudit(m.OrgID, actor, margen.ActionMemberCreate, m.ID, map[string]any{
		"login": m.Login, "name": m.Name, "access": m.Access, "role": m.Role, "team": m.Team, "active": m.Active,
	}, m.CreatedAt)
}

// CreateMember adds a member to an organisation.
func (db *DB) CreateMember(ctx context.Context, member *margen.Member, actor string) error {
	m := *member
	if m.ID == "" {
		m.ID = margen.NewID("mem")
	}
	stamp(&m.CreatedAt)
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(m.OrgID)
		if err != nil {
			return err
		}
		if err := t.insertMember(&m); err != nil {
			return err
		}
		t.touch("members", m.OrgID, "id", m.ID)
		return t.audit(c, memberAudit(&m, actorOr(actor, m.ID)))
	})
	if err != nil {
		return err
	}
	*member = m
	return nil
}

// MemberByID returns a member of the organisation.
func (db *DB) MemberByID(ctx context.Context, orgID, id string) (*margen.Member, error) {
	return getOne(ctx, db, "member", scanMember, memberSelect+" WHERE org_id = ? AND id = ?", orgID, id)
}

// MemberByLogin returns a member of the organisation by login.
func (db *DB) MemberByLogin(ctx context.Context, orgID, login string) (*margen.Member, error) {
	return getOne(ctx, db, "member", scanMember, memberSelect+" WHERE org_id = ? AND login = ?", orgID, login)
}

// ListMembers returns the organisation's members by login.
func (db *DB) ListMembers(ctx context.Context, orgID string) ([]margen.Member, error) {
	return getMany(ctx, db, scanMember, memberSelect+" WHERE org_id = ? ORDER BY login", orgID)
}

// --- tokens ---

const tokenSelect = "SELECT id, org_id, member_id, hash, name, created_at, revoked_at FROM tokens"

func scanToken(s scanner) (margen.Token, error) {
	var t margen.Token
	err := s.Scan(&t.ID, &t.OrgID, &t.MemberID, &t.Hash, &t.Name, tsCol{&t.CreatedAt}, tsNullCol{&t.RevokedAt})
	return t, err
}

// CreateToken stores an API token (its hash) for a member.
func (db *DB) CreateToken(ctx context.Context, tok *margen.Token, actor string) error {
	k := *tok
	if k.ID == "" {
		k.ID = margen.NewID("tok")
	}
	stamp(&k.CreatedAt)
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(k.OrgID)
		if err != nil {
			return err
		}
		if err := t.exists("member", "SELECT 1 FROM members WHERE org_id = ? AND id = ?", k.OrgID, k.MemberID); err != nil {
			return err
		}
		_, err = t.exec("INSERT INTO tokens (id, org_id, member_id, hash, name, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			k.ID, k.OrgID, k.MemberID, k.Hash, k.Name, db.d.ts(k.CreatedAt), db.d.tsPtr(k.RevokedAt))
		if err != nil {
			return conflictOr("create token", err, "error.token_exists")
		}
		// Never the hash.
		t.touch("tokens", k.OrgID, "id", k.ID)
		return t.audit(c, newAudit(k.OrgID, actorOr(actor, k.MemberID), margen.ActionTokenCreate, k.ID,
			map[string]any{"member_id": k.MemberID, "name": k.Name}, k.CreatedAt))
	})
	if err != nil {
		return err
	}
	*tok = k
	return nil
}

// TokenByHash finds a token that has not been revoked.
func (db *DB) TokenByHash(ctx context.Context, hash []byte) (*margen.Token, error) {
	return getOne(ctx, db, "token", scanToken, tokenSelect+" WHERE hash = ? AND revoked_at IS NULL", hash)
}

// --- customers ---

const customerSelect = "SELECT org_id, id, ref, name, contact, tags, created_at FROM customers"

func scanCustomer(s scanner) (margen.Customer, error) {
	var c margen.Customer
	var tags []byte
	err := s.Scan(&c.OrgID, &c.ID, &c.Ref, &c.Name, &c.Contact, &tags, tsCol{&c.CreatedAt})
	if err != nil {
		return c, err
	}
	c.Tags = []string{}
	if len(tags) > 0 {
		if err := json.Unmarshal(tags, &c.Tags); err != nil {
			return c, err
		}
	}
	return c, nil
}

func customerTags(tags []string) string {
	if len(tags) == 0 {
		return "[]"
	}
	s, _ := jsonValue(tags)
	return s
}

// UpsertCustomer creates a customer by reference, or updates its name,
// contact and tags. c.ID and c.CreatedAt are set from the stored row.
func (db *DB) UpsertCustomer(ctx context.Context, cust *margen.Customer, actor string) error {
	c := *cust
	if c.ID == "" {
		c.ID = margen.CustomerID(c.OrgID, c.Ref)
	}
	stamp(&c.CreatedAt)
	if c.Tags == nil {
		c.Tags = []string{}
	}
	err := db.writeTx(ctx, func(t *wtx) error {
		ch, err := t.lockOrg(c.OrgID)
		if err != nil {
			return err
		}
		// The id is derived from the reference: an erased customer's old
		// reference cannot name someone new.
		var erased bool
		if err := t.queryRow("SELECT COUNT(*) > 0 FROM customers WHERE org_id = ? AND id = ? AND ref = id", c.OrgID, c.ID).
			Scan(&erased); err != nil {
			return dbErr("upsert customer", err)
		}
		if erased {
			return margen.Errorf(margen.ECONFLICT, "error.customer_erased", "value", c.Ref)
		}
		err = t.queryRow(`INSERT INTO customers (org_id, id, ref, name, contact, tags, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id, ref) DO UPDATE SET
				name = excluded.name, contact = excluded.contact, tags = excluded.tags
			RETURNING id, created_at`,
			c.OrgID, c.ID, c.Ref, c.Name, c.Contact, customerTags(c.Tags), db.d.ts(c.CreatedAt)).
			Scan(&c.ID, tsCol{&c.CreatedAt})
		if err != nil {
			return conflictOr("upsert customer", err, "error.customer_exists")
		}
		// Contact details are personal data: the trail names the customer only.
		t.touch("customers", c.OrgID, "id", c.ID)
		return t.audit(ch, newAudit(c.OrgID, actor, margen.ActionCustomerUpsert, c.ID, map[string]any{}, time.Time{}))
	})
	if err != nil {
		return err
	}
	*cust = c
	return nil
}

// firstSight creates a customer met for the first time (nil: none); an
// existing customer is left as it is.
func (t *wtx) firstSight(c *margen.Customer, at time.Time) error {
	if c == nil {
		return nil
	}
	if c.ID == "" {
		c.ID = margen.CustomerID(c.OrgID, c.Ref)
	}
	stampAt(&c.CreatedAt, at)
	_, err := t.exec(`INSERT INTO customers (org_id, id, ref, name, contact, tags, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		c.OrgID, c.ID, c.Ref, c.Name, c.Contact, customerTags(c.Tags), t.db.d.ts(c.CreatedAt))
	t.touch("customers", c.OrgID, "id", c.ID)
	return dbErr("insert customer", err)
}

// CustomerByID returns a customer of the organisation.
func (db *DB) CustomerByID(ctx context.Context, orgID, id string) (*margen.Customer, error) {
	return getOne(ctx, db, "customer", scanCustomer, customerSelect+" WHERE org_id = ? AND id = ?", orgID, id)
}

// maxCustomersByID bounds one CustomersByID query's parameters (SQLite
// allows 32,766, PostgreSQL 65,535).
const maxCustomersByID = 1000

// CustomersByID returns the organisation's customers among ids, by id; ids
// not found are absent. Pages listing many rows resolve their customers
// with it in one query instead of one per row.
func (db *DB) CustomersByID(ctx context.Context, orgID string, ids []string) (map[string]*margen.Customer, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	out := make(map[string]*margen.Customer, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), maxCustomersByID)
		args := make([]any, 0, n+1)
		args = append(args, orgID)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		cs, err := getMany(ctx, db, scanCustomer, customerSelect+" WHERE org_id = ? AND id IN (?"+strings.Repeat(", ?", n-1)+")", args...)
		if err != nil {
			return nil, err
		}
		for i := range cs {
			out[cs[i].ID] = &cs[i]
		}
		ids = ids[n:]
	}
	return out, nil
}

// ListCustomers pages through the organisation's customers by id,
// descending. (Customer ids derive from their reference, so this order is
// stable but not chronological.)
func (db *DB) ListCustomers(ctx context.Context, orgID string, page margen.Page) ([]margen.Customer, error) {
	var w where
	w.add("org_id = ?", orgID)
	w.page(page)
	return getMany(ctx, db, scanCustomer, customerSelect+w.sql()+" ORDER BY id DESC LIMIT ?", w.argsLimit(page)...)
}

// --- shared read helpers ---

// exists fails with NotFound(what) unless the query returns a row.
func (t *wtx) exists(what, query string, args ...any) error {
	var one int
	err := t.queryRow(query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return margen.NotFound(what)
	}
	return dbErr("check "+what, err)
}

// getOne reads one row through the read pool; no row is NotFound(what).
func getOne[T any](ctx context.Context, db *DB, what string, scan func(scanner) (T, error), query string, args ...any) (*T, error) {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	defer release()
	v, err := scan(c.QueryRowContext(ctx, db.d.rebind(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound(what)
	}
	if err != nil {
		return nil, dbErr("get "+what, err)
	}
	return &v, nil
}

// getMany reads rows through the read pool.
func getMany[T any](ctx context.Context, db *DB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	return getManyCap(ctx, db, 0, scan, query, args...)
}

// getManyCap is getMany for a query whose rows are about capacity: the
// slice is made that large at once instead of grown row by row.
func getManyCap[T any](ctx context.Context, db *DB, capacity int, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := c.QueryContext(ctx, db.d.rebind(query), args...)
	if err != nil {
		return nil, dbErr("list", err)
	}
	return collectCap(rows, capacity, scan)
}

// collect scans and closes rows; an empty result is an empty, non-nil slice.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	return collectCap(rows, 0, scan)
}

// collectCap is collect into a slice made with room for capacity rows.
func collectCap[T any](rows *sql.Rows, capacity int, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := make([]T, 0, capacity)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, dbErr("scan", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list", err)
	}
	return out, nil
}

// Page limits.
const (
	defaultLimit = 50
	maxLimit     = 500
)

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// where accumulates the conditions of a filtered list.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// eq adds "col = ?" when v is set.
func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

// page adds the cursor: lists are newest first, After means older than.
func (w *where) page(p margen.Page) {
	if p.After != "" {
		w.add("id < ?", p.After)
	}
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	s := " WHERE " + w.conds[0]
	for _, c := range w.conds[1:] {
		s += " AND " + c
	}
	return s
}

func (w *where) argsLimit(p margen.Page) []any {
	return append(w.args, pageLimit(p.Limit))
}

// HasOrgs reports whether the database holds any organisation: a database
// without one has no audit trail to verify yet, so a first command may give
// it its audit key.
func (db *DB) HasOrgs(ctx context.Context) (bool, error) {
	var one int
	err := db.readPool().QueryRowContext(ctx, "SELECT 1 FROM orgs LIMIT 1").Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbErr("look for organisations", err)
	}
	return true, nil
}
