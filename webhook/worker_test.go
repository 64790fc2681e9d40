package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
	"github.com/margenhq/margen/webhook"
)

const testPolicy = `
currency: EUR
actions:
  - id: gift
    label: {es: "Cortesía", en: "Gift"}
  - id: refund
    label: {es: "Reembolso", en: "Refund"}
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: supervisor
    label: {es: "Supervisor", en: "Supervisor"}
    inherits: [frontline]
grants:
  - id: gift
    role: frontline
    actions: [gift]
    max_amount: 100
    above: {approver: supervisor, sla: 10m, on_timeout: deny}
  - id: refund
    role: frontline
    actions: [refund]
    max_amount: 100
    above: none
`

// offsetClock is an injected clock that runs with the wall clock plus an
// offset the test moves forward (past backoffs). Receivers verify
// signatures against it, so it stays close to real time.
type offsetClock = testsupport.OffsetClock

// receiver is a webhook endpoint that fails 20% of the calls at random and
// verifies every signature.
type receiver struct {
	t      *testing.T
	secret string
	clock  *offsetClock

	mu       sync.Mutex
	rnd      *rand.Rand
	calls    int
	failed   int
	badSigs  int
	received map[string][]string // webhook-id -> bodies answered 2xx
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	err := webhook.Verify(rc.secret, r.Header, body, rc.clock.Now(), 5*time.Minute)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	if err != nil || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
		rc.badSigs++
		rc.t.Errorf("bad webhook: %v (%s %s)", err, r.Method, r.Header.Get("Content-Type"))
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if rc.rnd.IntN(5) == 0 {
		rc.failed++
		http.Error(w, "nope, try later \x00\xff", http.StatusInternalServerError)
		return
	}
	id := r.Header.Get("webhook-id")
	rc.received[id] = append(rc.received[id], string(body))
	w.WriteHeader(http.StatusNoContent)
}

// TestDeliveries: with a receiver that fails 20% of calls, every committed
// event is delivered, each signature verifies, nothing comes from a
// rolled-back transaction, attempts are logged, and a replay is delivered
// again.
func TestDeliveries(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			st := e.Open(t)
			clock := &offsetClock{}
			org, ana := setup(t, st, clock)
			eng := decision.New(st, decision.Options{Clock: clock})
			defer eng.Close()

			rc := &receiver{t: t, secret: webhook.NewSecret(), clock: clock, rnd: rand.New(rand.NewPCG(1, 2)),
				received: map[string][]string{}}
			srv := httptest.NewServer(rc) // loopback only
			defer srv.Close()
			hook := &margen.Webhook{OrgID: org.ID, URL: srv.URL + "/hook", Events: []string{"*"}, Secret: rc.secret}
			if err := st.CreateWebhook(ctx, hook, ana.ID, nil); err != nil {
				t.Fatal(err)
			}
			startAudit := lastAudit(t, st, org.ID)

			// Committed changes: allowed, needs_approval, denied decisions,
			// and an approval answered.
			var approvals []string
			for i := range 90 {
				amount := []int64{50, 500, 5000}[i%3]
				action := []string{"gift", "gift", "refund"}[i%3]
				res, err := eng.Decide(ctx, &decision.Request{Org: org, Member: ana, Action: action, Amount: amount,
					Customer: decision.CustomerInput{Ref: fmt.Sprintf("c%d", i)}})
				if err != nil {
					t.Fatal(err)
				}
				if id := res.Decision.ApprovalID; id != "" {
					approvals = append(approvals, id)
				}
			}
			if _, err := storetest.ApplyResolution(ctx, st, org.ID, margen.Resolution{ApprovalID: approvals[0], Status: margen.ApprovalRejected,
				Actor: "system", At: clock.Now()}, nil); err != nil {
				t.Fatal(err)
			}
			// A rolled-back change: its audit entry is written, then the
			// transaction fails on a duplicate idempotency key.
			idem := margen.Idempotency{OrgID: org.ID, MemberID: ana.ID, Key: "k", RequestHash: "h", Response: []byte("{}")}
			err := st.DecideBatch(ctx, margen.BatchQuery{OrgIDs: []string{org.ID}}, func(*margen.BatchState) (*margen.BatchWrite, error) {
				return &margen.BatchWrite{
					Audit: []margen.AuditEntry{{OrgID: org.ID, Actor: ana.ID, Action: "decision.create", Subject: "dec_rolledback",
						Data: []byte(`{"outcome":"allowed","decision_id":"dec_rolledback"}`)}},
					Idem: []margen.Idempotency{idem, idem},
				}, nil
			})
			if !margen.IsCode(err, margen.ECONFLICT) {
				t.Fatalf("the rolled-back batch: %v", err)
			}

			var failures atomic.Int64
			opt := webhook.Options{Clock: clock, AllowPrivate: true, MaxAttempts: 12, BaseBackoff: time.Second,
				MaxBackoff: time.Minute, OnFailure: func() { failures.Add(1) }}
			ws := []*webhook.Worker{webhook.NewWorker(st, opt), webhook.NewWorker(st, opt)}
			start := time.Now()
			dispatched, ran, rounds := drain(t, ctx, st, ws, clock)
			t.Logf("%s: %d deliveries dispatched, %d attempts run in %d rounds, %v; receiver: %d calls, %d failed on purpose",
				e.Name, dispatched, ran, rounds, time.Since(start).Round(time.Millisecond), rc.calls, rc.failed)
			sent := rc.calls - rc.failed

			// What should have been sent: every event of every committed
			// audit entry since the endpoint was created.
			want := map[string]bool{}
			audit, err := st.ListAudit(ctx, org.ID, startAudit, 500)
			if err != nil {
				t.Fatal(err)
			}
			for i := range audit {
				evs, err := margen.EventsOf(&audit[i])
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					want[fmt.Sprintf("%d/%s", audit[i].Seq, ev.EventType())] = true
				}
			}
			if len(want) < 150 {
				t.Fatalf("only %d events expected", len(want))
			}
			ds := allDeliveries(t, st, org.ID)
			if len(ds) != len(want) || dispatched != len(want) || sent != len(want) {
				t.Fatalf("%d deliveries (%d dispatched, %d sent) for %d events", len(ds), dispatched, sent, len(want))
			}
			var retried *margen.Delivery
			for i := range ds {
				d := &ds[i]
				k := fmt.Sprintf("%d/%s", d.AuditSeq, d.EventType)
				if !want[k] {
					t.Fatalf("delivery %s for %s, not a committed event", d.ID, k)
				}
				delete(want, k)
				if d.Status != margen.DeliveryDelivered {
					t.Fatalf("delivery %s: %s after %d attempts", d.ID, d.Status, d.Attempts)
				}
				got := rc.received[d.ID]
				if len(got) != 1 || got[0] != string(d.Payload) {
					t.Fatalf("delivery %s received %d times", d.ID, len(got))
				}
				if strings.Contains(string(d.Payload), "rolledback") {
					t.Fatalf("a rolled-back change was delivered: %s", d.Payload)
				}
				var p struct {
					Type margen.EventType `json:"type"`
					Data struct {
						Seq int64 `json:"seq"`
					} `json:"data"`
				}
				if err := json.Unmarshal(d.Payload, &p); err != nil || p.Type != d.EventType || p.Data.Seq != d.AuditSeq {
					t.Fatalf("payload %s: %v", d.Payload, err)
				}
				if d.Attempts > 1 && retried == nil {
					retried = d
				}
			}
			if rc.badSigs != 0 || int(failures.Load()) != rc.failed || rc.failed == 0 || retried == nil {
				t.Fatalf("bad signatures %d, failures counted %d vs %d", rc.badSigs, failures.Load(), rc.failed)
			}
			// Every attempt is logged with its answer.
			full, err := st.GetDelivery(ctx, org.ID, retried.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(full.History) != full.Attempts {
				t.Fatalf("%d attempts, %d logged", full.Attempts, len(full.History))
			}
			for i, a := range full.History {
				last := i == len(full.History)-1
				if (last && a.StatusCode != http.StatusNoContent) || (!last && (a.StatusCode != 500 || !strings.HasPrefix(a.Response, "nope, try later"))) {
					t.Fatalf("attempt %d: %+v", i, a)
				}
				if i > 0 && a.At.Sub(full.History[i-1].At) < time.Second {
					t.Fatalf("attempt %d came %v after the previous one", i, a.At.Sub(full.History[i-1].At))
				}
			}

			// Replay: the same message (same webhook-id) is delivered again.
			if _, err := st.ReplayDelivery(ctx, org.ID, retried.ID, ana.ID, clock.Now()); err != nil {
				t.Fatal(err)
			}
			drain(t, ctx, st, ws, clock)
			if got := rc.received[retried.ID]; len(got) != 2 || got[1] != got[0] {
				t.Fatalf("replayed delivery received %d times", len(got))
			}
			if d, _ := st.GetDelivery(ctx, org.ID, retried.ID); d.Status != margen.DeliveryDelivered {
				t.Fatalf("after replay: %+v", d)
			}
		})
	}
}

// drain runs the workers side by side (as several processes would), each
// with a job runner of its own, moving the clock past every backoff, until
// no job is pending. ran counts the attempts the runners made.
func drain(t *testing.T, ctx context.Context, st *store.DB, ws []*webhook.Worker, clock *offsetClock) (dispatched, ran, rounds int) {
	t.Helper()
	rs := make([]*jobs.Runner, len(ws))
	for i, w := range ws {
		rs[i] = jobs.New(st, jobs.Options{Clock: clock, Owner: fmt.Sprint("runner", i), Concurrency: 4})
		rs[i].Register(margen.JobWebhookDelivery, w.Kind())
	}
	for rounds = 1; rounds <= 100; rounds++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		d := 0
		for i, w := range ws {
			wg.Go(func() {
				dd, err := w.Dispatch(ctx)
				if err != nil {
					t.Error(err)
				}
				var rr int
				for {
					n, err := rs[i].Once(ctx)
					if err != nil {
						t.Error(err)
					}
					rr += n
					if n == 0 || err != nil {
						break
					}
				}
				mu.Lock()
				d += dd
				dispatched += dd
				ran += rr
				mu.Unlock()
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		n, err := st.PendingJobs(ctx, time.Now().Add(1000*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && d == 0 {
			return dispatched, ran, rounds
		}
		clock.Add(time.Minute + time.Second)
	}
	t.Fatal("jobs still pending after 100 rounds")
	return
}

// TestGiveUp: a receiver that always fails: the delivery fails for good
// after MaxAttempts, and an unreachable one too; nothing is lost.
func TestGiveUp(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	clock := &offsetClock{}
	org, ana := setup(t, st, clock)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, strings.Repeat("x", 5000), http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connection refused
	for _, u := range []string{srv.URL, down.URL} {
		if err := st.CreateWebhook(ctx, &margen.Webhook{OrgID: org.ID, URL: u, Events: []string{string(margen.EventPolicyPublished)}}, ana.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: testPolicy, CreatedBy: ana.ID}, nil); err != nil {
		t.Fatal(err)
	}
	var failures atomic.Int64
	w := webhook.NewWorker(st, webhook.Options{Clock: clock, AllowPrivate: true, MaxAttempts: 3, BaseBackoff: time.Second,
		MaxBackoff: 10 * time.Second, OnFailure: func() { failures.Add(1) }})
	drain(t, ctx, st, []*webhook.Worker{w}, clock)
	ds := allDeliveries(t, st, org.ID)
	if len(ds) != 2 || failures.Load() != 6 {
		t.Fatalf("%d deliveries, %d failures", len(ds), failures.Load())
	}
	for _, d := range ds {
		full, _ := st.GetDelivery(ctx, org.ID, d.ID)
		if full.Status != margen.DeliveryFailed || len(full.History) != 3 {
			t.Fatalf("%+v", full)
		}
		a := full.History[2]
		switch {
		case a.StatusCode == 503:
			if len(a.Response) != 1024 || a.Error != "" {
				t.Fatalf("response logged: %d bytes, %q", len(a.Response), a.Error)
			}
		case a.StatusCode == 0:
			if a.Error == "" || strings.Contains(a.Error, "http://") {
				t.Fatalf("transport error logged as %q", a.Error)
			}
		default:
			t.Fatalf("attempt %+v", a)
		}
	}
}

func setup(t *testing.T, st *store.DB, clock margen.Clock) (*margen.Org, *margen.Member) {
	t.Helper()
	o := testsupport.NewOrg(t, st, testsupport.OrgOptions{Policy: testPolicy, At: clock.Now(),
		Owner: testsupport.Member{Role: "supervisor"}, Members: []testsupport.Member{{Login: "ana"}}})
	return o.Org, o.Members["ana"]
}

func lastAudit(t *testing.T, st *store.DB, orgID string) int64 {
	t.Helper()
	var last int64
	for {
		es, err := st.ListAudit(context.Background(), orgID, last, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return last
		}
		last = es[len(es)-1].Seq
	}
}

func allDeliveries(t *testing.T, st *store.DB, orgID string) []margen.Delivery {
	t.Helper()
	var out []margen.Delivery
	f := margen.DeliveryFilter{Page: margen.Page{Limit: 500}}
	for {
		ds, err := st.ListDeliveries(context.Background(), orgID, f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ds...)
		if len(ds) < 500 {
			return out
		}
		f.After = ds[len(ds)-1].ID
	}
}
