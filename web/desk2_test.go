package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// deskPages are the manager's desk pages of desk2, GET and POST.
var deskPages = []struct{ method, path string }{
	{"GET", "/desk/today"}, {"GET", "/desk/webhooks"}, {"POST", "/desk/webhooks"}, {"GET", "/desk/audit"},
	{"GET", "/desk/audit/check"}, {"POST", "/desk/audit/check"}, {"GET", "/desk/webhooks/whk_x"}, {"POST", "/desk/webhooks/whk_x/disable"},
	{"GET", "/desk/deliveries/dlv_x"}, {"POST", "/desk/deliveries/dlv_x/replay"},
}

func TestDeskRolesAndToday(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		for _, login := range []string{"camila", "marta"} {
			c := s.client(t)
			c.signin(login, s.Pass[login])
			for _, pg := range deskPages {
				var form url.Values
				if pg.method == "POST" {
					form = url.Values{"url": {"http://example.com/h"}, "events": {"*"}}
				}
				res, body := c.do(pg.method, pg.path, form)
				if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "<html") {
					t.Errorf("%s: %s %s: %d, want the 403 page", login, pg.method, pg.path, res.StatusCode)
				}
			}
		}
		hooks, _ := db.ListWebhooks(context.Background(), s.Org.ID)
		if len(hooks) != 0 {
			t.Fatalf("a refused POST registered %d webhooks", len(hooks))
		}

		// Two decisions of the waiter: one alone, one sent for approval.
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		for _, amount := range []string{"10.000", "40.000"} {
			if res, body := w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {amount}}); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("decision %s: %d %s", amount, res.StatusCode, body)
			}
		}
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		res, _ := m.do("GET", "/", nil)
		if res.Header.Get("Location") != "/desk/today" {
			t.Errorf("a manager's landing page: %q", res.Header.Get("Location"))
		}
		res, body := m.do("GET", "/desk/today", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("today: %d %s", res.StatusCode, body)
		}
		for _, want := range []string{
			`<th scope="row">Permitidas</th><td>1</td>`,
			`<th scope="row">Enviadas a aprobación</th><td>1</td>`,
			`<th scope="row">Negadas</th><td>0</td>`,
			`Autonomía: 50 % tomadas sin aprobación (1 de 2).`,
			`1 esperando; la más antigua desde hace`,
			`<meter min="0" max="8000000" value="5000000"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("today lacks %q", want)
			}
		}
		if !strings.Contains(body, `href="/desk/audit"`) {
			t.Error("the manager's nav has no link to the audit trail")
		}
		_, cbody := w.do("GET", "/counter", nil)
		if strings.Contains(cbody, `href="/desk/`) {
			t.Error("a waiter's nav links to the manager's desk")
		}
	})
}

func TestDeskWebhooksAndTenancy(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, false)
		other := testsupport.NewOrg(t, db, testsupport.OrgOptions{Slug: "otra", Name: "Otra Casa", Currency: "COP",
			Timezone: "America/Bogota", Language: "es", Owner: testsupport.Member{Login: "duena"}, Policy: testPolicy})
		foreign := &margen.Webhook{ID: margen.NewID("whk"), OrgID: other.ID, URL: "https://otra.example/secret-hook",
			Events: []string{"*"}, Secret: "whsec_Zm9yZWlnbg==", Active: true, CreatedAt: time.Now()}
		if err := db.CreateWebhook(ctx, foreign, other.Owner.ID, nil); err != nil {
			t.Fatal(err)
		}
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])

		// A bad address is refused beside its field; nothing stored.
		res, body := m.do("POST", "/desk/webhooks", url.Values{"url": {"ftp://x"}, "events": {"*"}})
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="url-error"`) {
			t.Fatalf("bad url: %d", res.StatusCode)
		}
		res, body = m.do("POST", "/desk/webhooks", url.Values{"url": {"http://127.0.0.1:9/hook"}, "events": {"*"}})
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", res.StatusCode, body)
		}
		secret := regexp.MustCompile(`<code id="secret">(whsec_[^<]+)</code>`).FindStringSubmatch(body)
		hooks, err := db.ListWebhooks(ctx, s.Org.ID)
		if err != nil || len(hooks) != 1 {
			t.Fatalf("webhooks: %v %d", err, len(hooks))
		}
		if secret == nil {
			t.Fatal("the new endpoint's secret is not shown")
		}
		shown := html.UnescapeString(secret[1])
		_, list := m.do("GET", "/desk/webhooks", nil)
		_, detail := m.do("GET", "/desk/webhooks/"+hooks[0].ID, nil)
		for _, b := range []string{list, detail} {
			if strings.Contains(b, secret[1]) || strings.Contains(b, shown) || strings.Contains(b, "secret-hook") {
				t.Error("a page shows a secret after creation, or another organisation's endpoint")
			}
		}
		if res, _ := m.do("GET", "/desk/webhooks/"+foreign.ID, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("another organisation's webhook: %d", res.StatusCode)
		}
		if res, _ := m.do("POST", "/desk/webhooks/"+foreign.ID+"/disable", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("disabling another organisation's webhook: %d", res.StatusCode)
		}

		// An event after the endpoint exists makes a delivery; it fails once.
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"}})
		if _, err := db.DispatchWebhooks(ctx, s.Org.ID, time.Now(), 100); err != nil {
			t.Fatal(err)
		}
		claim := func() []margen.Job {
			t.Helper()
			js, err := db.ClaimJobs(ctx, margen.JobClaim{Kinds: []string{margen.JobWebhookDelivery}, Owner: "test",
				Now: time.Now().Add(time.Minute), Lease: time.Minute, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			return js
		}
		claimed := claim()
		if len(claimed) == 0 {
			t.Fatal("no delivery job to claim")
		}
		job := claimed[0]
		d, err := db.DeliveryForAttempt(ctx, s.Org.ID, job.UniqueKey)
		if err != nil {
			t.Fatal(err)
		}
		if d.Secret != shown {
			t.Errorf("the secret shown is not the one deliveries are signed with: %q vs %q (%d claimed, hook %s/%s)", d.Secret, shown, len(claimed), d.WebhookID, hooks[0].ID)
		}
		// No retry: the delivery fails.
		if err := db.FinishDelivery(ctx, d, margen.DeliveryAttempt{At: time.Now(), StatusCode: 500, Response: "boom", DurationMS: 3},
			&job, margen.JobResult{Error: "receiver answered 500"}); err != nil {
			t.Fatal(err)
		}
		res, body = m.do("GET", "/desk/deliveries/"+d.ID, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "fallida") || !strings.Contains(body, "<code>boom</code>") {
			t.Fatalf("delivery page: %d", res.StatusCode)
		}
		res, _ = m.do("POST", "/desk/deliveries/"+d.ID+"/replay", nil)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("replay: %d", res.StatusCode)
		}
		_, body = m.do("GET", res.Header.Get("Location"), nil)
		if !strings.Contains(body, "En cola para enviarse de nuevo") {
			t.Error("replay: no confirmation")
		}
		got, err := db.GetDelivery(ctx, s.Org.ID, d.ID)
		if err != nil || got.Status != margen.DeliveryPending {
			t.Fatalf("after replay: %v %+v", err, got)
		}
		again := claim()
		if len(again) != 1 || again[0].UniqueKey != d.ID {
			t.Fatalf("the replayed delivery is not sent again: %+v", again)
		}

		// Disable; the audit trail names it, and shows nothing of the other organisation.
		res, _ = m.do("POST", "/desk/webhooks/"+hooks[0].ID+"/disable", nil)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("disable: %d", res.StatusCode)
		}
		if h, _ := db.GetWebhook(ctx, s.Org.ID, hooks[0].ID); h.Active {
			t.Error("still active after disable")
		}
		_, body = m.do("GET", "/desk/audit?action=webhook.replay", nil)
		if !strings.Contains(body, "<code>"+d.ID+"</code>") || strings.Contains(body, "<code>decision.create</code>") {
			t.Errorf("audit filtered by webhook.replay: %s", body)
		}
		_, body = m.do("GET", "/desk/audit", nil)
		if strings.Contains(body, foreign.ID) || !strings.Contains(body, "<code>webhook.create</code>") {
			t.Error("the audit trail shows another organisation's entry, or lacks this one's")
		}
		// The filter offers every registered action.
		for _, a := range margen.AuditActions {
			if !strings.Contains(body, `<option value="`+string(a.Action)+`">`) {
				t.Errorf("the action filter does not offer %s", a.Action)
			}
		}
		if res, _ := m.do("GET", "/desk/audit?action="+url.QueryEscape("<x>"), nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("bad action filter: %d", res.StatusCode)
		}
	})
}

// TestDeskChainCheck: "check the chain" queues the ledger.check job (as
// POST /api/v1/ledger/check does) instead of checking inside the request;
// the audit page shows it running (refreshing itself with htmx), then its
// latest report with its time: clean, then, after a row of the trail is
// edited behind margen's back, broken with the record that does not match.
func TestDeskChainCheck(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		ctx := context.Background()
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"}})
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		runChecks := func(want int) {
			t.Helper()
			r := jobs.New(db, jobs.Options{Lease: jobs.LedgerCheckLease, Concurrency: 1})
			r.Register(margen.JobLedgerCheck, jobs.LedgerCheck(db, storetest.TestAuditKey, nil))
			n, err := r.Once(ctx)
			if err != nil || n != want {
				t.Fatalf("%d checks ran (%v), want %d", n, err, want)
			}
		}
		_, body := m.do("GET", "/desk/audit", nil)
		if !strings.Contains(body, "Todavía no se ha hecho ninguna comprobación") || strings.Contains(body, `hx-trigger="every 2s"`) {
			t.Fatalf("before any check: %s", body)
		}
		// Asked for twice: one job.
		for range 2 {
			res, body := m.do("POST", "/desk/audit/check", nil)
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/desk/audit#check" {
				t.Fatalf("ask for a check: %d %s", res.StatusCode, body)
			}
		}
		_, body = m.do("GET", "/desk/audit", nil)
		if !strings.Contains(body, "Hay una comprobación en curso") || !strings.Contains(body, `hx-get="/desk/audit/check" hx-trigger="every 2s"`) {
			t.Fatalf("a queued check: %s", body)
		}
		// The refresh answers the status alone.
		res, body := m.do("GET", "/desk/audit/check", nil, "HX-Request", "true")
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(body, `<div id="check"`) || strings.Contains(body, "<html") ||
			!strings.Contains(body, "en curso") {
			t.Fatalf("the status while running: %d %s", res.StatusCode, body)
		}
		if res, _ := m.do("GET", "/desk/audit/check", nil); res.StatusCode != http.StatusSeeOther {
			t.Errorf("the status without htmx: %d, want a redirect to the audit page", res.StatusCode)
		}
		runChecks(1)
		res, body = m.do("GET", "/desk/audit/check", nil, "HX-Request", "true")
		if !strings.Contains(body, "Todo en orden") || !strings.Contains(body, "Última comprobación:") || strings.Contains(body, "hx-trigger") {
			t.Fatalf("clean check: %d %s", res.StatusCode, body)
		}

		q := "UPDATE audit_log SET subject = 'tampered' WHERE org_id = ? AND seq = 2"
		if db.Engine() == "postgres" {
			q = strings.Replace(q, "?", "$1", 1)
		}
		if _, err := db.SQL().Exec(q, s.Org.ID); err != nil {
			t.Fatal(err)
		}
		m.do("POST", "/desk/audit/check", nil)
		runChecks(1)
		_, body = m.do("GET", "/desk/audit", nil)
		if !strings.Contains(body, "Algo no coincide") || !strings.Contains(body, "El registro de auditoría 2 no coincide con su sello") {
			t.Fatalf("tampered check: %s", body)
		}
		// The other door sees the same report.
		var api struct {
			OK      bool
			Running bool
			Audit   struct{ Broken int64 }
		}
		apiGet(t, s, "admin", "/api/v1/ledger/check", &api)
		if api.OK || api.Running || api.Audit.Broken != 2 {
			t.Errorf("the API's report: %+v", api)
		}
	})
}
