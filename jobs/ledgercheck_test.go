package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
)

// checks is a small stand-in for the store: a trail of head entries, the
// checkpoint each audit check started from, and the saved reports.
type checks struct {
	org      margen.Org
	head     margen.AuditEntry
	audit    margen.AuditReport
	latest   *margen.LedgerCheck
	from     []*margen.Checkpoint
	saved    []margen.LedgerCheck
	failOrgs bool
}

func (c *checks) OrgByID(_ context.Context, id string) (*margen.Org, error) {
	if id != c.org.ID {
		return nil, margen.NotFound("org")
	}
	if c.failOrgs {
		return nil, errors.New("database down")
	}
	return &c.org, nil
}
func (c *checks) CheckLedger(context.Context, string) (margen.LedgerReport, error) {
	return margen.LedgerReport{Accounts: 3, Entries: 9, Mismatches: []margen.LedgerMismatch{}}, nil
}
func (c *checks) CheckAuditFrom(_ context.Context, _ string, from *margen.Checkpoint) (margen.AuditReport, error) {
	c.from = append(c.from, from)
	rep := c.audit
	if from != nil {
		rep.From = from.Seq
	}
	return rep, nil
}
func (c *checks) ListAudit(_ context.Context, _ string, after int64, _ int) ([]margen.AuditEntry, error) {
	if after == c.head.Seq-1 {
		return []margen.AuditEntry{c.head}, nil
	}
	return nil, nil
}
func (c *checks) SaveLedgerCheck(_ context.Context, r *margen.LedgerCheck) error {
	c.saved = append(c.saved, *r)
	return nil
}
func (c *checks) LatestLedgerCheck(_ context.Context, _ string, ok bool) (*margen.LedgerCheck, error) {
	if c.latest == nil || (ok && !c.latest.OK) {
		return nil, margen.NotFound("ledger_check")
	}
	return c.latest, nil
}

func TestLedgerCheckKind(t *testing.T) {
	key := margen.AuditKey("ledger check job test key, 32 b!")
	clk := newClock()
	st := &checks{org: margen.Org{ID: "org_1", Slug: "uno"}, head: margen.AuditEntry{Seq: 7, Hash: "h7"},
		audit: margen.AuditReport{Entries: 7, Rows: 20}}
	kind := jobs.LedgerCheck(st, key, clk)
	run := func(payload string) error {
		return kind.Handler(context.Background(), &jobs.Attempt{Job: &margen.Job{Kind: margen.JobLedgerCheck, OrgID: "org_1",
			Payload: []byte(payload)}, Now: clk.Now(), Max: 3})
	}

	// A clean check stores its report with the head signed.
	if err := run(`{}`); err != nil {
		t.Fatal(err)
	}
	r := st.saved[0]
	if !r.OK || r.OrgID != "org_1" || r.Checkpoint == nil || r.Checkpoint.Seq != 7 || r.Checkpoint.Hash != "h7" ||
		r.Checkpoint.Org != "uno" || st.from[0] != nil {
		t.Fatalf("report = %+v (from %v)", r, st.from[0])
	}
	if err := margen.VerifyCheckpoint(r.Checkpoint, key.PublicKey()); err != nil {
		t.Fatal(err)
	}

	// from_latest starts from that checkpoint; a forged one is not used.
	st.latest = &r
	if err := run(`{"from_latest":true}`); err != nil || st.from[1] == nil || st.from[1].Seq != 7 || st.saved[1].Audit.From != 7 {
		t.Fatalf("from latest: %v, %+v", err, st.from[1])
	}
	forged := r
	cp := *r.Checkpoint
	cp.Seq = 2
	forged.Checkpoint = &cp
	st.latest = &forged
	if err := run(`{"from_latest":true}`); err != nil || st.from[2] != nil {
		t.Fatalf("from a forged checkpoint: %v, %+v", err, st.from[2])
	}

	// A trail with problems: the report says so and carries no checkpoint.
	st.audit = margen.AuditReport{Entries: 7, ProblemCount: 1, Problems: []margen.AuditProblem{{What: "changed"}}}
	clk.Add(time.Minute)
	if err := run(``); err != nil || st.saved[3].OK || st.saved[3].Checkpoint != nil {
		t.Fatalf("bad trail: %v, %+v", err, st.saved[3])
	}

	// Payloads and organisations no retry can heal are dead at once; a
	// failing database is retried.
	permanent := func(err error) bool { return fmt.Sprintf("%T", err) == "jobs.permanent" }
	for _, tc := range []struct {
		payload, org string
		permanent    bool
	}{{`{"from_latest":`, "org_1", true}, {`{}`, "org_gone", true}} {
		err := kind.Handler(context.Background(), &jobs.Attempt{Job: &margen.Job{OrgID: tc.org, Payload: []byte(tc.payload)}, Max: 3})
		if !permanent(err) {
			t.Errorf("%s %s: %v, want a permanent error", tc.org, tc.payload, err)
		}
	}
	st.failOrgs = true
	if err := run(`{}`); err == nil || permanent(err) {
		t.Errorf("database down: %v, want a retryable error", err)
	}
}
