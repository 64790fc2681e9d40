package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/margenhq/margen"
)

// chain is an organisation's audit head, read under the org row lock.
type chain struct {
	seq   int64
	head  string
	dirty bool
}

// lockOrg locks one organisation row for the rest of the transaction and
// returns its audit head. Every write locks its organisation first: that
// orders all writers of one organisation (and keeps the audit chain linear)
// and, because the org row is always the first lock taken, rules out
// deadlocks between writers.
func (t *wtx) lockOrg(orgID string) (*chain, error) {
	c := &chain{}
	err := t.queryRow("SELECT audit_seq, audit_head FROM orgs WHERE id = ?"+t.db.d.forNoKeyUpdate(), orgID).
		Scan(&c.seq, &c.head)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound("org")
	}
	if err != nil {
		return nil, dbErr("lock org", err)
	}
	return c, nil
}

// newAudit composes an audit entry; data is marshalled to JSON.
func newAudit(orgID, actor, action, subject string, data any, at time.Time) margen.AuditEntry {
	raw, err := json.Marshal(data)
	if err != nil {
		// data is always a map of plain values built here: a failure is a bug.
		panic("store: audit data: " + err.Error())
	}
	return margen.AuditEntry{OrgID: orgID, At: at, Actor: actor, Action: action, Subject: subject, Data: raw}
}

var auditCols = []string{"org_id", "seq", "at", "actor", "action", "subject", "data", "prev_hash", "hash"}

// appendAudit chains entries onto their organisations' heads (filling Seq,
// PrevHash and Hash in place), inserts them and moves the heads. chains
// holds the heads already locked in this transaction; an organisation not
// in it is locked here.
func (t *wtx) appendAudit(chains map[string]*chain, entries []margen.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range entries {
		e := &entries[i]
		c := chains[e.OrgID]
		if c == nil {
			var err error
			if c, err = t.lockOrg(e.OrgID); err != nil {
				return err
			}
			chains[e.OrgID] = c
		}
		if e.At.IsZero() {
			e.At = now
		}
		// The hash covers the time as stored: microseconds, UTC.
		e.At = e.At.UTC().Truncate(time.Microsecond)
		e.Seq = c.seq + 1
		e.PrevHash = c.head
		e.Hash = margen.ChainHash(e)
		c.seq, c.head, c.dirty = e.Seq, e.Hash, true
	}
	d := t.db.d
	err := t.insertMany("audit_log", auditCols, "", len(entries), func(i int, a []any) []any {
		e := &entries[i]
		return append(a, e.OrgID, e.Seq, d.ts(e.At), e.Actor, e.Action, e.Subject, string(e.Data), e.PrevHash, e.Hash)
	})
	if err != nil {
		return dbErr("insert audit", err)
	}
	orgs := make([]string, 0, len(chains))
	for id, c := range chains {
		if c.dirty {
			orgs = append(orgs, id)
		}
	}
	slices.Sort(orgs)
	for _, id := range orgs {
		c := chains[id]
		if _, err := t.exec("UPDATE orgs SET audit_seq = ?, audit_head = ? WHERE id = ?", c.seq, c.head, id); err != nil {
			return dbErr("move audit head", err)
		}
		c.dirty = false
	}
	return nil
}

// audit is appendAudit for the single entry of a simple write.
func (t *wtx) audit(c *chain, e margen.AuditEntry) error {
	return t.appendAudit(map[string]*chain{e.OrgID: c}, []margen.AuditEntry{e})
}

const auditSelect = "SELECT org_id, seq, at, actor, action, subject, data, prev_hash, hash FROM audit_log"

func scanAudit(s scanner) (margen.AuditEntry, error) {
	var e margen.AuditEntry
	var data string
	err := s.Scan(&e.OrgID, &e.Seq, tsCol{&e.At}, &e.Actor, &e.Action, &e.Subject, &data, &e.PrevHash, &e.Hash)
	if data != "" {
		e.Data = json.RawMessage(data)
	}
	return e, err
}

// ListAudit returns entries after afterSeq in chain order, at most limit
// (default 50, at most 500).
func (db *DB) ListAudit(ctx context.Context, orgID string, afterSeq int64, limit int) ([]margen.AuditEntry, error) {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := c.QueryContext(ctx, db.d.rebind(auditSelect+" WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?"),
		orgID, afterSeq, pageLimit(limit))
	if err != nil {
		return nil, dbErr("list audit", err)
	}
	return collect(rows, scanAudit)
}

// LastAuditSeq returns the sequence number of the organisation's last audit
// entry (0 when it has none), kept on the organisation row.
func (db *DB) LastAuditSeq(ctx context.Context, orgID string) (int64, error) {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return 0, err
	}
	defer release()
	var seq int64
	err = c.QueryRowContext(ctx, db.d.rebind("SELECT audit_seq FROM orgs WHERE id = ?"), orgID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, margen.NotFound("organisation")
	}
	if err != nil {
		return 0, dbErr("last audit seq", err)
	}
	return seq, nil
}

// VerifyAudit recomputes the organisation's hash chain from the first entry
// and compares it with the head kept on the organisation row, so an edited,
// deleted, inserted or truncated entry is found. broken is the first seq
// that does not verify (0 when the chain is intact).
func (db *DB) VerifyAudit(ctx context.Context, orgID string) (broken int64, checked int64, err error) {
	// One snapshot for the head and the entries.
	var opts *sql.TxOptions
	if db.d.pg {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		return 0, 0, dbErr("verify audit", err)
	}
	defer tx.Rollback()
	var headSeq int64
	var head string
	err = tx.QueryRowContext(ctx, db.d.rebind("SELECT audit_seq, audit_head FROM orgs WHERE id = ?"), orgID).Scan(&headSeq, &head)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, margen.NotFound("org")
	}
	if err != nil {
		return 0, 0, dbErr("verify audit", err)
	}
	rows, err := tx.QueryContext(ctx, db.d.rebind(auditSelect+" WHERE org_id = ? ORDER BY seq"), orgID)
	if err != nil {
		return 0, 0, dbErr("verify audit", err)
	}
	defer rows.Close()
	prev := ""
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return 0, checked, dbErr("verify audit", err)
		}
		want := checked + 1
		switch {
		case e.Seq != want: // a deleted (or inserted) entry
			return want, checked, nil
		case e.PrevHash != prev, margen.ChainHash(&e) != e.Hash:
			return e.Seq, checked, nil
		}
		prev = e.Hash
		checked++
	}
	if err := rows.Err(); err != nil {
		return 0, checked, dbErr("verify audit", err)
	}
	if checked != headSeq || prev != head {
		// The tail was cut, or entries were appended behind the store's back.
		return min(checked, headSeq) + 1, checked, nil
	}
	return 0, checked, nil
}
