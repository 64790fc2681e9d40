package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// hasProblem reports whether rep names what on table's row key.
func hasProblem(rep margen.AuditReport, table, key, what string) bool {
	return slices.ContainsFunc(rep.Problems, func(p margen.AuditProblem) bool {
		return p.Table == table && p.Key == key && p.What == what
	})
}

// ledgerEntryOf returns the id of one ledger entry of a decision.
func ledgerEntryOf(t *testing.T, db *store.DB, orgID, decisionID string) string {
	t.Helper()
	var id string
	if err := db.SQL().QueryRowContext(ctxT(t), db.Rebind("SELECT id FROM ledger_entries WHERE org_id = ? AND decision_id = ? ORDER BY id"),
		orgID, decisionID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// testAuditCheckPartitioned: with the commitments spread over many
// partition files (as for an organisation of millions of rows), the check
// still finds a changed, a deleted and an uncommitted row, and a clean
// organisation checks clean.
func testAuditCheckPartitioned(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	db.SetAuditCheckKeys(2) // a handful of rows per partition
	clean := seedSealed(t, db, "part-clean")
	s := seedSealed(t, db, "part-tamper")
	rep, err := db.CheckAudit(ctx, s.org.ID)
	if err != nil || !rep.OK() || rep.Rows < 15 {
		t.Fatalf("untouched: %+v, %v", rep, err)
	}
	rows := rep.Rows
	entry := ledgerEntryOf(t, db, s.org.ID, s.decision.ID)
	exec(t, db, "UPDATE ledger_entries SET amount = amount + 1 WHERE org_id = ? AND id = ?", s.org.ID, entry)
	exec(t, db, "DELETE FROM refusals WHERE org_id = ? AND id = ?", s.org.ID, s.refusal.ID)
	exec(t, db, `INSERT INTO teams (org_id, id, slug, name, created_at)
		SELECT org_id, 'team_forged', 'forged', 'Forged', created_at FROM decisions WHERE org_id = ? AND id = ?`,
		s.org.ID, s.decision.ID)
	rep, err = db.CheckAudit(ctx, s.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.ProblemCount != 3 || !hasProblem(rep, "ledger_entries", entry, "changed") ||
		!hasProblem(rep, "refusals", s.refusal.ID, "deleted") || !hasProblem(rep, "teams", "team_forged", "uncommitted") ||
		rep.Rows != rows {
		t.Fatalf("after three edits: %+v", rep)
	}
	// The ledger itself reports the edited entry, whatever the seal says.
	lrep, err := db.CheckLedger(ctx, s.org.ID)
	if err != nil || lrep.OK() || !slices.ContainsFunc(lrep.Mismatches, func(m margen.LedgerMismatch) bool {
		return m.What == "decision_posted" && m.Got == m.Want+1
	}) {
		t.Fatalf("CheckLedger after editing an entry: %+v, %v", lrep, err)
	}
	if rep, err := db.CheckAudit(ctx, clean.org.ID); err != nil || !rep.OK() {
		t.Fatalf("the untouched organisation: %+v, %v", rep, err)
	}
}

// testAuditCheckFrom: from a checkpoint, only the history after it is
// walked and only the rows committed after it are read back; the entry the
// checkpoint names must still have its hash.
func testAuditCheckFrom(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	s := seedSealed(t, db, "from")
	full, err := db.CheckAudit(ctx, s.org.ID)
	if err != nil || !full.OK() {
		t.Fatalf("full check: %+v, %v", full, err)
	}
	head := lastAudit(t, db, s.org.ID)
	cp := &margen.Checkpoint{OrgID: s.org.ID, Seq: head.Seq, Hash: head.Hash}
	rep, err := db.CheckAuditFrom(ctx, s.org.ID, cp)
	if err != nil || !rep.OK() || rep.From != head.Seq || rep.Entries != head.Seq || rep.Rows != 0 {
		t.Fatalf("from the head: %+v, %v", rep, err)
	}
	// Another organisation's checkpoint is refused.
	other := seedSealed(t, db, "from-other")
	if _, err := db.CheckAuditFrom(ctx, other.org.ID, cp); !margen.IsCode(err, margen.EINVALID) {
		t.Fatalf("another organisation's checkpoint: %v", err)
	}

	// Written after the checkpoint: a decision (with its entries), then one
	// of its entries edited.
	d := &Decider{Limit: 100000, At: clockAt.Add(time.Hour), Reqs: []Request{
		{OrgID: s.org.ID, MemberID: s.member.ID, CustomerRef: "c9", Amount: 70}}}
	decide(t, db, d)
	rep, err = db.CheckAuditFrom(ctx, s.org.ID, cp)
	if err != nil || !rep.OK() || rep.Entries != head.Seq+1 || rep.Rows < 4 || rep.Rows >= full.Rows {
		t.Fatalf("from the checkpoint after a decision: %+v (full check read %d rows), %v", rep, full.Rows, err)
	}
	entry := ledgerEntryOf(t, db, s.org.ID, d.Out[0].ID)
	exec(t, db, "UPDATE ledger_entries SET amount = 1 WHERE org_id = ? AND id = ?", s.org.ID, entry)
	rep, err = db.CheckAuditFrom(ctx, s.org.ID, cp)
	if err != nil || rep.OK() || !hasProblem(rep, "ledger_entries", entry, "changed") {
		t.Fatalf("from the checkpoint after editing a new entry: %+v, %v", rep, err)
	}
	// A row deleted after the checkpoint.
	exec(t, db, "DELETE FROM ledger_entries WHERE org_id = ? AND id = ?", s.org.ID, entry)
	rep, err = db.CheckAuditFrom(ctx, s.org.ID, cp)
	if err != nil || rep.OK() || !hasProblem(rep, "ledger_entries", entry, "deleted") {
		t.Fatalf("from the checkpoint after deleting a new entry: %+v, %v", rep, err)
	}
	// The checkpoint's entry rewritten: what it vouched for is gone.
	exec(t, db, "UPDATE audit_log SET hash = 'forged' WHERE org_id = ? AND seq = ?", s.org.ID, head.Seq)
	rep, err = db.CheckAuditFrom(ctx, s.org.ID, cp)
	if err != nil || rep.OK() || rep.Broken != head.Seq {
		t.Fatalf("from a checkpoint whose entry was rewritten: %+v, %v", rep, err)
	}
	// A checkpoint beyond the trail: its tail was cut.
	rep, err = db.CheckAuditFrom(ctx, s.org.ID, &margen.Checkpoint{OrgID: s.org.ID, Seq: head.Seq + 100, Hash: "x"})
	if err != nil || rep.OK() || rep.Broken == 0 {
		t.Fatalf("from a checkpoint beyond the head: %+v, %v", rep, err)
	}
}

// testLedgerCheckReports: reports are stored per organisation, the newest
// served first (or the newest clean one), the oldest dropped beyond ten.
func testLedgerCheckReports(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	a, _ := newOrg(t, db, "reports-a")
	b, _ := newOrg(t, db, "reports-b")
	if _, err := db.LatestLedgerCheck(ctx, a.ID, false); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("no report yet: %v", err)
	}
	var ids []string
	for i := range 12 {
		at := clockAt.Add(time.Duration(i) * time.Minute)
		c := &margen.LedgerCheck{OrgID: a.ID, StartedAt: at, FinishedAt: at.Add(time.Second), OK: i == 1,
			Ledger: margen.LedgerReport{Accounts: i, Mismatches: []margen.LedgerMismatch{}}}
		if err := db.SaveLedgerCheck(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	got, err := db.LatestLedgerCheck(ctx, a.ID, false)
	if err != nil || got.ID != ids[11] || got.Ledger.Accounts != 11 || !got.FinishedAt.Equal(clockAt.Add(11*time.Minute+time.Second)) {
		t.Fatalf("latest = %+v, %v", got, err)
	}
	// Ten kept: the clean one (the second) was among the two dropped.
	if _, err := db.LatestLedgerCheck(ctx, a.ID, true); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("latest clean after it was dropped: %v", err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM ledger_checks WHERE org_id = ?", a.ID); n != 10 {
		t.Fatalf("%d reports kept, want 10", n)
	}
	c := &margen.LedgerCheck{OrgID: a.ID, StartedAt: clockAt.Add(time.Hour), FinishedAt: clockAt.Add(time.Hour), OK: true}
	if err := db.SaveLedgerCheck(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := db.LatestLedgerCheck(ctx, a.ID, true); err != nil || got.ID != c.ID || !got.OK {
		t.Fatalf("latest clean = %+v, %v", got, err)
	}
	if _, err := db.LatestLedgerCheck(ctx, b.ID, false); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("another organisation's report: %v", err)
	}
	// Queued: a ledger.check job of the organisation not finished.
	if q, err := db.LedgerCheckQueued(ctx, a.ID); err != nil || q {
		t.Fatalf("queued before any job = %v, %v", q, err)
	}
	if _, err := db.EnqueueJob(ctx, &margen.Job{Kind: margen.JobLedgerCheck, OrgID: a.ID, Payload: []byte(`{}`),
		RunAt: clockAt, CreatedAt: clockAt}); err != nil {
		t.Fatal(err)
	}
	if q, err := db.LedgerCheckQueued(ctx, a.ID); err != nil || !q {
		t.Fatalf("queued = %v, %v", q, err)
	}
	if q, err := db.LedgerCheckQueued(ctx, b.ID); err != nil || q {
		t.Fatalf("another organisation queued = %v, %v", q, err)
	}
}
