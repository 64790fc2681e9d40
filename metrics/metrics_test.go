package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/metrics"
)

type fakeCounts struct {
	approvals, deliveries atomic.Int64
	calls                 atomic.Int64
	fail                  atomic.Bool
}

func (f *fakeCounts) PendingApprovals(context.Context) (int, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return 0, errors.New("database down")
	}
	return int(f.approvals.Load()), nil
}

func (f *fakeCounts) PendingJobs(context.Context, time.Time) (int, error) {
	f.calls.Add(1)
	return int(f.deliveries.Load()), nil
}

// clock is the shared test clock, standing still until moved.
type clock struct{ testsupport.Clock }

func (c *clock) add(d time.Duration) { c.Add(d) }

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func has(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l+"\n") {
			t.Errorf("metrics lack %q", l)
		}
	}
}

func TestSeries(t *testing.T) {
	counts := &fakeCounts{}
	counts.approvals.Store(3)
	counts.deliveries.Store(7)
	clk := &clock{}
	clk.Set(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	m := metrics.New(metrics.Options{Counts: counts, Clock: clk})
	h := m.Handler()

	out := scrape(t, h)
	has(t, out,
		`margen_decisions_total{outcome="allowed"} 0`,
		`margen_decisions_total{outcome="needs_approval"} 0`,
		`margen_decisions_total{outcome="denied"} 0`,
		`margen_pending_approvals 3`,
		`margen_job_queue_depth 7`,
		`margen_webhook_failures_total 0`,
		`margen_backup_last_success_timestamp_seconds 0`,
		`margen_backup_failures_total 0`,
	)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(out, name) && !(name == "process_cpu_seconds_total" && !processMetrics()) {
			t.Errorf("metrics lack %s", name)
		}
	}

	m.Decision("allowed")
	m.Decision("allowed")
	m.Decision("denied")
	m.ApprovalAnswered("org_1", "approved", 42)
	m.ApprovalAnswered("org_1", "expired", 900)
	m.WebhookFailure()
	m.BackupSucceeded(time.Unix(1796000000, 0))
	m.BackupFailed()
	counts.approvals.Store(4)
	out = scrape(t, h)
	has(t, out,
		`margen_decisions_total{outcome="allowed"} 2`,
		`margen_decisions_total{outcome="denied"} 1`,
		`margen_approval_latency_seconds_bucket{kind="approved",le="60"} 1`,
		`margen_approval_latency_seconds_bucket{kind="approved",le="30"} 0`,
		`margen_approval_latency_seconds_count{kind="expired"} 1`,
		`margen_webhook_failures_total 1`,
		`margen_backup_last_success_timestamp_seconds 1.796e+09`,
		`margen_backup_failures_total 1`,
		`margen_pending_approvals 3`, // cached: the store is not asked again within 5s
	)

	clk.add(6 * time.Second)
	has(t, scrape(t, h), `margen_pending_approvals 4`)

	// A failing store keeps the last value and is not hammered.
	counts.fail.Store(true)
	clk.add(6 * time.Second)
	before := counts.calls.Load()
	has(t, scrape(t, h), `margen_pending_approvals 4`)
	scrape(t, h)
	if n := counts.calls.Load() - before; n != 2 { // one per gauge, once
		t.Errorf("store asked %d times in two scrapes within the TTL, want 2", n)
	}
}

// processMetrics reports whether the process collector can read /proc here.
func processMetrics() bool {
	return fileExists("/proc/self/stat")
}

func TestNilIsSafe(t *testing.T) {
	var m *metrics.Metrics
	m.Decision("allowed")
	m.ApprovalAnswered("o", "approved", 1)
	m.WebhookFailure()
}

func TestWithoutCounts(t *testing.T) {
	out := scrape(t, metrics.New(metrics.Options{}).Handler())
	if strings.Contains(out, "margen_pending_approvals") {
		t.Error("gauge registered without a source")
	}
	has(t, out, `margen_decisions_total{outcome="allowed"} 0`)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestFailedBatches(t *testing.T) {
	m := metrics.New(metrics.Options{})
	var n atomic.Int64
	m.FailedBatches(n.Load)
	has(t, scrape(t, m.Handler()), "margen_decision_batch_failures_total 0")
	n.Add(3)
	has(t, scrape(t, m.Handler()), "margen_decision_batch_failures_total 3")
}

func TestEmailSeries(t *testing.T) {
	m := metrics.New(metrics.Options{})
	count := m.Email()
	h := m.Handler()
	has(t, scrape(t, h), `margen_email_total{result="sent"} 0`, `margen_email_total{result="retry"} 0`,
		`margen_email_total{result="failed"} 0`)
	count("sent")
	count("retry")
	count("retry")
	has(t, scrape(t, h), `margen_email_total{result="sent"} 1`, `margen_email_total{result="retry"} 2`,
		`margen_email_total{result="failed"} 0`)
}
