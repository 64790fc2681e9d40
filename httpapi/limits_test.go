package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
	"github.com/margenhq/margen/ratelimit"
)

type limitProblem struct {
	Key    string
	Detail string
	Errors []struct {
		Line, Column int
		Limit        string
		Max          *int
	}
}

// TestPolicyLimits: hostile policy documents are refused with the limit
// named, translated, and nothing is published.
func TestPolicyLimits(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		nest := func(d int) string {
			return "currency: " + strings.Repeat("[", d) + strings.Repeat("]", d) + "\n"
		}
		for _, tc := range []struct {
			name, src string
			status    int
			limit     string
			max       int
			es, en    string
		}{
			// The cheap cases come first and stop the test if their bound is
			// missing: without it, the document of the finding (100 KB of
			// brackets, 50,000 deep) would make the parser exhaust memory.
			{"depth", nest(4000), 400, policy.LimitDepth, policy.MaxPolicyDepth, "anidada", "nested too deeply"},
			{"nodes", "currency: COP\nx: [" + strings.Repeat("a,", policy.MaxPolicyNodes) + "]\n", 400, policy.LimitNodes, policy.MaxPolicyNodes, "demasiados elementos", "too many YAML elements"},
			{"finding", nest(50000), 400, policy.LimitNodes, policy.MaxPolicyNodes, "demasiados elementos", "too many YAML elements"},
			{"scalar", "currency: " + strings.Repeat("C", policy.MaxScalarLen+1) + "\n", 400, policy.LimitScalar, policy.MaxScalarLen, "demasiado largo", "too long"},
			{"size", "currency: COP\n#" + strings.Repeat("x", policy.MaxPolicySize) + "\n", 413, policy.LimitSize, policy.MaxPolicySize, "demasiado grande", "too large"},
		} {
			ok := t.Run(tc.name, func(t *testing.T) {
				for _, lang := range []string{"es", "en"} {
					res := e.do("POST", "/api/v1/policies", "mario", tc.src, "Content-Type", "application/yaml", "Accept-Language", lang)
					res.want(tc.status).problem()
					var p limitProblem
					res.decode(&p)
					if p.Key != "error.policy_limit_"+tc.limit {
						t.Fatalf("key %q, want the %s limit: %s", p.Key, tc.limit, res.body)
					}
					want := map[string]string{"es": tc.es, "en": tc.en}[lang]
					if !strings.Contains(p.Detail, want) {
						t.Errorf("%s detail %q, want %q", lang, p.Detail, want)
					}
					if tc.status == 400 && (len(p.Errors) != 1 || p.Errors[0].Limit != tc.limit || p.Errors[0].Max == nil || *p.Errors[0].Max != tc.max || p.Errors[0].Line == 0) {
						t.Fatalf("errors %+v, want the %s limit with its maximum and position", p.Errors, tc.limit)
					}
				}
			})
			if !ok {
				t.FailNow()
			}
		}
		var pols struct{ Items []struct{ Version int } }
		e.do("GET", "/api/v1/policies", "mario", "").want(200).decode(&pols)
		if len(pols.Items) != 1 {
			t.Fatalf("%d policy versions after refused documents, want 1", len(pols.Items))
		}
	})
}

// TestHostilePoliciesDoNotStopOtherTenants: while a manager of one
// organisation posts hostile documents without pause, every decision of
// another organisation is answered.
func TestHostilePoliciesDoNotStopOtherTenants(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		// Each costs the YAML parser tens of megabytes without the bounds
		// (not gigabytes, so the test cannot take CI down if they go).
		hostile := []string{
			"currency: " + strings.Repeat("[", 4000) + strings.Repeat("]", 4000) + "\n",
			"currency:\n" + strings.Repeat("- ", 4000) + "x\n",
			"currency: " + strings.Repeat("{a: ", 2000) + "b" + strings.Repeat("}", 2000) + "\n",
			"currency: COP\nx: [" + strings.Repeat("a,", 60000) + "]\n",
		}
		stop := make(chan struct{})
		var refused, wrong atomic.Int64
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					res := e.do("POST", "/api/v1/policies", "mario", hostile[i%len(hostile)], "Content-Type", "application/yaml")
					var p limitProblem
					if res.status == http.StatusBadRequest && json.Unmarshal(res.body, &p) == nil && strings.HasPrefix(p.Key, "error.policy_limit_") {
						refused.Add(1)
					} else {
						wrong.Add(1)
					}
				}
			}()
		}
		const n = 200
		created, failed := 0, 0
		for i := range n {
			_, res := e.decide("omar", gift(1000, fmt.Sprintf("cli-%d", i)))
			if res.status == http.StatusCreated {
				created++
			} else {
				failed++
				t.Logf("decision %d: %d %s", i, res.status, res.body)
			}
		}
		close(stop)
		wg.Wait()
		if created != n || failed != 0 {
			t.Fatalf("%d of %d decisions answered 201, %d failed", created, n, failed)
		}
		if refused.Load() == 0 || wrong.Load() != 0 {
			t.Fatalf("hostile documents: %d refused with 400 naming a limit, %d answered otherwise", refused.Load(), wrong.Load())
		}
		t.Logf("%d decisions answered while %d hostile documents were refused", created, refused.Load())
	})
}

// rawDo sends a request with exactly the given headers (no defaults).
func rawDo(t *testing.T, url, method, path, body string, hdr http.Header) *response {
	t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &response{t: t, status: res.StatusCode, header: res.Header, body: b}
}

// TestJSONContentType: a JSON route refuses any other body type with 415,
// stores nothing, and accepts application/json with or without a UTF-8
// charset.
func TestJSONContentType(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		before := e.countDecisions(e.orgA.ID)
		for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
			"application/json; charset=latin1", "application/jsonx", "application/yaml", "json"} {
			for _, lang := range []string{"es", "en"} {
				hdr := http.Header{"Authorization": {"Bearer " + e.tok["iris"]}, "Accept-Language": {lang}}
				if ct != "" {
					hdr.Set("Content-Type", ct)
				}
				res := rawDo(t, e.srv.URL, "POST", "/api/v1/decisions", gift(1000, "ct-"+ct), hdr)
				p := res.want(http.StatusUnsupportedMediaType).problem()
				if p.Key != "error.unsupported_media_type" || p.Field != "Content-Type" || !strings.Contains(p.Detail, "application/json") {
					t.Errorf("Content-Type %q: %s", ct, res.body)
				}
				if want := map[string]string{"es": "Envía", "en": "Send"}[lang]; !strings.HasPrefix(p.Detail, want) {
					t.Errorf("%s detail %q", lang, p.Detail)
				}
			}
		}
		// Every JSON route checks it, before reading the body.
		for _, path := range []string{"/api/v1/refusals", "/api/v1/exceptions", "/api/v1/webhooks", "/api/v1/decisions/explain"} {
			hdr := http.Header{"Authorization": {"Bearer " + e.tok["olga"]}, "Content-Type": {"text/plain"}}
			rawDo(t, e.srv.URL, "POST", path, "{}", hdr).want(http.StatusUnsupportedMediaType).problem()
		}
		if n := e.countDecisions(e.orgA.ID); n != before {
			t.Fatalf("%d decisions stored by refused requests", n-before)
		}
		for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"} {
			hdr := http.Header{"Authorization": {"Bearer " + e.tok["ana"]}, "Content-Type": {ct}}
			rawDo(t, e.srv.URL, "POST", "/api/v1/decisions", gift(1000, fmt.Sprintf("ok-%d", i)), hdr).want(http.StatusCreated)
		}
		// A request without a body needs no Content-Type: it goes on to the
		// handler (here: not found).
		hdr := http.Header{"Authorization": {"Bearer " + e.tok["olga"]}}
		if res := rawDo(t, e.srv.URL, "POST", "/api/v1/deliveries/nope/replay", "", hdr); res.status == http.StatusUnsupportedMediaType {
			t.Fatalf("bodiless request refused for its type: %s", res.body)
		}
	})
}

// TestHeaderLimits: oversize headers get a 431 problem document over real
// HTTP, not the server's plain text.
func TestHeaderLimits(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		for name, hdr := range map[string]http.Header{
			"total":           {"X-Padding": {strings.Repeat("p", httpapi.MaxHeaderBytes)}},
			"many":            {"X-Padding": slices.Repeat([]string{strings.Repeat("p", 100)}, httpapi.MaxHeaderBytes/100+1)},
			"Accept-Language": {"Accept-Language": {strings.Repeat("es,", httpapi.MaxHeaderValue/3+1)}},
			"Idempotency-Key": {"Idempotency-Key": {strings.Repeat("k", httpapi.MaxHeaderValue+1)}},
			"Authorization":   {"Authorization": {"Bearer " + strings.Repeat("t", httpapi.MaxHeaderValue)}},
		} {
			hdr.Set("Content-Type", "application/json")
			if hdr.Get("Authorization") == "" {
				hdr.Set("Authorization", "Bearer "+e.tok["ana"])
			}
			res := rawDo(t, e.srv.URL, "POST", "/api/v1/decisions", gift(1000, "hdr"), hdr)
			p := res.want(http.StatusRequestHeaderFieldsTooLarge).problem()
			if p.Key != "error.headers_too_large" || !strings.Contains(p.Detail, "16") {
				t.Errorf("%s: %s", name, res.body)
			}
			if name != "total" && name != "many" && p.Field != name {
				t.Errorf("%s: field %q", name, p.Field)
			}
		}
		if n := e.countDecisions(e.orgA.ID); n != 0 {
			t.Fatalf("%d decisions stored by refused requests", n)
		}
		// Just under the limits, the request goes through.
		hdr := http.Header{"Authorization": {"Bearer " + e.tok["ana"]}, "Content-Type": {"application/json"},
			"X-Padding": {strings.Repeat("p", httpapi.MaxHeaderBytes/2)}, "Accept-Language": {strings.Repeat("e", httpapi.MaxHeaderValue)}}
		rawDo(t, e.srv.URL, "POST", "/api/v1/decisions", gift(1000, "hdr-ok"), hdr).want(http.StatusCreated)
	})
}

// limitedServer serves the API over e's database with the given limiters.
func limitedServer(t *testing.T, e *env, tokens, addrs *ratelimit.Limiter) string {
	t.Helper()
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := decision.New(e.db, decision.Options{Logger: log})
	t.Cleanup(eng.Close)
	h, err := httpapi.New(httpapi.Config{Store: e.db, Engine: eng, Catalog: cat, Logger: log,
		TokenLimit: tokens, AddressLimit: addrs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRateLimits: past its burst a token gets 429 with Retry-After, while
// another token goes on; the address limit covers every token of one
// client; the keys tracked stay bounded however many tokens are tried.
func TestRateLimits(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		// A rate so slow that nothing refills during the test.
		tokens := ratelimit.New(ratelimit.Options{PerSecond: 0.001, Burst: 5, MaxKeys: 50})
		url := limitedServer(t, e, tokens, nil)
		send := func(url, login string, i int) *response {
			hdr := http.Header{"Authorization": {"Bearer " + e.tok[login]}, "Content-Type": {"application/json"}, "Accept-Language": {"en"}}
			return rawDo(t, url, "POST", "/api/v1/decisions", gift(1000, fmt.Sprintf("%s-%d", login, i)), hdr)
		}
		for i := range 5 {
			send(url, "ana", i).want(http.StatusCreated)
		}
		res := send(url, "ana", 5)
		p := res.want(http.StatusTooManyRequests).problem()
		if p.Key != "error.rate_limited" || p.Code != "rate_limited" {
			t.Errorf("problem %+v", p)
		}
		if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After %q", res.header.Get("Retry-After"))
		}
		// Another token of the same client and organisation is not touched.
		for i := range 5 {
			send(url, "bob", i).want(http.StatusCreated)
		}
		if n := e.countDecisions(e.orgA.ID); n != 10 {
			t.Errorf("%d decisions stored, want 10 (the refused one is not)", n)
		}
		// Tokens that do not exist are limited (and tracked) like the others,
		// within the bound.
		for i := range 200 {
			hdr := http.Header{"Authorization": {fmt.Sprintf("Bearer bogus-%d", i)}}
			rawDo(t, url, "GET", "/api/v1/me", "", hdr).want(http.StatusUnauthorized)
		}
		if n := tokens.Len(); n > 50 {
			t.Errorf("%d tokens tracked, want at most 50", n)
		}

		// Per address: every token of this client counts.
		url = limitedServer(t, e, nil, ratelimit.New(ratelimit.Options{PerSecond: 0.001, Burst: 3}))
		for i, login := range []string{"sara", "mario", "olga"} {
			send(url, login, 10+i).want(http.StatusCreated)
		}
		send(url, "iris", 10).want(http.StatusTooManyRequests).problem()
		// Routes outside /api are not limited (the health check).
		rawDo(t, url, "GET", "/healthz", "", http.Header{}).want(http.StatusOK)
	})
}
