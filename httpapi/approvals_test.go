package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/metrics"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
	"github.com/margenhq/margen/webhook"
)

// stepClock is a clock the test moves forward (to pass an SLA); it starts
// at the real time so budget periods are today's.
type stepClock = testsupport.Clock

func newStepClock() *stepClock { return testsupport.NewClockNow() }

// fullEnv is env with the whole of issue 3 wired as `margen serve` wires
// it: the approval service, the event broker (running), metrics and the
// webhook worker (run by hand with Once).
type fullEnv struct {
	*env
	clock    *stepClock
	svc      *approval.Service
	broker   *events.Broker
	met      *metrics.Metrics
	worker   *webhook.Worker
	runner   *jobs.Runner
	shutdown chan struct{}
}

// eachEngineFull is eachEngine with the full wiring.
func eachEngineFull(t *testing.T, fn func(t *testing.T, e *fullEnv)) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			fn(t, setupFull(t, eng.Open(t)))
		})
	}
}

// setupFull builds the organisations with setup, then serves them from a
// second API built over the same database with every optional part. The
// extra member fede has frontline access but the supervisor role: an
// approver who sees only what is routed to them.
func setupFull(t *testing.T, db *store.DB) *fullEnv {
	t.Helper()
	e := setup(t, db)
	log := testsupport.Discard()
	clk := newStepClock()
	eng := testsupport.Engine(t, db, decision.Options{Logger: log, Clock: clk})
	met := metrics.New(metrics.Options{Counts: db, Clock: clk, Logger: log})
	broker := events.NewBroker(db, events.Options{Clock: clk, Logger: log, Every: 100 * time.Millisecond})
	svc := approval.New(db, eng, approval.Options{Clock: clk, Logger: log, Notify: broker.Notify, Observe: met.ApprovalAnswered})
	// The worker keeps the real clock: the store schedules deliveries by it.
	worker := webhook.NewWorker(db, webhook.Options{Logger: log, AllowPrivate: true, OnFailure: met.WebhookFailure,
		BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { broker.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	runner := jobs.New(db, jobs.Options{Logger: log})
	runner.Register(margen.JobWebhookDelivery, worker.Kind())
	f := &fullEnv{env: e, clock: clk, svc: svc, broker: broker, met: met, worker: worker, runner: runner, shutdown: make(chan struct{})}
	e.srv = testsupport.Server(t, httpapi.Config{Store: db, Engine: eng, Logger: log, Clock: clk,
		Approvals: svc, Broker: broker, Shutdown: f.shutdown, Heartbeat: 100 * time.Millisecond, Metrics: met,
		Surveys: httpapi.SurveyConfig{Key: testSurveyKey}})

	fede := &margen.Member{ID: margen.NewID("mem"), OrgID: e.orgA.ID, Login: "fede", Name: "fede",
		Access: margen.AccessFrontline, Role: "supervisor", Active: true}
	if err := db.CreateMember(context.Background(), fede, "test"); err != nil {
		t.Fatal(err)
	}
	e.addToken(fede)
	return f
}

// deliver dispatches new deliveries and runs the due delivery jobs, as
// margen serve's webhook worker and job runner do. sent counts the jobs run.
func (e *fullEnv) deliver() (dispatched, sent int, err error) {
	ctx := context.Background()
	if dispatched, err = e.worker.Dispatch(ctx); err != nil {
		return dispatched, 0, err
	}
	sent, err = e.runner.Once(ctx)
	return dispatched, sent, err
}

// approvalJSON is an approval as the API answers it.
type approvalJSON struct {
	margen.Approval
	SLA     string `json:"sla"`
	Context *struct {
		Decision  margen.Decision `json:"decision"`
		Requester struct {
			ID, Login string
		} `json:"requester"`
		Customer *margen.Customer `json:"customer"`
		Budgets  []struct {
			margen.BudgetAccount
			Remaining int64 `json:"remaining"`
		} `json:"budgets"`
		RecentActs []margen.Act `json:"recent_acts"`
	} `json:"context"`
}

func (e *fullEnv) list(path, login string) []approvalJSON {
	e.t.Helper()
	var out struct{ Items []approvalJSON }
	e.do("GET", path, login, "").want(http.StatusOK).decode(&out)
	return out.Items
}

func ids(items []approvalJSON) []string {
	var out []string
	for _, a := range items {
		out = append(out, a.ID)
	}
	return out
}

func contains(items []approvalJSON, id string) bool {
	for _, a := range items {
		if a.ID == id {
			return true
		}
	}
	return false
}

// ask makes a decision that needs approval and returns it.
func (e *fullEnv) ask(login string, amount int64, ref string) *margen.Decision {
	e.t.Helper()
	d, res := e.decide(login, gift(amount, ref))
	res.want(http.StatusCreated)
	if d.Outcome != margen.OutcomeNeedsApproval || d.ApprovalID == "" {
		e.t.Fatalf("%s asking %d: outcome %s, want needs_approval: %s", login, amount, d.Outcome, res.body)
	}
	return d
}

func (e *fullEnv) budget(login, budget string) margen.BudgetAccount {
	e.t.Helper()
	var out struct{ Items []margen.BudgetAccount }
	e.do("GET", "/api/v1/budgets?budget="+budget+"&subject="+e.member[login].ID, "olga", "").want(http.StatusOK).decode(&out)
	if len(out.Items) != 1 {
		e.t.Fatalf("budget %s of %s: %+v", budget, login, out.Items)
	}
	return out.Items[0]
}

func wantKey(t *testing.T, r *response, status int, key string) {
	t.Helper()
	r.want(status)
	if p := r.problem(); p.Key != key {
		t.Fatalf("key %s, want %s: %s", p.Key, key, r.body)
	}
}

func TestApproveAndReject(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		// A courtesy over ana's 8.000 maximum goes to the shift supervisor.
		e.decide("ana", gift(300000, "mesa-7")) // an earlier act for this customer
		d := e.ask("ana", 1000000, "mesa-7")

		pending := e.list("/api/v1/approvals/pending", "sara")
		if len(pending) != 1 || pending[0].ID != d.ApprovalID {
			t.Fatalf("sara's pending: %v, want [%s]", ids(pending), d.ApprovalID)
		}
		p := pending[0]
		if p.Status != margen.ApprovalPending || p.ApproverRole != "supervisor" || p.Amount != 1000000 || p.SLA != "10m0s" || p.Context == nil {
			t.Fatalf("pending item: %+v", p)
		}
		c := p.Context
		if c.Decision.ID != d.ID || c.Decision.Reason != "plato frío" || c.Decision.Explanation.Message == "" ||
			c.Requester.Login != "ana" || c.Customer == nil || c.Customer.Ref != "mesa-7" {
			t.Errorf("context: %+v", c)
		}
		if len(c.RecentActs) != 1 || c.RecentActs[0].Amount != 300000 {
			t.Errorf("recent acts: %+v", c.RecentActs)
		}
		var daily *margen.BudgetAccount
		for i, b := range c.Budgets {
			if b.BudgetID == "member_daily" {
				daily = &c.Budgets[i].BudgetAccount
				if b.Remaining != 6000000-300000-1000000 {
					t.Errorf("remaining %d", b.Remaining)
				}
			}
		}
		if daily == nil || daily.Subject != e.member["ana"].ID || daily.Pending != 1000000 {
			t.Errorf("budgets: %+v", c.Budgets)
		}

		// Who sees it where.
		if got := e.list("/api/v1/approvals/pending", "fede"); !contains(got, d.ApprovalID) {
			t.Errorf("fede (role supervisor) does not see it: %v", ids(got))
		}
		for _, login := range []string{"ana", "bob"} {
			if got := e.list("/api/v1/approvals/pending", login); len(got) != 0 {
				t.Errorf("%s's pending: %v, want none", login, ids(got))
			}
		}
		if got := e.list("/api/v1/requests", "ana"); len(got) != 1 || got[0].ID != d.ApprovalID {
			t.Errorf("ana's requests: %v", ids(got))
		}
		if got := e.list("/api/v1/requests", "bob"); len(got) != 0 {
			t.Errorf("bob's requests: %v", ids(got))
		}
		if got := e.list("/api/v1/approvals?status=pending", "sara"); !contains(got, d.ApprovalID) {
			t.Errorf("all pending: %v", ids(got))
		}
		if got := e.list("/api/v1/approvals?status=approved", "sara"); len(got) != 0 {
			t.Errorf("approved before any answer: %v", ids(got))
		}
		wantKey(t, e.do("GET", "/api/v1/approvals", "ana", ""), 403, "error.forbidden")
		wantKey(t, e.do("GET", "/api/v1/approvals?status=maybe", "sara", ""), 400, "error.invalid_value")
		for _, login := range []string{"ana", "fede", "sara", "olga"} {
			e.do("GET", "/api/v1/approvals/"+d.ApprovalID, login, "").want(200)
		}
		wantKey(t, e.do("GET", "/api/v1/approvals/"+d.ApprovalID, "bob", ""), 404, "error.not_found")
		wantKey(t, e.do("GET", "/api/v1/approvals/"+d.ApprovalID, "omar", ""), 404, "error.not_found")

		// The guards.
		url := "/api/v1/approvals/" + d.ApprovalID
		wantKey(t, e.do("POST", url+"/approve", "ana", `{"comment":"yo mismo"}`), 403, "error.self_approval")
		wantKey(t, e.do("POST", url+"/approve", "bob", ``), 404, "error.not_found") // who may not see may not answer
		wantKey(t, e.do("POST", url+"/approve", "omar", ``), 404, "error.not_found")
		wantKey(t, e.do("POST", url+"/approve", "sara", `{"comment":5}`), 400, "error.json_type")
		wantKey(t, e.do("POST", url+"/approve", "sara", `{"note":"x"}`), 400, "error.unknown_field")
		wantKey(t, e.do("POST", url+"/approve", "sara", `{"comment":"`+strings.Repeat("x", 1001)+`"}`), 400, "error.too_long")

		// Approve, idempotently.
		res := e.do("POST", url+"/approve", "sara", `{"comment":"adelante"}`, "Idempotency-Key", "k-approve")
		res.want(http.StatusOK)
		var a margen.Approval
		res.decode(&a)
		if a.ID != d.ApprovalID || a.Status != margen.ApprovalApproved || a.DecidedBy != e.member["sara"].ID ||
			a.Comment != "adelante" || a.ActID == "" || a.DecidedAt == nil {
			t.Fatalf("approved: %s", res.body)
		}
		again := e.do("POST", url+"/approve", "sara", `{"comment":"adelante"}`, "Idempotency-Key", "k-approve").want(200)
		if again.header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(res.body) {
			t.Errorf("replay: %q %s\nfirst: %s", again.header.Get("Idempotent-Replayed"), again.body, res.body)
		}
		wantKey(t, e.do("POST", url+"/approve", "sara", `{"comment":"otra vez"}`, "Idempotency-Key", "k-approve"), 422, "error.idempotency_mismatch")
		wantKey(t, e.do("POST", url+"/approve", "sara", ``), 409, "error.approval_already_decided")
		wantKey(t, e.do("POST", url+"/reject", "fede", ``), 409, "error.approval_already_decided")

		// The held amount is posted; the act exists; the history says who.
		if b := e.budget("ana", "member_daily"); b.Posted != 1300000 || b.Pending != 0 {
			t.Errorf("ana's member_daily after the approval: %+v", b.Balance)
		}
		e.do("GET", "/api/v1/acts/"+a.ActID, "ana", "").want(200)
		var got approvalJSON
		e.do("GET", url, "ana", "").want(200).decode(&got)
		if len(got.History) != 2 || got.History[0].Kind != margen.EventRequested || got.History[1].Kind != margen.EventApproved ||
			got.History[1].Actor != e.member["sara"].ID || got.History[1].Comment != "adelante" || got.Context == nil {
			t.Errorf("history: %+v", got.History)
		}
		if got := e.list("/api/v1/approvals/pending", "sara"); len(got) != 0 {
			t.Errorf("still pending: %v", ids(got))
		}

		// Reject voids the hold.
		d2 := e.ask("ana", 900000, "mesa-8")
		res = e.do("POST", "/api/v1/approvals/"+d2.ApprovalID+"/reject", "fede", `{"comment":"hoy no"}`).want(200)
		a = margen.Approval{}
		res.decode(&a)
		if a.Status != margen.ApprovalRejected || a.ActID != "" || a.DecidedBy != e.member["fede"].ID {
			t.Errorf("rejected: %s", res.body)
		}
		if b := e.budget("ana", "member_daily"); b.Posted != 1300000 || b.Pending != 0 {
			t.Errorf("ana's member_daily after the rejection: %+v", b.Balance)
		}
		wantKey(t, e.do("POST", "/api/v1/approvals/"+d2.ApprovalID+"/approve", "sara", ``), 409, "error.approval_already_decided")

		// Paging the requests.
		var page struct {
			Items []approvalJSON
			Next  string
		}
		e.do("GET", "/api/v1/requests?limit=1", "ana", "").want(200).decode(&page)
		if len(page.Items) != 1 || page.Items[0].ID != d2.ApprovalID || page.Next == "" {
			t.Fatalf("first page: %+v", page)
		}
		e.do("GET", "/api/v1/requests?limit=1&after="+page.Next, "ana", "").want(200).decode(&page)
		if len(page.Items) != 1 || page.Items[0].ID != d.ApprovalID {
			t.Fatalf("second page: %+v", page)
		}
	})
}

// TestSelfAndOverLimitApproval: nobody answers their own request, whatever
// their access; an approver whose own latitude is below the amount is
// refused (403) and the request moves up; only then can it be approved.
func TestSelfAndOverLimitApproval(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		for _, login := range []string{"ana", "fede", "sara", "mario", "olga"} {
			var x struct {
				Approval approvalJSON
			}
			e.do("POST", "/api/v1/exceptions", login, `{"description":"mesa fuera de horario"}`).want(201).decode(&x)
			for _, verb := range []string{"approve", "reject"} {
				wantKey(t, e.do("POST", "/api/v1/approvals/"+x.Approval.ID+"/"+verb, login, ``), 403, "error.self_approval")
			}
		}
		// A monetary request of a supervisor, over their own maximum.
		d := e.ask("sara", 25000000, "mesa-20")
		wantKey(t, e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/approve", "sara", ``), 403, "error.self_approval")
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/approve", "mario", ``).want(200)

		// 1.500.000 COP: above a supervisor's 200.000 and a manager's
		// 1.000.000; only an owner's latitude covers it.
		d = e.ask("ana", 150000000, "mesa-21")
		url := "/api/v1/approvals/" + d.ApprovalID
		wantKey(t, e.do("POST", url+"/approve", "bob", ``), 404, "error.not_found")
		wantKey(t, e.do("POST", url+"/approve", "sara", ``), 403, "error.approval_beyond_latitude")
		var a approvalJSON
		e.do("GET", url, "olga", "").want(200).decode(&a)
		if a.Status != margen.ApprovalPending || a.ApproverRole != "manager" || a.Level != 1 {
			t.Fatalf("after the supervisor's refusal: %s level %d %s", a.ApproverRole, a.Level, a.Status)
		}
		wantKey(t, e.do("POST", url+"/approve", "fede", ``), 403, "error.not_approver") // no longer theirs
		wantKey(t, e.do("POST", url+"/approve", "mario", ``), 403, "error.approval_beyond_latitude")
		e.do("GET", url, "olga", "").want(200).decode(&a)
		if a.Status != margen.ApprovalPending || a.ApproverRole != approval.OwnerRole {
			t.Fatalf("after the manager's refusal: %s %s", a.ApproverRole, a.Status)
		}
		var ok margen.Approval
		e.do("POST", url+"/approve", "olga", `{"comment":"cliente de 20 años"}`).want(200).decode(&ok)
		if ok.Status != margen.ApprovalApproved {
			t.Fatalf("owner's approval: %+v", ok)
		}
		// Rejecting needs no latitude: a supervisor may say no to anything
		// routed to them.
		d = e.ask("ana", 150000000, "mesa-22")
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/reject", "sara", ``).want(200)
	})
}

func TestExceptions(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		for _, tc := range []struct{ body, key, field string }{
			{`{}`, "error.required", "description"},
			{`{"description":""}`, "error.required", "description"},
			{`{"description":"` + strings.Repeat("x", 1001) + `"}`, "error.too_long", "description"},
			{`{"description":"x","context":[1]}`, "error.context_object", "context"},
			{`{"description":"x","customer":{"name":"sin ref"}}`, "error.required", "customer.ref"},
			{`{"description":"x","amount":5}`, "error.unknown_field", "amount"},
			{``, "error.body_empty", ""},
		} {
			p := e.do("POST", "/api/v1/exceptions", "ana", tc.body).want(400).problem()
			if p.Key != tc.key || p.Field != tc.field {
				t.Errorf("%s: %s/%s, want %s/%s", tc.body, p.Key, p.Field, tc.key, tc.field)
			}
		}
		body := `{"description":"Dejar usar el cajero de empleados","customer":{"ref":"LB-1001","name":"Ana María"},
			"reason":"se quedó sin efectivo","context":{"hora":"22:40"}}`
		res := e.do("POST", "/api/v1/exceptions", "ana", body, "Idempotency-Key", "exc-1").want(201)
		var x struct {
			Decision margen.Decision
			Approval approvalJSON
		}
		res.decode(&x)
		if x.Decision.Outcome != margen.OutcomeNeedsApproval || x.Decision.ApprovalID != x.Approval.ID ||
			x.Approval.Kind != margen.ApprovalKindException || x.Approval.ApproverRole != "supervisor" ||
			x.Approval.Description != "Dejar usar el cajero de empleados" || x.Approval.CustomerID != margen.CustomerID(e.orgA.ID, "LB-1001") {
			t.Fatalf("exception: %s", res.body)
		}
		if !strings.Contains(x.Decision.Explanation.Message, "Supervisor de turno") || !strings.Contains(x.Decision.Explanation.Message, "cajero de empleados") {
			t.Errorf("explanation: %q", x.Decision.Explanation.Message)
		}
		again := e.do("POST", "/api/v1/exceptions", "ana", body, "Idempotency-Key", "exc-1").want(201)
		var y struct{ Approval margen.Approval }
		again.decode(&y)
		if again.header.Get("Idempotent-Replayed") != "true" || y.Approval.ID != x.Approval.ID {
			t.Errorf("replay: %s", again.body)
		}
		// The stored answer is the final one, byte for byte.
		if !bytes.Equal(again.body, res.body) {
			t.Errorf("replay differs from the first answer:\n%s\n%s", again.body, res.body)
		}
		if got := e.list("/api/v1/approvals/pending", "sara"); len(got) != 1 || got[0].ID != x.Approval.ID || got[0].Context == nil || got[0].Context.Customer == nil {
			t.Fatalf("sara's pending: %+v", got)
		}
		var a margen.Approval
		e.do("POST", "/api/v1/approvals/"+x.Approval.ID+"/approve", "sara", `{"comment":"sí, acompáñala"}`).want(200).decode(&a)
		if a.Status != margen.ApprovalApproved {
			t.Errorf("answer: %+v", a)
		}
		if got := e.list("/api/v1/requests", "ana"); len(got) != 1 || got[0].Status != margen.ApprovalApproved {
			t.Errorf("ana's requests: %+v", got)
		}
	})
}

// TestSLAEscalation: past the SLA the SLA worker moves the request to the
// next role, and the history says so.
func TestSLAEscalation(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		d := e.ask("ana", 1000000, "mesa-30")
		e.clock.Advance(11 * time.Minute)
		if n, err := e.svc.Sweep(context.Background()); err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		var a approvalJSON
		e.do("GET", "/api/v1/approvals/"+d.ApprovalID, "ana", "").want(200).decode(&a)
		if a.Status != margen.ApprovalPending || a.ApproverRole != "manager" || a.Level != 1 ||
			len(a.History) != 2 || a.History[1].Kind != margen.EventEscalated || a.History[1].Actor != approval.SystemActor {
			t.Fatalf("after the SLA: %+v", a)
		}
		if got := e.list("/api/v1/approvals/pending", "sara"); len(got) != 0 {
			t.Errorf("still in the supervisor's inbox: %v", ids(got))
		}
		if got := e.list("/api/v1/approvals/pending", "mario"); !contains(got, d.ApprovalID) {
			t.Errorf("not in the manager's inbox: %v", ids(got))
		}
		wantKey(t, e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/approve", "sara", ``), 403, "error.not_approver")
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/approve", "mario", ``).want(200)
	})
}

func TestWebhooksAPI(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		var mu sync.Mutex
		var got []http.Header
		var secret atomic.Value
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if err := webhook.Verify(secret.Load().(string), r.Header, b, time.Now(), time.Hour); err != nil {
				t.Errorf("signature: %v", err)
			}
			mu.Lock()
			got = append(got, r.Header.Clone())
			mu.Unlock()
			fmt.Fprint(w, "gracias")
		}))
		defer recv.Close()

		for _, tc := range []struct{ body, key, field string }{
			{`{"url":"","events":["*"]}`, "error.required", "url"},
			{`{"url":"ftp://example.com/x","events":["*"]}`, "error.webhook_url", "url"},
			{`{"url":"/hooks","events":["*"]}`, "error.webhook_url", "url"},
			{`{"url":"https://","events":["*"]}`, "error.webhook_url", "url"},
			{`{"url":"https://user:pw@example.com/","events":["*"]}`, "error.webhook_url", "url"},
			{`{"url":"not a url","events":["*"]}`, "error.webhook_url", "url"},
			{`{"url":"https://example.com/h"}`, "error.required", "events"},
			{`{"url":"https://example.com/h","events":[]}`, "error.required", "events"},
			{`{"url":"https://example.com/h","events":["decision.maybe"]}`, "error.unknown_event", "events"},
			{`{"url":"https://example.com/h","events":["*","decision.made"]}`, "error.webhook_wildcard", "events"},
			{`{"url":"https://example.com/h","events":"*"}`, "error.json_type", "events"},
			{`{"url":"https://example.com/h","events":["*"],"secret":"mine"}`, "error.unknown_field", "secret"},
		} {
			p := e.do("POST", "/api/v1/webhooks", "olga", tc.body).want(400).problem()
			if p.Key != tc.key || p.Field != tc.field {
				t.Errorf("%s: %s/%s, want %s/%s", tc.body, p.Key, p.Field, tc.key, tc.field)
			}
		}
		for _, login := range []string{"ana", "sara"} {
			wantKey(t, e.do("POST", "/api/v1/webhooks", login, `{"url":"https://example.com/h","events":["*"]}`), 403, "error.forbidden")
			wantKey(t, e.do("GET", "/api/v1/webhooks", login, ""), 403, "error.forbidden")
		}

		body := `{"url":"` + recv.URL + `/margen","events":["approval.requested","approval.decided","approval.requested"]}`
		res := e.do("POST", "/api/v1/webhooks", "mario", body, "Idempotency-Key", "wh-1").want(201)
		var hook margen.Webhook
		res.decode(&hook)
		if !strings.HasPrefix(hook.Secret, "whsec_") || !hook.Active || len(hook.Events) != 2 || hook.URL != recv.URL+"/margen" {
			t.Fatalf("created: %s", res.body)
		}
		secret.Store(hook.Secret)
		again := e.do("POST", "/api/v1/webhooks", "mario", body, "Idempotency-Key", "wh-1").want(201)
		var replayed margen.Webhook
		again.decode(&replayed)
		if replayed.ID != hook.ID || replayed.Secret != "" || strings.Contains(string(again.body), "whsec_") {
			t.Fatalf("replay (same webhook, secret shown once only): %s", again.body)
		}
		var hooks struct{ Items []margen.Webhook }
		e.do("GET", "/api/v1/webhooks", "olga", "").want(200).decode(&hooks)
		if len(hooks.Items) != 1 || hooks.Items[0].ID != hook.ID || hooks.Items[0].Secret != "" {
			t.Fatalf("list (one, without secret): %+v", hooks.Items)
		}
		var one margen.Webhook
		e.do("GET", "/api/v1/webhooks/"+hook.ID, "olga", "").want(200).decode(&one)
		if one.ID != hook.ID || one.Secret != "" || strings.Contains(string(e.do("GET", "/api/v1/webhooks/"+hook.ID, "olga", "").body), "whsec_") {
			t.Errorf("get: %+v", one)
		}
		wantKey(t, e.do("GET", "/api/v1/webhooks/"+hook.ID, "omar", ""), 404, "error.not_found")
		wantKey(t, e.do("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", "omar", ""), 404, "error.not_found")

		// A request is delivered, signed; its delivery is listed with the attempt.
		e.ask("ana", 1000000, "mesa-40")
		if n, sent, err := e.deliver(); err != nil || n != 1 || sent != 1 {
			t.Fatalf("worker: dispatched %d, sent %d, %v", n, sent, err)
		}
		var ds struct{ Items []margen.Delivery }
		e.do("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", "olga", "").want(200).decode(&ds)
		if len(ds.Items) != 1 || ds.Items[0].EventType != margen.EventApprovalRequested || ds.Items[0].Status != margen.DeliveryDelivered {
			t.Fatalf("deliveries: %+v", ds.Items)
		}
		wantKey(t, e.do("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries?status=lost", "olga", ""), 400, "error.invalid_value")
		var del margen.Delivery
		e.do("GET", "/api/v1/deliveries/"+ds.Items[0].ID, "olga", "").want(200).decode(&del)
		if len(del.History) != 1 || del.History[0].StatusCode != 200 || del.History[0].Response != "gracias" {
			t.Errorf("delivery: %+v", del)
		}
		wantKey(t, e.do("GET", "/api/v1/deliveries/"+del.ID, "omar", ""), 404, "error.not_found")
		wantKey(t, e.do("GET", "/api/v1/deliveries/"+del.ID, "sara", ""), 403, "error.forbidden")

		// Replay sends it again with the same webhook-id.
		e.do("POST", "/api/v1/deliveries/"+del.ID+"/replay", "olga", "").want(http.StatusAccepted).decode(&del)
		if del.Status != margen.DeliveryPending {
			t.Errorf("replayed: %+v", del)
		}
		if _, sent, err := e.deliver(); err != nil || sent != 1 {
			t.Fatalf("worker after replay: sent %d, %v", sent, err)
		}
		mu.Lock()
		if len(got) != 2 || got[0].Get("webhook-id") != got[1].Get("webhook-id") || got[0].Get("webhook-id") != del.ID {
			t.Errorf("received: %v", got)
		}
		mu.Unlock()

		// Deleting deactivates; the deliveries stay.
		e.do("DELETE", "/api/v1/webhooks/"+hook.ID, "mario", "").want(http.StatusNoContent)
		e.do("GET", "/api/v1/webhooks/"+hook.ID, "olga", "").want(200).decode(&one)
		if one.Active {
			t.Error("still active after DELETE")
		}
		e.do("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", "olga", "").want(200).decode(&ds)
		if len(ds.Items) != 1 {
			t.Errorf("deliveries after DELETE: %+v", ds.Items)
		}
		wantKey(t, e.do("DELETE", "/api/v1/webhooks/"+hook.ID, "omar", ""), 404, "error.not_found")
	})
}

// sseEvent is one event read from the stream.
type sseEvent struct {
	ID    string
	Event margen.EventType
	Data  struct {
		Seq    int64            `json:"seq"`
		Type   margen.EventType `json:"type"`
		Data   margen.EventData `json:"data"`
		Lagged bool             `json:"lagged"`
	}
}

// stream is a client of GET /api/v1/events.
type stream struct {
	t      *testing.T
	events chan sseEvent
	pings  atomic.Int64
	closed chan struct{}
	cancel func()
	header http.Header
}

func (e *env) stream(login string, hdr ...string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tok[login])
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		cancel()
		e.t.Fatalf("events as %s: %d %s", login, res.StatusCode, b)
	}
	s := &stream{t: e.t, events: make(chan sseEvent, 100), closed: make(chan struct{}), cancel: cancel, header: res.Header}
	go func() {
		defer close(s.closed)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ": ping"):
				s.pings.Add(1)
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = margen.EventType(line[7:])
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.Data); err != nil {
					e.t.Errorf("data line %q: %v", line, err)
				}
			}
		}
	}()
	e.t.Cleanup(cancel)
	return s
}

// next waits up to within for an event of the given type, skipping others.
func (s *stream) next(typ margen.EventType, within time.Duration) sseEvent {
	s.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-s.events:
			if ev.Event == typ {
				return ev
			}
		case <-deadline:
			s.t.Fatalf("no %s event within %s", typ, within)
		}
	}
}

// until collects every event up to the first one that matches stop.
func (s *stream) until(within time.Duration, stop func(sseEvent) bool) []sseEvent {
	s.t.Helper()
	var out []sseEvent
	deadline := time.After(within)
	for {
		select {
		case ev := <-s.events:
			out = append(out, ev)
			if stop(ev) {
				return out
			}
		case <-deadline:
			s.t.Fatalf("stop event not seen within %s; got %+v", within, out)
		}
	}
}

func TestEventStream(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		fede := e.stream("fede") // an approver with frontline access
		ana := e.stream("ana")
		bob := e.stream("bob")
		if ct := fede.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}

		start := time.Now()
		d := e.ask("ana", 1000000, "mesa-50")
		ev := fede.next(margen.EventApprovalRequested, time.Second)
		t.Logf("approval.requested reached the approver in %s", time.Since(start))
		if ev.Data.Data.ApprovalID != d.ApprovalID || ev.Data.Data.Member != e.member["ana"].ID || ev.Data.Type != ev.Event ||
			ev.ID != strconv.FormatInt(ev.Data.Seq, 10) || ev.Data.Seq <= 0 {
			t.Fatalf("event: %+v", ev)
		}
		requestedSeq := ev.Data.Seq

		start = time.Now()
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/approve", "fede", `{"comment":"sí"}`).want(200)
		ev = ana.next(margen.EventApprovalDecided, time.Second)
		t.Logf("approval.decided reached the requester in %s", time.Since(start))
		if ev.Data.Data.ApprovalID != d.ApprovalID || ev.Data.Data.Status != margen.ApprovalApproved || ev.Data.Data.DecidedBy != e.member["fede"].ID {
			t.Fatalf("decided: %+v", ev)
		}

		// bob (a cashier) sees his own decision, and nothing of ana's.
		e.decide("bob", gift(100000, "mesa-51"))
		for _, ev := range bob.until(time.Second, func(ev sseEvent) bool { return ev.Data.Data.Member == e.member["bob"].ID }) {
			if ev.Data.Data.Member != e.member["bob"].ID {
				t.Errorf("bob received %s about someone else: %+v", ev.Event, ev.Data)
			}
		}
		// fede (no supervisor access) does not see bob's allowed decision,
		// but sees the next request routed to a supervisor.
		d2 := e.ask("iris", 1000000, "mesa-52")
		for _, ev := range fede.until(time.Second, func(ev sseEvent) bool { return ev.Event == margen.EventApprovalRequested }) {
			if ev.Data.Data.Member == e.member["bob"].ID {
				t.Errorf("fede received bob's %s", ev.Event)
			}
			if ev.Event == margen.EventApprovalRequested && ev.Data.Data.ApprovalID != d2.ApprovalID {
				t.Errorf("fede received %+v, want iris's request", ev.Data)
			}
		}

		// A reconnection with Last-Event-ID gets what it missed.
		again := e.stream("ana", "Last-Event-ID", strconv.FormatInt(requestedSeq, 10))
		ev = again.next(margen.EventApprovalDecided, time.Second)
		if ev.Data.Data.ApprovalID != d.ApprovalID {
			t.Errorf("replayed: %+v", ev)
		}

		// Heartbeats keep an idle stream open.
		deadline := time.Now().Add(2 * time.Second)
		for bob.pings.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if bob.pings.Load() == 0 {
			t.Error("no heartbeat")
		}

		// Shutting down ends every stream.
		close(e.shutdown)
		for _, s := range []*stream{fede, ana, bob, again} {
			select {
			case <-s.closed:
			case <-time.After(2 * time.Second):
				t.Fatal("a stream outlived the shutdown")
			}
		}
	})
}

func TestEventStreamAuth(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			e := setupFull(t, eng.Open(t))
			wantKey(t, e.do("GET", "/api/v1/events", "", ""), 401, "error.unauthorized")
			// Without the service wired, the stream is unavailable rather than empty.
			plain := setup(t, eng.Open(t))
			wantKey(t, plain.do("GET", "/api/v1/events", "ana", ""), 503, "error.unavailable")
			wantKey(t, plain.do("GET", "/api/v1/approvals/pending", "ana", ""), 503, "error.unavailable")
			wantKey(t, plain.do("GET", "/metrics", "", ""), 404, "error.route_not_found")
		})
	}
}

func TestMetricsEndpoint(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		d := e.ask("ana", 1000000, "mesa-60")
		e.decide("ana", gift(100000, "mesa-61"), "Idempotency-Key", "m-1")
		e.decide("ana", gift(100000, "mesa-61"), "Idempotency-Key", "m-1") // a replay is not a new decision
		e.decide("ana", `{"action":"refund","amount":1000,"customer":{"ref":"c1"},"context":{"payment":"tarjeta"}}`)
		e.do("POST", "/api/v1/decisions/explain", "ana", gift(100000, "mesa-62")).want(200) // nothing recorded
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/approve", "sara", ``).want(200)
		e.ask("ana", 1000000, "mesa-63")
		e.clock.Advance(6 * time.Second) // past the gauges' cache

		res := e.do("GET", "/metrics", "", "").want(200)
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("content type %q", ct)
		}
		out := string(res.body)
		for _, line := range []string{
			`margen_decisions_total{outcome="allowed"} 1`,
			`margen_decisions_total{outcome="needs_approval"} 2`,
			`margen_decisions_total{outcome="denied"} 1`,
			`margen_approval_latency_seconds_count{kind="approved"} 1`,
			`margen_pending_approvals 1`,
			`margen_job_queue_depth 0`,
			`margen_webhook_failures_total 0`,
		} {
			if !strings.Contains(out, line+"\n") {
				t.Errorf("/metrics lacks %q", line)
			}
		}
		if !strings.Contains(out, "go_goroutines") {
			t.Error("/metrics lacks the Go collector")
		}
		// Not through a proxy, unless the server says so.
		wantKey(t, e.do("GET", "/metrics", "", "", "X-Forwarded-For", "203.0.113.9"), 403, "error.metrics_local")
	})
}

// TestRequesterSeesNoOtherFiles: a frontline requester reading their own
// request does not get the customer's file nor other members' acts on that
// customer (naming any customer in an exception request must not open it).
func TestRequesterSeesNoOtherFiles(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		_, res := e.decide("bob", gift(100, "LB-9"))
		res.want(http.StatusCreated)
		var x struct {
			Approval margen.Approval `json:"approval"`
		}
		e.do("POST", "/api/v1/exceptions", "ana", `{"description":"x","customer":{"ref":"LB-9"}}`).want(201).decode(&x)
		var mine approvalJSON
		e.do("GET", "/api/v1/approvals/"+x.Approval.ID, "ana", "").want(http.StatusOK).decode(&mine)
		if mine.Context == nil {
			t.Fatal("no context")
		}
		if mine.Context.Customer != nil || len(mine.Context.RecentActs) != 0 {
			t.Fatalf("requester sees customer %+v and acts %+v", mine.Context.Customer, mine.Context.RecentActs)
		}
		var theirs approvalJSON
		e.do("GET", "/api/v1/approvals/"+x.Approval.ID, "sara", "").want(http.StatusOK).decode(&theirs)
		if theirs.Context.Customer == nil || len(theirs.Context.RecentActs) != 1 {
			t.Fatalf("supervisor sees customer %+v and acts %+v; want the file and bob's act", theirs.Context.Customer, theirs.Context.RecentActs)
		}
	})
}

// TestEventStreamEndsWhenAccessEnds: an open stream outlives the token cache,
// so it checks the credentials again on every heartbeat and ends when the
// member is deactivated.
func TestEventStreamEndsWhenAccessEnds(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		sara := e.stream("sara")
		e.stream("mario") // stays open: nothing changed for mario
		if err := e.db.SetMemberActive(context.Background(), e.orgA.ID, e.member["sara"].ID, false, "test"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-sara.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the stream of a deactivated member is still open")
		}
	})
}

// TestAnswerFollowsTeamRouting: who may answer a request is exactly who may
// see it. A request of team "front" (which has its own supervisor) is not
// for a supervisor of team "back": 404 on GET, absent from the inbox, and
// 404 on approve and reject with nothing posted; the supervisor of "front"
// answers it; an owner decides anything.
func TestAnswerFollowsTeamRouting(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		ctx := context.Background()
		for _, x := range []struct{ login, role, team string }{
			{"fina", "cashier", "front"},
			{"frida", "supervisor", "front"},
			{"bruno", "supervisor", "back"},
		} {
			m := &margen.Member{ID: margen.NewID("mem"), OrgID: e.orgA.ID, Login: x.login, Name: x.login,
				Access: margen.AccessFrontline, Role: x.role, Team: x.team, Active: true}
			if err := e.db.CreateMember(ctx, m, "test"); err != nil {
				t.Fatal(err)
			}
			e.addToken(m)
		}
		var before margen.BudgetAccount // fina has spent nothing yet
		for _, approve := range []bool{true, false} {
			d := e.ask("fina", 1000000, "mesa-9")
			id := d.ApprovalID
			if d.Team != "front" {
				t.Fatalf("the decision names team %q, want fina's (front)", d.Team)
			}
			e.do("GET", "/api/v1/approvals/"+id, "bruno", "").want(http.StatusNotFound)
			if contains(e.list("/api/v1/approvals/pending", "bruno"), id) {
				t.Fatalf("%s is in bruno's inbox", id)
			}
			for _, verb := range []string{"approve", "reject"} {
				wantKey(t, e.do("POST", "/api/v1/approvals/"+id+"/"+verb, "bruno", `{}`), http.StatusNotFound, "error.not_found")
			}
			a, err := e.db.GetApproval(ctx, e.orgA.ID, id)
			if err != nil || a.Status != margen.ApprovalPending {
				t.Fatalf("after bruno's answers: %+v %v", a, err)
			}
			if b := e.budget("fina", "member_daily"); b.Posted != before.Posted || b.Pending != before.Pending+1000000 {
				t.Fatalf("bruno's answer moved the budget: %+v, before %+v", b, before)
			}
			// The team's own supervisor sees and answers it.
			if !contains(e.list("/api/v1/approvals/pending", "frida"), id) {
				t.Fatalf("%s is not in frida's inbox", id)
			}
			e.do("GET", "/api/v1/approvals/"+id, "frida", "").want(http.StatusOK)
			verb := map[bool]string{true: "approve", false: "reject"}[approve]
			e.do("POST", "/api/v1/approvals/"+id+"/"+verb, "frida", `{}`).want(http.StatusOK)
			if approve {
				before.Posted += 1000000
				// The act written on approval carries the requester's team.
				dec, err := e.db.GetDecision(ctx, e.orgA.ID, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				act, err := e.db.GetAct(ctx, e.orgA.ID, dec.ActID)
				if err != nil || act.Team != "front" {
					t.Fatalf("act on approval: %+v, %v", act, err)
				}
			}
			if b := e.budget("fina", "member_daily"); b.Posted != before.Posted || b.Pending != before.Pending {
				t.Fatalf("after frida's %s: %+v, want posted %d pending %d", verb, b, before.Posted, before.Pending)
			}
		}
		// An owner decides anything, in any team.
		d := e.ask("fina", 1000000, "mesa-9")
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/reject", "olga", `{}`).want(http.StatusOK)
	})
}
