package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/margenhq/margen"
)

// maxProblems bounds the problems a report lists (ProblemCount counts all).
const maxProblems = 200

// sealJoinKeys is about how many row commitments the audit check holds in
// memory at once: the commitments and the rows are spread over temporary
// partition files by a hash of the row's table and key, and checked one
// partition at a time (a grace hash join), so the check's memory does not
// grow with the organisation.
const sealJoinKeys = 100_000

// SetAuditCheckKeys sets about how many row commitments the audit check
// holds in memory at once (0: the default, 100,000, about 20 MB); fewer
// means more temporary partition files. For tests, and for hosts short of
// memory.
func (db *DB) SetAuditCheckKeys(n int) { db.auditCheckKeys = n }

// CheckAudit verifies the organisation's whole audit trail in one snapshot:
// the chain (each link, SHA-256 before the seal and HMAC under the audit key
// from it on, and the head kept on the organisation row), and every row of
// the sealed tables against the last digest the chain committed to for it.
// It reports a chain sealed under another key, an unsealed chain, a broken
// link, and each changed, deleted or uncommitted row by table and key.
func (db *DB) CheckAudit(ctx context.Context, orgID string) (margen.AuditReport, error) {
	return db.CheckAuditFrom(ctx, orgID, nil)
}

// CheckAuditFrom is CheckAudit from a checkpoint the caller trusts (its
// signature verified, see margen.VerifyCheckpoint), or the whole trail when
// from is nil. From a checkpoint the entry at its seq must still have its
// hash; the links after it are verified, and each row the entries after it
// commit to is read back and compared with its last commitment. What the
// checkpoint vouches for (the links up to it, the rows committed only
// before it) and rows no entry commits to are not re-read: a full check
// (from nil) is the one that finds those.
func (db *DB) CheckAuditFrom(ctx context.Context, orgID string, from *margen.Checkpoint) (margen.AuditReport, error) {
	var rep margen.AuditReport
	if from != nil && from.OrgID != orgID {
		return rep, margen.Invalid("checkpoint", "error.checkpoint_org")
	}
	err := db.scanSnapshot(ctx, "check audit", func(q queryFunc) error {
		var err error
		rep, err = db.checkAudit(ctx, q, orgID, from)
		return err
	})
	return rep, err
}

func (db *DB) checkAudit(ctx context.Context, q queryFunc, orgID string, from *margen.Checkpoint) (margen.AuditReport, error) {
	var rep margen.AuditReport
	var c chain
	rows, err := q("SELECT "+chainCols+" FROM orgs WHERE id = ?", orgID)
	if err != nil {
		return rep, dbErr("check audit", err)
	}
	if !rows.Next() {
		rows.Close()
		if err := rows.Err(); err != nil {
			return rep, dbErr("check audit", err)
		}
		return rep, margen.NotFound("org")
	}
	err = rows.Scan(c.scanArgs()...)
	rows.Close()
	if err != nil {
		return rep, dbErr("check audit", err)
	}
	rep.SealedFrom, rep.KeyID = c.sealedFrom, c.keyID
	// Entries before v2From committed to rows without the columns of
	// migration 00012 (sealTable.added).
	var v2From int64
	rows, err = q("SELECT audit_digest_v2_from FROM orgs WHERE id = ?", orgID)
	if err != nil {
		return rep, dbErr("check audit", err)
	}
	if rows.Next() {
		err = rows.Scan(&v2From)
	}
	rows.Close()
	if err != nil {
		return rep, dbErr("check audit", err)
	}
	// rowDigests is a row's digest and, when a commitment older than
	// v2From may name it, its digest as such an entry committed to it.
	var enc, encOld [44]byte
	var vbuf []byte
	rowDigests := func(st *sealTable, sum [sha256.Size]byte, vals []any) (digest, old string) {
		digest = string(base64.RawURLEncoding.AppendEncode(enc[:0], sum[:]))
		if v2From > 1 {
			if o, ok := st.digestBeforeV2(&vbuf, vals); ok {
				old = string(base64.RawURLEncoding.AppendEncode(encOld[:0], o[:]))
			}
		}
		return digest, old
	}
	problem := func(p margen.AuditProblem) {
		rep.ProblemCount++
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, p)
		}
	}
	switch {
	case c.sealedFrom == 0 && c.seq > 0:
		problem(margen.AuditProblem{What: "unsealed", Seq: 1,
			Detail: "the audit trail is not sealed under an audit key: run margen migrate (or margen serve) with the key to seal it"})
		return rep, nil
	case c.sealedFrom > 0 && c.keyID != db.key.ID():
		problem(margen.AuditProblem{What: "key", Seq: c.sealedFrom,
			Detail: fmt.Sprintf("audit key does not match: the trail is sealed with key %s, this check has key %s", c.keyID, db.key.ID())})
		return rep, nil
	}
	broke := func(seq int64, detail string) {
		rep.Broken = seq
		problem(margen.AuditProblem{What: "chain", Seq: seq, Detail: detail})
	}
	var start int64 // the first seq read
	if from != nil {
		rep.From, start = from.Seq, from.Seq
		if from.Seq < 1 || from.Seq > c.seq {
			broke(min(max(from.Seq, 1), c.seq+1), fmt.Sprintf("the checkpoint names entry %d, but the trail ends at entry %d: its tail was cut", from.Seq, c.seq))
			return rep, nil
		}
	}

	// How many rows to expect, to spread them over enough partitions.
	var expect int64
	if from == nil {
		for i := range sealTables {
			n, err := countRows(q, sealTables[i].name, orgID)
			if err != nil {
				return rep, err
			}
			expect += n
		}
	} else {
		expect = 8 * (c.seq - from.Seq) // a decision's entry commits about five rows
	}
	per := int64(sealJoinKeys)
	if db.auditCheckKeys > 0 {
		per = int64(db.auditCheckKeys)
	}
	join, err := newSealJoin(int(min(1+expect/per, 1024)))
	if err != nil {
		return rep, err
	}
	defer join.close()

	// The chain, spreading the commitments over the partitions.
	rows, err = q(auditSelect+" WHERE org_id = ? AND seq >= ? ORDER BY seq", orgID, start)
	if err != nil {
		return rep, dbErr("check audit", err)
	}
	prev := ""
	hasher := db.key.Hasher()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			rows.Close()
			return rep, dbErr("check audit", err)
		}
		if from != nil && rep.Entries == 0 {
			// The checkpoint's entry: it vouches for the history before.
			if e.Seq != from.Seq || e.Hash != from.Hash {
				broke(from.Seq, fmt.Sprintf("audit entry %d no longer has the hash the checkpoint signed: history before it was rewritten", from.Seq))
				break
			}
			prev, rep.Entries = e.Hash, e.Seq
			continue
		}
		want := rep.Entries + 1
		sealed := c.sealedFrom > 0 && e.Seq >= c.sealedFrom
		switch {
		case e.Seq != want:
			broke(want, fmt.Sprintf("audit entry %d is missing (deleted), or an entry was inserted", want))
		case e.PrevHash != prev:
			broke(e.Seq, fmt.Sprintf("audit entry %d does not name the hash of entry %d", e.Seq, e.Seq-1))
		case sealed && hasher.Hash(&e) != e.Hash, !sealed && margen.ChainHash(&e) != e.Hash:
			broke(e.Seq, fmt.Sprintf("audit entry %d does not verify under the audit key: it was edited (or re-hashed without the key)", e.Seq))
		case !sealed && (e.Rows != "" || e.Action == margen.ActionAuditSeal):
			broke(e.Seq, fmt.Sprintf("audit entry %d is sealed but the organisation row says the seal starts at %d", e.Seq, c.sealedFrom))
		case sealed && e.Seq == c.sealedFrom && e.Seq != 1 && e.Action != margen.ActionAuditSeal:
			broke(e.Seq, fmt.Sprintf("audit entry %d is not the seal the organisation row names", e.Seq))
		}
		if rep.Broken != 0 {
			break
		}
		for line := range strings.Lines(e.Rows) {
			line = strings.TrimSuffix(line, "\n")
			if line == "" {
				continue
			}
			table, rest, _ := strings.Cut(line, " ")
			key, digest, _ := strings.Cut(rest, " ")
			if err := join.add(recCommit, table, key, e.Seq, digest, ""); err != nil {
				rows.Close()
				return rep, err
			}
		}
		prev = e.Hash
		rep.Entries++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, dbErr("check audit", err)
	}
	if rep.Broken != 0 {
		return rep, nil // the commitments of a broken chain prove nothing
	}
	if from != nil && rep.Entries == 0 {
		broke(from.Seq, fmt.Sprintf("audit entry %d, which the checkpoint signed, is gone", from.Seq))
		return rep, nil
	}
	if rep.Entries != c.seq || prev != c.head {
		broke(min(rep.Entries, c.seq)+1, "the chain does not end at the head kept on the organisation row: its tail was cut, or entries were appended behind the store's back")
		return rep, nil
	}

	// Every row against the chain's last word on it. From a checkpoint,
	// the rows committed after it are read back one by one; otherwise
	// every row of the sealed tables is read, once.
	if from == nil {
		for i := range sealTables {
			st := &sealTables[i]
			var addErr error
			err := scanSealed(q, db.d.pg, st, orgID, "", nil, func(key string, sum [sha256.Size]byte, vals []any) {
				if addErr == nil {
					digest, old := rowDigests(st, sum, vals)
					addErr = join.add(recRow, st.name, key, 0, digest, old)
				}
			})
			if err == nil {
				err = addErr
			}
			if err != nil {
				return rep, err
			}
			if err := ctx.Err(); err != nil {
				return rep, err
			}
		}
	}
	type commit struct {
		digest string
		seq    int64
	}
	for p := range join.parts {
		commits := map[string]commit{}
		check := func(k, digest, old string) {
			table, key, _ := strings.Cut(k, " ")
			rep.Rows++
			cm, ok := commits[k]
			if ok && cm.digest != digest && cm.seq < v2From && old != "" {
				digest = old
			}
			switch {
			case !ok:
				problem(margen.AuditProblem{Table: table, Key: key, What: "uncommitted",
					Detail: fmt.Sprintf("%s %s: no audit entry commits to this row (written behind the store's back)", table, key)})
			case cm.digest != digest:
				problem(margen.AuditProblem{Table: table, Key: key, What: "changed", Seq: cm.seq,
					Detail: fmt.Sprintf("%s %s: its content differs from what audit entry %d committed to", table, key, cm.seq)})
			}
			delete(commits, k)
		}
		err := join.each(p, func(kind byte, k string, seq int64, digest, old string) {
			if kind == recCommit {
				commits[k] = commit{digest: digest, seq: seq}
			} else {
				check(k, digest, old)
			}
		})
		if err != nil {
			return rep, err
		}
		keys := make([]string, 0, len(commits))
		for k := range commits {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if from != nil {
				// Read the committed row back.
				table, key, _ := strings.Cut(k, " ")
				st := sealTableByName(table)
				if st == nil {
					continue // a table no longer sealed: nothing to read
				}
				err := scanSealed(q, db.d.pg, st, orgID, " AND "+st.key+" = ?", []any{key}, func(_ string, sum [sha256.Size]byte, vals []any) {
					digest, old := rowDigests(st, sum, vals)
					check(k, digest, old)
				})
				if err != nil {
					return rep, err
				}
			}
			cm, ok := commits[k]
			if !ok {
				continue
			}
			table, key, _ := strings.Cut(k, " ")
			problem(margen.AuditProblem{Table: table, Key: key, What: "deleted", Seq: cm.seq,
				Detail: fmt.Sprintf("%s %s: audit entry %d committed to this row; it is gone", table, key, cm.seq)})
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func sealTableByName(name string) *sealTable {
	for i := range sealTables {
		if sealTables[i].name == name {
			return &sealTables[i]
		}
	}
	return nil
}

// countRows counts the organisation's rows of a sealed table.
func countRows(q queryFunc, table, orgID string) (int64, error) {
	rows, err := q("SELECT COUNT(*) FROM "+table+" WHERE org_id = ?", orgID)
	if err != nil {
		return 0, dbErr("check audit", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, dbErr("check audit", err)
		}
	}
	return n, dbErr("check audit", rows.Err())
}

// Record kinds of the seal join.
const (
	recCommit byte = 'c' // a commitment of an audit entry
	recRow    byte = 'r' // a row as stored
)

// sealJoin spreads records "table key" -> (seq, digest) over partitions by
// a hash of table and key, so each partition can be checked alone. One
// partition stays in memory; more are temporary files, removed by close.
// Within a partition, records come back in the order they were added.
type sealJoin struct {
	parts []sealPart
	rec   []byte
}

type sealPart struct {
	mem bytes.Buffer
	f   *os.File
	w   *bufio.Writer
}

func newSealJoin(n int) (*sealJoin, error) {
	j := &sealJoin{parts: make([]sealPart, max(n, 1))}
	if n <= 1 {
		return j, nil
	}
	for i := range j.parts {
		f, err := os.CreateTemp("", "margen-audit-check-*")
		if err != nil {
			j.close()
			return nil, fmt.Errorf("store: check audit: %w", err)
		}
		os.Remove(f.Name()) // gone when closed, even if the process dies
		// Every partition's buffer is live at once (up to 1,024 of
		// them: 8 MB at this size, where 32 KB held 16 MB at 10 million
		// decisions); the one partition read back at a time reads in
		// larger blocks.
		j.parts[i].f, j.parts[i].w = f, bufio.NewWriterSize(f, 8<<10)
	}
	return j, nil
}

func (j *sealJoin) add(kind byte, table, key string, seq int64, digest, old string) error {
	b := append(j.rec[:0], kind)
	b = binary.AppendUvarint(b, uint64(len(table)+1+len(key)))
	b = append(append(append(b, table...), ' '), key...)
	b = binary.AppendVarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(digest)))
	b = append(b, digest...)
	b = binary.AppendUvarint(b, uint64(len(old)))
	b = append(b, old...)
	j.rec = b
	p := &j.parts[0]
	if len(j.parts) > 1 {
		h := fnv.New64a()
		h.Write([]byte(table))
		h.Write([]byte{' '})
		h.Write([]byte(key))
		p = &j.parts[h.Sum64()%uint64(len(j.parts))]
	}
	var err error
	if p.w != nil {
		_, err = p.w.Write(b)
	} else {
		_, err = p.mem.Write(b)
	}
	if err != nil {
		return fmt.Errorf("store: check audit: %w", err)
	}
	return nil
}

// each reads partition p back, record by record.
func (j *sealJoin) each(p int, fn func(kind byte, key string, seq int64, digest, old string)) error {
	part := &j.parts[p]
	var r *bufio.Reader
	if part.f != nil {
		if err := part.w.Flush(); err != nil {
			return fmt.Errorf("store: check audit: %w", err)
		}
		if _, err := part.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("store: check audit: %w", err)
		}
		r = bufio.NewReaderSize(part.f, 64<<10)
	} else {
		r = bufio.NewReader(&part.mem)
	}
	var buf []byte
	for {
		kind, err := r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: check audit: %w", err)
		}
		key, err := readBytes(r, &buf)
		if err != nil {
			return err
		}
		k := string(key)
		seq, err := binary.ReadVarint(r)
		if err != nil {
			return fmt.Errorf("store: check audit: %w", err)
		}
		digest, err := readBytes(r, &buf)
		if err != nil {
			return err
		}
		d := string(digest)
		old, err := readBytes(r, &buf)
		if err != nil {
			return err
		}
		fn(kind, k, seq, d, string(old))
	}
}

func readBytes(r *bufio.Reader, buf *[]byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err == nil && n > 1<<20 {
		err = errors.New("record too long")
	}
	if err != nil {
		return nil, fmt.Errorf("store: check audit: %w", err)
	}
	if uint64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("store: check audit: %w", err)
	}
	return b, nil
}

func (j *sealJoin) close() {
	for i := range j.parts {
		if f := j.parts[i].f; f != nil {
			f.Close()
		}
	}
}
