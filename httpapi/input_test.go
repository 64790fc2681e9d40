package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestBadText sends NUL bytes, invalid UTF-8 and control characters in
// every kind of input margen reads (JSON bodies, the policy body, path
// values, query values, headers) over HTTP: each is refused with a 400
// problem naming the field, in the caller's language, and nothing is
// stored. Before the edge checks, PostgreSQL answered 500 (SQLSTATE 22021).
func TestBadText(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		d, res := e.decide("ana", gift(1000, "mesa-1"))
		res.want(201)
		for _, tc := range []struct {
			name, method, path, login, body string
			hdr                             []string
			field, key                      string
		}{
			{"customer ref NUL", "POST", "/api/v1/decisions", "ana", `{"action":"courtesy_gift","amount":1,"customer":{"ref":"\u0000"}}`, nil, "customer.ref", "error.text_control"},
			{"customer ref invalid UTF-8", "POST", "/api/v1/decisions", "ana", "{\"action\":\"courtesy_gift\",\"amount\":1,\"customer\":{\"ref\":\"\xff\xfe\"}}", nil, "customer.ref", "error.text_encoding"},
			{"tag NUL", "POST", "/api/v1/decisions", "ana", `{"action":"courtesy_gift","amount":1,"customer":{"ref":"x","tags":["ok","\u0000"]}}`, nil, "customer.tags[1]", "error.text_control"},
			{"reason escape", "POST", "/api/v1/decisions", "ana", `{"action":"courtesy_gift","amount":1,"customer":{"ref":"x"},"reason":"\u001b[31m"}`, nil, "reason", "error.text_control"},
			{"context NUL", "POST", "/api/v1/decisions", "ana", `{"action":"courtesy_gift","amount":1,"customer":{"ref":"x"},"context":{"n":"\u0000"}}`, nil, "context.n", "error.text_control"},
			{"context key invalid UTF-8", "POST", "/api/v1/decisions", "ana", "{\"action\":\"courtesy_gift\",\"amount\":1,\"customer\":{\"ref\":\"x\"},\"context\":{\"\xff\":1}}", nil, "context", "error.text_encoding"},
			{"explain NUL", "POST", "/api/v1/decisions/explain", "ana", `{"action":"courtesy_gift","amount":1,"customer":{"ref":"\u0000"}}`, nil, "customer.ref", "error.text_control"},
			{"refusal NUL", "POST", "/api/v1/refusals", "ana", `{"wanted":"a\u0000","reason":"other","customer_left":"unknown"}`, nil, "wanted", "error.text_control"},
			{"reaction NUL", "POST", "/api/v1/acts/" + d.ActID + "/reaction", "ana", `{"sentiment":"positive","note":"\u0000"}`, nil, "note", "error.text_control"},
			{"webhook url NUL", "POST", "/api/v1/webhooks", "olga", `{"url":"https://example.com/\u0000","events":["*"]}`, nil, "url", "error.text_control"},
			{"policy NUL", "POST", "/api/v1/policies", "olga", string(restaurantPolicy(t)) + "\n# \x00\n", []string{"Content-Type", "application/yaml"}, "body", "error.text_control"},
			{"policy invalid UTF-8", "POST", "/api/v1/policies", "olga", string(restaurantPolicy(t)) + "\n# \xff\n", []string{"Content-Type", "application/yaml"}, "body", "error.text_encoding"},

			{"Idempotency-Key invalid UTF-8", "POST", "/api/v1/decisions", "ana", gift(1, "x"), []string{"Idempotency-Key", "\xff\xfe"}, "Idempotency-Key", "error.text_encoding"},
			{"Idempotency-Key too long", "POST", "/api/v1/refusals", "ana", `{"wanted":"a","reason":"other","customer_left":"unknown"}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, "Idempotency-Key", "error.too_long"},
			{"Accept-Language invalid UTF-8", "GET", "/api/v1/me", "ana", "", []string{"Accept-Language", "es\xff"}, "Accept-Language", "error.text_encoding"},
			{"Authorization invalid UTF-8", "GET", "/api/v1/me", "", "", []string{"Authorization", "Bearer \xff\xfe"}, "Authorization", "error.text_encoding"},
			{"Last-Event-ID invalid UTF-8", "GET", "/api/v1/events", "ana", "", []string{"Last-Event-ID", "1\xff"}, "Last-Event-ID", "error.text_encoding"},

			{"decision id NUL", "GET", "/api/v1/decisions/%00", "ana", "", nil, "id", "error.text_control"},
			{"act id invalid UTF-8", "GET", "/api/v1/acts/%FF%FE", "ana", "", nil, "id", "error.text_encoding"},
			{"refusal id NUL", "GET", "/api/v1/refusals/a%00b", "ana", "", nil, "id", "error.text_control"},
			{"approval id NUL", "POST", "/api/v1/approvals/%00/approve", "sara", `{}`, nil, "id", "error.text_control"},
			{"webhook id invalid UTF-8", "DELETE", "/api/v1/webhooks/%ff", "olga", "", nil, "id", "error.text_encoding"},
			{"delivery id NUL", "POST", "/api/v1/deliveries/%00/replay", "olga", "", nil, "id", "error.text_control"},
			{"path id too long", "GET", "/api/v1/decisions/" + strings.Repeat("d", 201), "ana", "", nil, "id", "error.too_long"},

			{"action filter invalid UTF-8", "GET", "/api/v1/decisions?action=%ff", "ana", "", nil, "action", "error.text_encoding"},
			{"customer filter NUL", "GET", "/api/v1/acts?customer=%00", "ana", "", nil, "customer", "error.text_control"},
			{"after NUL", "GET", "/api/v1/audit?after=%00", "olga", "", nil, "after", "error.text_control"},
			{"rule filter newline", "GET", "/api/v1/refusals?rule=a%0Ab", "ana", "", nil, "rule", "error.text_control"},
			{"query key NUL", "GET", "/api/v1/budgets?%00=1", "ana", "", nil, "query", "error.text_control"},
			{"query escape broken", "GET", "/api/v1/budgets?period=%zz", "ana", "", nil, "query", "error.query_syntax"},
			{"policy note NUL", "POST", "/api/v1/policies?note=%00", "olga", string(restaurantPolicy(t)), []string{"Content-Type", "application/yaml"}, "note", "error.text_control"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.auditSeq()
				res := e.do(tc.method, tc.path, tc.login, tc.body, tc.hdr...)
				p := res.want(http.StatusBadRequest).problem()
				if p.Field != tc.field || p.Key != tc.key {
					t.Errorf("field %q key %q; want %q %q: %s", p.Field, p.Key, tc.field, tc.key, res.body)
				}
				if tc.key != "error.query_syntax" && !strings.Contains(p.Detail, tc.field) {
					t.Errorf("detail %q does not name %q", p.Detail, tc.field)
				}
				if after := e.auditSeq(); after != before {
					t.Errorf("a refused request moved the audit trail from %d to %d", before, after)
				}
			})
		}
		// X-Request-Id is set by proxies: one that is not a plain token is
		// replaced by a fresh id, never echoed and never refused.
		res = e.do("GET", "/api/v1/me", "ana", "", "X-Request-Id", "id\xff\xfe")
		if got := res.want(200).header.Get("X-Request-Id"); got == "id\xff\xfe" || len(got) != 24 {
			t.Errorf("X-Request-Id answered %q", got)
		}
		// In the member's language: bob reads English.
		res = e.do("POST", "/api/v1/decisions", "bob", `{"action":"courtesy_gift","customer":{"ref":"\u0000"}}`)
		if p := res.want(400).problem(); p.Detail != "The field customer.ref contains a control character (such as NUL), which is not allowed there." {
			t.Errorf("en detail: %q", p.Detail)
		}
		// Free text keeps its line breaks and tabs; any script is fine.
		_, res = e.decide("ana", `{"action":"courtesy_gift","amount":1,"customer":{"ref":"mesa-ñ-☕","name":"Zoë"},"reason":"línea 1\nlínea 2\tfin"}`)
		res.want(201)
		e.do("GET", "/api/v1/refusals?customer=mesa-%C3%B1", "ana", "").want(200)
	})
}

func (e *env) auditSeq() int64 {
	e.t.Helper()
	n, err := e.db.LastAuditSeq(context.Background(), e.orgA.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestBadTextDoesNotSlowGoodDecisions sends bad and good decisions at once
// over HTTP: every good one is recorded (201), every bad one refused (400),
// and no batch transaction fails, so none is retried or split.
func TestBadTextDoesNotSlowGoodDecisions(t *testing.T) {
	eachEngine(t, func(t *testing.T, base *env) {
		full, eng := serveWith(t, base, base.db)
		e := full.env
		bad := []struct{ body, key string }{
			{`{"action":"courtesy_gift","amount":1,"customer":{"ref":"\u0000"}}`, ""},
			{"{\"action\":\"courtesy_gift\",\"amount\":1,\"customer\":{\"ref\":\"r\xff\"}}", ""},
			{`{"action":"courtesy_gift","amount":1,"customer":{"ref":"x"},"context":{"a":"\u0000"}}`, ""},
			{gift(1, "x"), "\xff\xfe"},
		}
		var wg sync.WaitGroup
		errs := make(chan string, 400)
		for i := range 40 {
			for j, b := range bad {
				wg.Add(2)
				go func() {
					defer wg.Done()
					var hdr []string
					if b.key != "" {
						hdr = []string{"Idempotency-Key", b.key}
					}
					if res := e.do("POST", "/api/v1/decisions", "ana", b.body, hdr...); res.status != 400 {
						errs <- fmt.Sprintf("bad %d: status %d: %s", j, res.status, res.body)
					}
				}()
				go func() {
					defer wg.Done()
					res := e.do("POST", "/api/v1/decisions", "bob", gift(1, fmt.Sprintf("good-%d-%d", i, j)), "Idempotency-Key", fmt.Sprintf("k-%d-%d", i, j))
					if res.status != 201 {
						errs <- fmt.Sprintf("good: status %d: %s", res.status, res.body)
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for s := range errs {
			t.Error(s)
		}
		if n := eng.FailedBatches(); n != 0 {
			t.Errorf("%d batch transactions failed; want 0", n)
		}
		if n := e.countDecisions(e.orgA.ID); n != 40*len(bad) {
			t.Errorf("%d decisions stored; want %d", n, 40*len(bad))
		}
	})
}
