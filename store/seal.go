package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// The seal: every audit entry commits to the full content of the rows its
// transaction wrote. A row's digest is the SHA-256 of its table name and
// every stored column, in a stable encoding (sealTables); the entry carries
// one line "table key digest" per row (AuditEntry.Rows), and its keyed hash
// covers them. CheckAudit re-reads every row of the sealed tables and
// compares it with the last digest the chain committed to for it, so a
// changed row, a deleted row and a row no entry commits to are each found.
//
// The decision batch computes its digests in Go from the values it
// inserts (no extra read on the hot path); the other writes name the rows
// they touched (wtx.touch) and the store reads them back, in the same
// transaction, when it appends the audit entry.

// sealTable is one table under the seal.
type sealTable struct {
	name string
	key  string   // the column naming a row within its organisation
	cols []string // every stored column, in order
	json []string // JSON columns (read as text on PostgreSQL)
	// added counts the last columns of cols that migration 00012 added
	// (decisions.team, acts.team, reactions.score). Rows committed to
	// before an organisation's trail was migrated (audit entries before
	// orgs.audit_digest_v2_from) were digested without them; CheckAudit
	// verifies those commitments over the other columns.
	added int
}

// sealTables are the tables whose rows are recorded facts. Budget accounts
// are balances re-derived by CheckLedger; idempotency records, webhooks and
// deliveries are delivery machinery, not facts.
var sealTables = []sealTable{
	{name: "teams", key: "id", cols: []string{"org_id", "id", "slug", "name", "created_at"}},
	{name: "members", key: "id", cols: []string{"org_id", "id", "login", "name", "access", "role", "team", "language",
		"active", "password_hash", "created_at"}},
	{name: "tokens", key: "id", cols: []string{"id", "org_id", "member_id", "hash", "name", "created_at", "revoked_at"}},
	{name: "customers", key: "id", cols: customerCols, json: []string{"tags"}},
	{name: "policy_versions", key: "version", cols: []string{"org_id", "version", "source", "active", "created_by",
		"note", "created_at"}},
	{name: "decisions", key: "id", cols: decisionCols, json: []string{"context", "explanation_args", "budgets"}, added: 1},
	{name: "acts", key: "id", cols: actCols, added: 1},
	{name: "reactions", key: "id", cols: reactionCols, added: 1},
	{name: "refusals", key: "id", cols: refusalCols},
	{name: "approvals", key: "id", cols: approvalReadCols},
	{name: "approval_events", key: "id", cols: []string{"org_id", "id", "approval_id", "kind", "actor", "from_role",
		"to_role", "comment", "at"}},
	{name: "ledger_entries", key: "id", cols: ledgerCols},
	{name: "survey_settings", key: "org_id", cols: surveySettingsCols},
	{name: "survey_points", key: "id", cols: surveyPointCols},
	{name: "survey_links", key: "id", cols: surveyLinkCols},
	{name: "survey_answers", key: "id", cols: surveyAnswerCols},
	{name: "survey_cases", key: "id", cols: caseCols},
	{name: "case_steps", key: "id", cols: caseStepCols},
	{name: "case_settings", key: "org_id", cols: caseSettingsCols},
}

// digestBeforeV2 is the digest of a row (vals in cols order) as an audit
// entry written before migration 00012 committed to it: without the added
// columns, which that migration filled in and which are therefore not
// sealed for those rows. ok is false for a table that gained no column.
// CheckAudit compares it with a commitment older than the organisation's
// audit_digest_v2_from when the full digest differs.
func (st *sealTable) digestBeforeV2(buf *[]byte, vals []any) (sum [sha256.Size]byte, ok bool) {
	if st.added == 0 {
		return sum, false
	}
	return rowDigest(buf, st.name, vals[:len(vals)-st.added]), true
}

func sealTableNamed(name string) *sealTable {
	for i := range sealTables {
		if sealTables[i].name == name {
			return &sealTables[i]
		}
	}
	panic("store: no sealed table " + name)
}

// selectList is the table's key and columns as a SELECT list for the
// engine (JSON as its stored text on PostgreSQL).
func (st *sealTable) selectList(pg bool) string {
	var b strings.Builder
	b.WriteString(st.key)
	for _, c := range st.cols {
		b.WriteString(", ")
		b.WriteString(c)
		if pg && contains(st.json, c) {
			b.WriteString("::text")
		}
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rowDigest is the digest of one row: its table and every column value,
// each tagged (and text length-prefixed). Values are normalised so that
// what Go writes and what either engine reads back encode alike: booleans
// and times as integers (times in unix microseconds), text and bytes as
// bytes. buf is scratch space, reused across rows.
func rowDigest(buf *[]byte, table string, vals []any) [sha256.Size]byte {
	b := putText((*buf)[:0], 't', table)
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, 'n')
		case bool:
			if x {
				b = putInt(b, 1)
			} else {
				b = putInt(b, 0)
			}
		case int64:
			b = putInt(b, x)
		case int:
			b = putInt(b, int64(x))
		case int32:
			b = putInt(b, int64(x))
		case time.Time:
			b = putInt(b, x.UTC().Truncate(time.Microsecond).UnixMicro())
		case *time.Time:
			if x == nil {
				b = append(b, 'n')
			} else {
				b = putInt(b, x.UTC().Truncate(time.Microsecond).UnixMicro())
			}
		case string:
			b = putText(b, 's', x)
		case []byte:
			if x == nil {
				b = append(b, 'n')
			} else {
				b = putText(b, 's', string(x))
			}
		case float64:
			b = putText(b, 'f', strconv.FormatFloat(x, 'g', -1, 64))
		default:
			b = putText(b, '?', fmt.Sprint(x))
		}
	}
	*buf = b
	return sha256.Sum256(b)
}

func putInt(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 'i'), uint64(v))
}

func putText(b []byte, tag byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(append(b, tag), uint64(len(s)))
	return append(b, s...)
}

// sealLine writes one row's commitment, "table key digest", in
// AuditEntry.Rows.
func sealLine(b *strings.Builder, table, key string, sum [sha256.Size]byte) {
	var enc [44]byte
	b.WriteString(table)
	b.WriteByte(' ')
	b.WriteString(key)
	b.WriteByte(' ')
	b.Write(base64.RawURLEncoding.AppendEncode(enc[:0], sum[:]))
	b.WriteByte('\n')
}

// keyString is a key column's value as a commitment names it.
func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		return fmt.Sprint(x)
	}
}

// touch is a set of rows a write changed, read back when its audit entry
// is appended: the rows of table in the organisation where col = val, or
// (set) where col is one of the keys in the set (see keySet).
type touch struct {
	table, org, col string
	val             any
	set             string
}

// touch names rows this transaction wrote, so that the next audit entry of
// the organisation commits to their content.
func (t *wtx) touch(table, orgID, col string, val any) {
	t.touched = append(t.touched, touch{table: table, org: orgID, col: col, val: val})
}

// touchKeys names the rows of table in the organisation whose col is one of
// keys, read back in one query.
func (t *wtx) touchKeys(table, orgID, col string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	set, arg, err := t.db.keySet(keys)
	if err != nil {
		return err
	}
	t.touched = append(t.touched, touch{table: table, org: orgID, col: col, val: arg, set: set})
	return nil
}

// queryFunc runs a query written with ? placeholders.
type queryFunc func(query string, args ...any) (*sql.Rows, error)

// scanSealed reads rows of one sealed table of the organisation (where,
// with args after the org id, narrows them) and calls fn with each row's
// key, digest and column values (valid during the call only).
func scanSealed(q queryFunc, pg bool, st *sealTable, orgID, where string, args []any, fn func(key string, sum [sha256.Size]byte, vals []any)) error {
	rows, err := q("SELECT "+st.selectList(pg)+" FROM "+st.name+" WHERE org_id = ?"+where, append([]any{orgID}, args...)...)
	if err != nil {
		return dbErr("read sealed rows", err)
	}
	defer rows.Close()
	vals := make([]any, len(st.cols)+1)
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var buf []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return dbErr("read sealed rows", err)
		}
		fn(keyString(vals[0]), rowDigest(&buf, st.name, vals[1:]), vals[1:])
	}
	return dbErr("read sealed rows", rows.Err())
}

// readSeal writes a commitment line for each row scanSealed reads and
// returns how many it read.
func (t *wtx) readSeal(b *strings.Builder, st *sealTable, orgID, where string, args ...any) (int, error) {
	n := 0
	err := scanSealed(t.query, t.db.d.pg, st, orgID, where, args, func(key string, sum [sha256.Size]byte, _ []any) {
		sealLine(b, st.name, key, sum)
		n++
	})
	return n, err
}

// touchedRows reads back the rows touched for the organisation and returns
// their commitment lines; the touches are consumed.
func (t *wtx) touchedRows(orgID string) (string, error) {
	if len(t.touched) == 0 {
		return "", nil
	}
	var b strings.Builder
	rest := t.touched[:0]
	for _, x := range t.touched {
		if x.org != orgID {
			rest = append(rest, x)
			continue
		}
		where := " AND " + x.col + " = ?"
		if x.set != "" {
			where = " AND " + x.col + " IN (" + x.set + ")"
		}
		if _, err := t.readSeal(&b, sealTableNamed(x.table), orgID, where, x.val); err != nil {
			return "", err
		}
	}
	t.touched = rest
	return b.String(), nil
}

// sealEntry is the entry that seals an organisation's chain under the
// audit key: it commits to every row stored so far (rows written before
// the seal, by earlier versions, included), so from it on every row is
// accounted for.
func (t *wtx) sealEntry(orgID string) (margen.AuditEntry, error) {
	var b strings.Builder
	n := 0
	for i := range sealTables {
		k, err := t.readSeal(&b, &sealTables[i], orgID, "")
		if err != nil {
			return margen.AuditEntry{}, err
		}
		n += k
	}
	e := newAudit(orgID, "system", margen.ActionAuditSeal, orgID, map[string]any{"rows": n, "key_id": t.db.key.ID()}, time.Time{})
	e.Rows = b.String()
	return e, nil
}

// batchSeal collects the commitments of a decision batch's rows, computed
// from the values inserted, by the audit entry that is to carry them: the
// entry of the row's decision, else the organisation's last entry.
type batchSeal struct {
	entries    []margen.AuditEntry
	byDecision map[string]int // decision id -> entry index
	lines      []strings.Builder
	buf        []byte
}

func newBatchSeal(entries []margen.AuditEntry) *batchSeal {
	s := &batchSeal{entries: entries, byDecision: make(map[string]int, len(entries)),
		lines: make([]strings.Builder, len(entries))}
	for i := range entries {
		if entries[i].Action == margen.ActionDecisionCreate {
			s.byDecision[entries[i].Subject] = i
		}
	}
	return s
}

// lastOf is the index of the organisation's last entry, or -1.
func (s *batchSeal) lastOf(orgID string) int {
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i].OrgID == orgID {
			return i
		}
	}
	return -1
}

// add commits a row (vals in the table's sealed column order) to the entry
// of decisionID in orgID.
func (s *batchSeal) add(orgID, decisionID, table, key string, vals []any) {
	i, ok := s.byDecision[decisionID]
	if !ok {
		if i = s.lastOf(orgID); i < 0 {
			return // no entry of the organisation: CheckAudit reports the row
		}
	}
	if s.lines[i].Len() == 0 {
		s.lines[i].Grow(512) // a decision writes about five rows
	}
	sealLine(&s.lines[i], table, key, rowDigest(&s.buf, table, vals))
}

// apply appends the collected lines to the entries.
func (s *batchSeal) apply(entries []margen.AuditEntry) {
	for i := range entries {
		if s.lines[i].Len() > 0 {
			entries[i].Rows += s.lines[i].String()
		}
	}
}

// sealAll seals the chain of every organisation that is not sealed yet
// (databases written before audit keys existed): each gets an audit.seal
// entry, chained under the key, that commits to every row it holds.
func (db *DB) sealAll(ctx context.Context) (int, error) {
	rows, err := db.readPool().QueryContext(ctx, "SELECT id FROM orgs WHERE audit_sealed_from = 0")
	if err != nil {
		return 0, dbErr("seal audit trails", err)
	}
	ids, err := collect(rows, func(s scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		err := db.writeTx(ctx, func(t *wtx) error {
			c, err := t.lockOrg(id)
			if err != nil || c.sealedFrom > 0 {
				return err // sealed meanwhile by another process
			}
			e, err := t.sealEntry(id)
			if err != nil {
				return err
			}
			c.sealedFrom, c.keyID = c.seq+1, t.db.key.ID()
			n++
			return t.appendAudit(map[string]*chain{id: c}, []margen.AuditEntry{e})
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// checkKey refuses a key other than the one the organisations' trails are
// sealed with.
func (db *DB) checkKey(ctx context.Context) error {
	var slug, keyID string
	err := db.readPool().QueryRowContext(ctx, db.d.rebind(
		"SELECT slug, audit_key_id FROM orgs WHERE audit_sealed_from > 0 AND audit_key_id <> ? LIMIT 1"), db.key.ID()).
		Scan(&slug, &keyID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return dbErr("check audit key", err)
	}
	return fmt.Errorf("store: audit key does not match: organisation %s's audit trail is sealed with key %s, this process has key %s (set --audit-key-file, MARGEN_AUDIT_KEY_FILE or MARGEN_AUDIT_KEY to the key every instance shares)", slug, keyID, db.key.ID())
}
