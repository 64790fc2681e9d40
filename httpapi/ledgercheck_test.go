package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store/storetest"
)

// checkReport is the answer of GET and POST /api/v1/ledger/check.
type checkReport struct {
	Running   bool
	ID        string
	CheckedAt *time.Time `json:"checked_at"`
	OK        bool
	Ledger    margen.LedgerReport
	Audit     struct {
		OK           bool
		Checked      int64
		From         int64
		Rows         int
		ProblemCount int `json:"problem_count"`
		Problems     []margen.AuditProblem
	}
	Checkpoint *margen.Checkpoint
}

// runChecks runs the queued ledger checks as margen serve's runner does and
// returns how many ran.
func (e *env) runChecks() int {
	e.t.Helper()
	r := jobs.New(e.db, jobs.Options{Lease: jobs.LedgerCheckLease, Concurrency: 1})
	r.Register(margen.JobLedgerCheck, jobs.LedgerCheck(e.db, storetest.TestAuditKey, nil))
	n, err := r.Once(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// checkNow queues a check as login, runs it, and returns the report the API
// then serves.
func (e *env) checkNow(login, query string) checkReport {
	e.t.Helper()
	var queued, got checkReport
	e.do("POST", "/api/v1/ledger/check"+query, login, "").want(http.StatusAccepted).decode(&queued)
	if !queued.Running {
		e.t.Fatalf("queued check not running: %+v", queued)
	}
	if n := e.runChecks(); n != 1 {
		e.t.Fatalf("%d checks ran, want 1", n)
	}
	e.do("GET", "/api/v1/ledger/check", login, "").want(http.StatusOK).decode(&got)
	if got.Running || got.CheckedAt == nil || got.ID == "" {
		e.t.Fatalf("report after the job: %+v", got)
	}
	return got
}

// The check runs as a job and the API serves its latest report; a ledger
// entry edited behind margen's back is reported by the ledger derivation
// and by the seal, from the whole trail and from a checkpoint.
func TestLedgerCheckJob(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var none checkReport
		e.do("GET", "/api/v1/ledger/check", "olga", "").want(http.StatusOK).decode(&none)
		if none.Running || none.CheckedAt != nil || none.OK || none.Ledger.Mismatches == nil || none.Audit.Problems == nil {
			t.Fatalf("before any check: %+v", none)
		}
		e.do("POST", "/api/v1/ledger/check", "ana", "").want(http.StatusForbidden)
		e.do("POST", "/api/v1/ledger/check?from=yesterday", "olga", "").want(http.StatusBadRequest).problem()

		d, res := e.decide("ana", gift(500000, "mesa-4"))
		res.want(http.StatusCreated)
		// Two requests queue one check.
		e.do("POST", "/api/v1/ledger/check", "mario", "").want(http.StatusAccepted)
		clean := e.checkNow("olga", "")
		if !clean.OK || !clean.Audit.OK || clean.Ledger.Entries == 0 || clean.Audit.Rows == 0 || clean.Audit.From != 0 ||
			clean.Checkpoint == nil || clean.Checkpoint.Seq != clean.Audit.Checked {
			t.Fatalf("clean report: %+v", clean)
		}
		if err := margen.VerifyCheckpoint(clean.Checkpoint, storetest.TestAuditKey.PublicKey()); err != nil {
			t.Fatalf("the report's checkpoint: %v", err)
		}
		if n := e.runChecks(); n != 0 {
			t.Fatalf("%d more checks ran: two requests queued two", n)
		}
		// The other organisation has no report.
		e.do("GET", "/api/v1/ledger/check", "omar", "").want(http.StatusOK).decode(&none)
		if none.CheckedAt != nil {
			t.Fatalf("another organisation's report: %+v", none)
		}

		// A decision after the checkpoint, then its ledger entry edited.
		d2, res := e.decide("ana", gift(400000, "mesa-5"))
		res.want(http.StatusCreated)
		if _, err := e.db.SQL().ExecContext(ctx, e.db.Rebind("UPDATE ledger_entries SET amount = amount + 1 WHERE org_id = ? AND decision_id = ?"),
			e.orgA.ID, d2.ID); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"", "?from=latest"} {
			bad := e.checkNow("olga", q)
			if bad.OK || bad.Ledger.OK() || bad.Audit.OK || bad.Checkpoint != nil {
				t.Fatalf("%q: tampered report: %+v", q, bad)
			}
			if !slices.ContainsFunc(bad.Ledger.Mismatches, func(m margen.LedgerMismatch) bool {
				return m.What == "decision_posted" && strings.Contains(m.Detail, d2.ID)
			}) {
				t.Errorf("%q: ledger mismatches %+v do not name %s", q, bad.Ledger.Mismatches, d2.ID)
			}
			found := false
			for _, p := range bad.Audit.Problems {
				found = found || (p.Table == "ledger_entries" && p.What == "changed")
			}
			if !found {
				t.Errorf("%q: the seal does not report the entry: %+v", q, bad.Audit.Problems)
			}
			if want := map[string]int64{"": 0, "?from=latest": clean.Checkpoint.Seq}[q]; bad.Audit.From != want {
				t.Errorf("%q: audit from %d, want %d", q, bad.Audit.From, want)
			}
		}
		_ = d
	})
}
