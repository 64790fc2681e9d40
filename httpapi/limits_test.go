package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/margenhq/margen/policy"
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
