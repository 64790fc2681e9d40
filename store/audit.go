package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/margenhq/margen"
)

// chain is an organisation's audit head, read under the org row lock.
type chain struct {
	seq        int64
	head       string
	sealedFrom int64  // first entry chained under the audit key (0: none yet)
	keyID      string // id of the key the chain is sealed with
	dirty      bool
}

const chainCols = "audit_seq, audit_head, audit_sealed_from, audit_key_id"

func (c *chain) scanArgs() []any { return []any{&c.seq, &c.head, &c.sealedFrom, &c.keyID} }

// lockOrg locks one organisation row for the rest of the transaction and
// returns its audit head. Every write locks its organisation first: that
// orders all writers of one organisation (and keeps the audit chain linear)
// and, because the org row is always the first lock taken, rules out
// deadlocks between writers.
func (t *wtx) lockOrg(orgID string) (*chain, error) {
	c := &chain{}
	err := t.queryRow("SELECT "+chainCols+" FROM orgs WHERE id = ?"+t.db.d.forNoKeyUpdate(), orgID).
		Scan(c.scanArgs()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound("org")
	}
	if err != nil {
		return nil, dbErr("lock org", err)
	}
	return c, nil
}

// errAuditKey refuses to write to, or verify, a chain sealed under another
// key: writing would fork it, verifying would report tampering that is a
// configuration mistake.
func errAuditKey(orgID, sealed, have string) error {
	return &margen.Error{Code: margen.EINTERNAL, Key: "error.internal",
		Err: fmt.Errorf("audit key does not match: organisation %s's audit trail is sealed with key %s, this process has key %s (set --audit-key-file / MARGEN_AUDIT_KEY_FILE to the key every instance shares)", orgID, sealed, have)}
}

// newAudit composes an audit entry; data is marshalled to JSON.
func newAudit(orgID, actor string, action margen.AuditAction, subject string, data any, at time.Time) margen.AuditEntry {
	raw, err := json.Marshal(data)
	if err != nil {
		// data is always a map of plain values built here: a failure is a bug.
		panic("store: audit data: " + err.Error())
	}
	return margen.AuditEntry{OrgID: orgID, At: at, Actor: actor, Action: action, Subject: subject, Data: raw}
}

// link chains e onto c under the audit key.
func (t *wtx) link(c *chain, e *margen.AuditEntry, now time.Time) {
	if e.At.IsZero() {
		e.At = now
	}
	// The hash covers the time as stored: microseconds, UTC.
	e.At = e.At.UTC().Truncate(time.Microsecond)
	e.Seq = c.seq + 1
	e.PrevHash = c.head
	if t.hasher == nil {
		t.hasher = t.db.key.Hasher()
	}
	e.Hash = t.hasher.Hash(e)
	c.seq, c.head, c.dirty = e.Seq, e.Hash, true
}

// appendAudit chains entries onto their organisations' heads (filling Seq,
// PrevHash and Hash in place), inserts them and moves the heads. chains
// holds the heads already locked in this transaction; an organisation not
// in it is locked here. The last entry of each organisation also commits
// to the rows the transaction touched; a chain not sealed yet is sealed
// first (see sealEntry).
func (t *wtx) appendAudit(chains map[string]*chain, entries []margen.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		// The vocabulary is a public contract (GET /api/v1/audit, the
		// events derived from it): nothing outside it is written.
		if e := &entries[i]; !e.Action.Known() {
			return &margen.Error{Code: margen.EINTERNAL, Key: "error.internal",
				Err: fmt.Errorf("store: audit action %q of org %s is not registered in margen.AuditActions", e.Action, e.OrgID)}
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	// Rows named by t.touch go to the last entry of their organisation
	// (the decision batch names none: its entries carry their rows).
	var last map[string]int
	if len(t.touched) > 0 {
		last = make(map[string]int, 1)
		for i := range entries {
			last[entries[i].OrgID] = i
		}
	}
	// out is entries, with any sealing entry before its organisation's
	// first one; allocated only when a chain is sealed here.
	var out []*margen.AuditEntry
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
		if c.sealedFrom == 0 && out == nil {
			out = make([]*margen.AuditEntry, 0, len(entries)+1)
			for j := range i {
				out = append(out, &entries[j])
			}
		}
		if err := t.sealChain(c, e.OrgID, now, &out); err != nil {
			return err
		}
		if last != nil && last[e.OrgID] == i {
			rows, err := t.touchedRows(e.OrgID)
			if err != nil {
				return err
			}
			e.Rows += rows
		}
		t.link(c, e, now)
		if out != nil {
			out = append(out, e)
		}
	}
	d := t.db.d
	n, at := len(entries), func(i int) *margen.AuditEntry { return &entries[i] }
	if out != nil {
		n, at = len(out), func(i int) *margen.AuditEntry { return out[i] }
	}
	err := t.insertBatch(&auditInsert, n, func(i int, a []any) []any {
		return auditArgs(d, at(i), a)
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
		if _, err := t.exec("UPDATE orgs SET audit_seq = ?, audit_head = ?, audit_sealed_from = ?, audit_key_id = ? WHERE id = ?",
			c.seq, c.head, c.sealedFrom, c.keyID, id); err != nil {
			return dbErr("move audit head", err)
		}
		c.dirty = false
	}
	return nil
}

// sealChain checks that c is sealed with this process's key, and seals it
// (appending the sealing entry to out) when it is not sealed yet.
func (t *wtx) sealChain(c *chain, orgID string, now time.Time, out *[]*margen.AuditEntry) error {
	if c.sealedFrom > 0 {
		if c.keyID != t.db.key.ID() {
			return errAuditKey(orgID, c.keyID, t.db.key.ID())
		}
		return nil
	}
	s, err := t.sealEntry(orgID)
	if err != nil {
		return err
	}
	t.link(c, &s, now)
	c.sealedFrom, c.keyID = s.Seq, t.db.key.ID()
	*out = append(*out, &s)
	return nil
}

// audit is appendAudit for the single entry of a simple write.
func (t *wtx) audit(c *chain, e margen.AuditEntry) error {
	return t.appendAudit(map[string]*chain{e.OrgID: c}, []margen.AuditEntry{e})
}

const auditSelect = "SELECT org_id, seq, at, actor, action, subject, data, prev_hash, hash, row_digests FROM audit_log"

func scanAudit(s scanner) (margen.AuditEntry, error) {
	var e margen.AuditEntry
	var data string
	err := s.Scan(&e.OrgID, &e.Seq, tsCol{&e.At}, &e.Actor, &e.Action, &e.Subject, &data, &e.PrevHash, &e.Hash, &e.Rows)
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

// VerifyAudit is CheckAudit reduced to a number: 0 when the trail and
// every sealed row verify, else the seq of the first problem (the broken
// link, or the entry whose commitment a row no longer matches; for a row
// nothing commits to, the seq after the head). checked is the number of
// entries that verified.
func (db *DB) VerifyAudit(ctx context.Context, orgID string) (broken int64, checked int64, err error) {
	rep, err := db.CheckAudit(ctx, orgID)
	if err != nil {
		return 0, rep.Entries, err
	}
	if rep.OK() {
		return 0, rep.Entries, nil
	}
	p := rep.Problems[0]
	if rep.Broken != 0 {
		return rep.Broken, rep.Entries, nil
	}
	if p.Seq == 0 {
		return rep.Entries + 1, rep.Entries, nil
	}
	return p.Seq, rep.Entries, nil
}
