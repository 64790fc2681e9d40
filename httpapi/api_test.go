package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// env is a running API over a real database with two organisations: A (the
// restaurant, with a member of every access level) and B (a stranger).
type env struct {
	t      *testing.T
	srv    *httptest.Server
	db     *store.DB
	orgA   *margen.Org
	orgB   *margen.Org
	tok    map[string]string         // login -> token
	member map[string]*margen.Member // login -> member
}

func restaurantPolicy(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../policy/testdata/restaurant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eachEngine runs fn on SQLite and, when MARGEN_TEST_POSTGRES is set, on
// PostgreSQL.
func eachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			fn(t, setup(t, eng.Open(t)))
		})
	}
}

func setup(t *testing.T, db *store.DB) *env {
	t.Helper()
	return setupLog(t, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func setupLog(t *testing.T, db *store.DB, log *slog.Logger) *env {
	t.Helper()
	eng := testsupport.Engine(t, db, decision.Options{Logger: log})
	e := &env{t: t, srv: testsupport.Server(t, httpapi.Config{Store: db, Engine: eng, Logger: log}), db: db,
		tok: map[string]string{}, member: map[string]*margen.Member{}}

	mkOrg := func(slug, owner string, members ...testsupport.Member) *margen.Org {
		o := testsupport.NewOrg(t, db, testsupport.OrgOptions{Slug: slug, Name: slug, Currency: "COP", Timezone: "America/Bogota",
			Owner: testsupport.Member{Login: owner, Role: "manager"}, Members: members})
		e.addToken(o.Owner)
		for _, m := range members {
			e.addToken(o.Members[m.Login])
		}
		return o.Org
	}
	e.orgA = mkOrg("la-ceiba", "olga",
		testsupport.Member{Login: "mario", Access: margen.AccessManager, Role: "manager"},
		testsupport.Member{Login: "sara", Access: margen.AccessSupervisor, Role: "supervisor"},
		testsupport.Member{Login: "ana", Access: margen.AccessFrontline, Role: "cashier", Language: "es"},
		testsupport.Member{Login: "bob", Access: margen.AccessFrontline, Role: "cashier", Language: "en"},
		testsupport.Member{Login: "iris", Access: margen.AccessFrontline, Role: "cashier"})
	e.orgB = mkOrg("otra", "omar")
	for _, owner := range []string{"olga", "omar"} {
		res := e.do("POST", "/api/v1/policies", owner, string(restaurantPolicy(t)), "Content-Type", "application/yaml")
		res.want(http.StatusCreated)
	}
	return e
}

func (e *env) addToken(m *margen.Member) {
	plain, hash := auth.NewToken()
	if err := e.db.CreateToken(context.Background(), &margen.Token{ID: margen.NewID("tok"), OrgID: m.OrgID, MemberID: m.ID, Hash: hash, Name: "test"}, "test"); err != nil {
		e.t.Fatal(err)
	}
	e.tok[m.Login] = plain
	e.member[m.Login] = m
}

type response struct {
	t      *testing.T
	status int
	header http.Header
	body   []byte
}

// do sends a request as login ("" for none); hdr are header name/value pairs.
func (e *env) do(method, path, login, body string, hdr ...string) *response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if login != "" {
		req.Header.Set("Authorization", "Bearer "+e.tok[login])
	}
	if body != "" && method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &response{t: e.t, status: res.StatusCode, header: res.Header, body: b}
}

func (r *response) want(status int) *response {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.body, err)
	}
}

type problem struct {
	Type, Title, Detail, Code, Key, Field string
	Status                                int
	Errors                                []struct {
		Line, Column  int
		Path, Message string
	}
}

func (r *response) problem() problem {
	r.t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		r.t.Fatalf("content type %q, want application/problem+json: %s", ct, r.body)
	}
	var p problem
	r.decode(&p)
	if p.Status != r.status || p.Detail == "" || p.Code == "" || p.Type == "" || p.Title == "" {
		r.t.Fatalf("incomplete problem: %s", r.body)
	}
	return p
}

func (e *env) decide(login, body string, hdr ...string) (*margen.Decision, *response) {
	e.t.Helper()
	res := e.do("POST", "/api/v1/decisions", login, body, hdr...)
	var d margen.Decision
	if res.status == http.StatusCreated {
		res.decode(&d)
	}
	return &d, res
}

func (e *env) countDecisions(org string) int {
	e.t.Helper()
	ds, err := e.db.ListDecisions(context.Background(), org, margen.DecisionFilter{Page: margen.Page{Limit: 1000}})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ds)
}

func gift(amount int64, ref string) string {
	return fmt.Sprintf(`{"action":"courtesy_gift","amount":%d,"customer":{"ref":%q},"reason":"plato frío"}`, amount, ref)
}

func TestDecisions(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name, login, body string
			outcome, code     string
			message           string // prefix of explanation.message
		}{
			{"allowed es", "ana", gift(500000, "mesa-4"), margen.OutcomeAllowed, "within_latitude",
				"Puedes hacerlo: está dentro de tu margen (regla Cortesía pequeña). Te quedan 55.000,00 COP hoy."},
			{"allowed en", "bob", gift(300000, "mesa-5"), margen.OutcomeAllowed, "within_latitude",
				"Go ahead: it is within your latitude (rule Small courtesy). You have COP 57,000.00 left today."},
			{"org language", "iris", gift(100000, "mesa-6"), margen.OutcomeAllowed, "within_latitude", "Puedes hacerlo"},
			{"needs approval es", "ana", gift(1000000, "mesa-7"), margen.OutcomeNeedsApproval, "over_max",
				"Necesitas aprobación: 10.000,00 COP supera tu máximo de 8.000,00 COP. Se lo hemos pedido a Supervisor de turno (respuesta en 10 min)."},
			{"needs approval en", "bob", gift(1000000, "mesa-8"), margen.OutcomeNeedsApproval, "over_max",
				"You need approval: COP 10,000.00 is over your maximum of COP 8,000.00. We have asked Shift supervisor (answer within 10 min)."},
			{"denied no grant", "ana", `{"action":"refund","amount":1000,"customer":{"ref":"c1"},"context":{"payment":"tarjeta"}}`, margen.OutcomeDenied, "no_grant",
				"Tu rol (Cajero) no tiene margen para Reembolso."},
			{"denied forbidden en", "bob", `{"action":"discount","amount":1000,"customer":{"ref":"pepe","tags":["empleado"]}}`, margen.OutcomeDenied, "forbidden",
				"Not allowed: No benefits may be granted to co-workers (rule Nothing for co-workers)."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d, res := e.decide(tc.login, tc.body)
				res.want(http.StatusCreated)
				if d.ID == "" || d.Outcome != tc.outcome || d.Explanation.Code != tc.code {
					t.Fatalf("got %s/%s id %q, want %s/%s: %s", d.Outcome, d.Explanation.Code, d.ID, tc.outcome, tc.code, res.body)
				}
				if !strings.HasPrefix(d.Explanation.Message, tc.message) {
					t.Errorf("message %q\nwant prefix %q", d.Explanation.Message, tc.message)
				}
				// The stored decision reads back with the same message.
				var got margen.Decision
				e.do("GET", "/api/v1/decisions/"+d.ID, tc.login, "").want(http.StatusOK).decode(&got)
				if got.ID != d.ID || got.Explanation.Message != d.Explanation.Message {
					t.Errorf("read back %+v", got)
				}
			})
		}

		// Budgets decrease: ana spent 500000 of her member_daily 6000000.
		var budgets struct{ Items []margen.BudgetAccount }
		e.do("GET", "/api/v1/budgets?budget=member_daily", "ana", "").want(http.StatusOK).decode(&budgets)
		if len(budgets.Items) != 1 || budgets.Items[0].Posted != 500000 || budgets.Items[0].Pending != 1000000 || budgets.Items[0].Subject != e.member["ana"].ID {
			t.Fatalf("ana's budgets: %+v", budgets.Items)
		}
		d, res := e.decide("ana", gift(700000, "mesa-9"))
		res.want(http.StatusCreated)
		if len(d.Budgets) == 0 || d.Budgets[0].Remaining != 6000000-500000-1000000-700000 {
			t.Errorf("remaining after second gift: %+v", d.Budgets)
		}

		// Explain evaluates without recording.
		before := e.countDecisions(e.orgA.ID)
		var x margen.Decision
		e.do("POST", "/api/v1/decisions/explain", "bob", gift(200000, "mesa-10")).want(http.StatusOK).decode(&x)
		if x.ID != "" || x.Outcome != margen.OutcomeAllowed || !strings.HasPrefix(x.Explanation.Message, "Go ahead") {
			t.Errorf("explain: %+v", x)
		}
		if n := e.countDecisions(e.orgA.ID); n != before {
			t.Errorf("explain recorded a decision: %d -> %d", before, n)
		}

		// An allowed decision's act, and the approval of a needs_approval one.
		var me struct {
			Member margen.Member
			Org    margen.Org
		}
		e.do("GET", "/api/v1/me", "ana", "").want(http.StatusOK).decode(&me)
		if me.Member.ID != e.member["ana"].ID || me.Org.ID != e.orgA.ID {
			t.Errorf("me: %+v", me)
		}
		e.do("GET", "/api/v1/acts/"+d.ActID, "ana", "").want(http.StatusOK)
		ap, _ := e.decide("ana", gift(900000, "mesa-11"))
		var apr struct {
			ID, Status, SLA string
		}
		e.do("GET", "/api/v1/approvals/"+ap.ApprovalID, "ana", "").want(http.StatusOK).decode(&apr)
		if apr.ID != ap.ApprovalID || apr.Status != margen.ApprovalPending || apr.SLA != "10m0s" {
			t.Errorf("approval: %+v", apr)
		}
		e.do("GET", "/api/v1/approvals/"+ap.ApprovalID, "bob", "").want(http.StatusNotFound)
		e.do("GET", "/api/v1/approvals/"+ap.ApprovalID, "sara", "").want(http.StatusOK)
	})
}

func TestBadInput(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		big := `{"action":"courtesy_gift","amount":1,"customer":{"ref":"x"},"reason":"` + strings.Repeat("a", 70<<10) + `"}`
		for _, tc := range []struct {
			name, body   string
			status       int
			key, field   string
			detailSubstr string
		}{
			{"malformed", "{\"action\": \"courtesy_gift\",\n \"amount\": 5,,}", 400, "error.json_syntax", "", "línea 2, columna"},
			{"truncated", `{"action":"courtesy_gift"`, 400, "error.json_syntax", "", ""},
			{"empty", ``, 400, "error.body_empty", "", ""},
			{"negative", gift(-5, "x"), 400, "error.amount_negative", "amount", ""},
			{"huge", gift(1_000_000_000_000_000, "x"), 400, "error.amount_too_large", "amount", "100.000.000.000,00 COP"},
			{"overflow", `{"action":"courtesy_gift","amount":99999999999999999999999,"customer":{"ref":"x"}}`, 400, "error.amount_too_large", "amount", ""},
			{"string amount", `{"action":"courtesy_gift","amount":"500","customer":{"ref":"x"}}`, 400, "error.amount_integer", "amount", ""},
			{"fraction", `{"action":"courtesy_gift","amount":5.5,"customer":{"ref":"x"}}`, 400, "error.amount_integer", "amount", ""},
			{"exponent", `{"action":"courtesy_gift","amount":1e3,"customer":{"ref":"x"}}`, 400, "error.amount_integer", "amount", ""},
			{"unknown action", `{"action":"free_car","amount":5,"customer":{"ref":"x"}}`, 400, "error.unknown_action", "action", "free_car"},
			{"wrong currency", `{"action":"courtesy_gift","amount":5,"currency":"USD","customer":{"ref":"x"}}`, 400, "error.currency_mismatch", "currency", "USD"},
			{"unknown field", `{"action":"courtesy_gift","amount":5,"customer":{"ref":"x"},"colour":"red"}`, 400, "error.unknown_field", "colour", "colour"},
			{"unknown nested field", `{"action":"courtesy_gift","amount":5,"customer":{"ref":"x","age":3}}`, 400, "error.unknown_field", "age", ""},
			{"trailing data", gift(5, "x") + `{}`, 400, "error.trailing_data", "", ""},
			{"wrong type", `{"action":5,"customer":{"ref":"x"}}`, 400, "error.json_type", "action", ""},
			{"missing customer", `{"action":"courtesy_gift","amount":5}`, 400, "error.required", "customer.ref", ""},
			{"context not object", `{"action":"courtesy_gift","amount":5,"customer":{"ref":"x"},"context":[1]}`, 400, "error.context_object", "context", ""},
			{"not monetary", `{"action":"rule_exception","amount":5,"customer":{"ref":"x"}}`, 400, "error.amount_not_monetary", "amount", ""},
			{"oversized", big, 413, "error.body_too_large", "", "65.536"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.countDecisions(e.orgA.ID)
				_, res := e.decide("ana", tc.body)
				res.want(tc.status)
				p := res.problem()
				if p.Key != tc.key || p.Field != tc.field {
					t.Errorf("key %q field %q, want %q %q: %s", p.Key, p.Field, tc.key, tc.field, res.body)
				}
				if !strings.Contains(p.Detail, tc.detailSubstr) {
					t.Errorf("detail %q does not mention %q", p.Detail, tc.detailSubstr)
				}
				if n := e.countDecisions(e.orgA.ID); n != before {
					t.Errorf("a bad request recorded a decision")
				}
			})
		}
		// Problems are in the member's language.
		_, res := e.decide("bob", gift(-1, "x"))
		if p := res.want(400).problem(); p.Detail != "The amount cannot be negative." {
			t.Errorf("en detail: %q", p.Detail)
		}
		// Without a member, Accept-Language decides.
		res = e.do("GET", "/api/v1/me", "", "", "Accept-Language", "en-US,en;q=0.9")
		if p := res.want(401).problem(); !strings.HasPrefix(p.Detail, "You need to sign in") {
			t.Errorf("401 detail: %q", p.Detail)
		}

		// A policy with a CEL syntax error: 400 with line and column.
		bad := strings.Replace(string(restaurantPolicy(t)), "if: 'weekday <= 5'", "if: 'weekday <= '", 1)
		res = e.do("POST", "/api/v1/policies", "olga", bad, "Content-Type", "application/yaml")
		p := res.want(400).problem()
		if p.Key != "error.policy_invalid" || len(p.Errors) == 0 || p.Errors[0].Line == 0 || p.Errors[0].Column == 0 || !strings.Contains(p.Errors[0].Path, "when") {
			t.Errorf("policy problem: %s", res.body)
		}
		// A policy that drops a role active members have.
		noCashier := strings.Replace(string(restaurantPolicy(t)), "id: cashier\n", "id: till\n", 1)
		noCashier = strings.ReplaceAll(noCashier, "[cashier, agent]", "[till, agent]")
		noCashier = strings.ReplaceAll(noCashier, "role: cashier", "role: till")
		res = e.do("POST", "/api/v1/policies", "olga", noCashier, "Content-Type", "application/yaml")
		if p := res.want(400).problem(); p.Key != "error.policy_roles_missing" || !strings.Contains(p.Detail, "ana (cashier)") {
			t.Errorf("roles problem: %s", res.body)
		}
		e.do("POST", "/api/v1/policies", "olga", string(restaurantPolicy(t)), "Content-Type", "application/json").want(415).problem()
		var pols struct{ Items []struct{ Version int } }
		e.do("GET", "/api/v1/policies", "ana", "").want(200).decode(&pols)
		if len(pols.Items) != 1 || pols.Items[0].Version != 1 {
			t.Errorf("a refused policy was stored: %+v", pols.Items)
		}
	})
}

func TestIdempotency(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		d1, res := e.decide("ana", gift(100000, "k1"), "Idempotency-Key", "key-1")
		res.want(201)
		if res.header.Get("Idempotent-Replayed") != "" {
			t.Error("first answer marked as replayed")
		}
		d2, res2 := e.decide("ana", gift(100000, "k1"), "Idempotency-Key", "key-1")
		res2.want(201)
		if d2.ID != d1.ID || res2.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(res.body, res2.body) {
			t.Errorf("replay: %s\nfirst: %s", res2.body, res.body)
		}
		_, res3 := e.decide("ana", gift(200000, "k1"), "Idempotency-Key", "key-1")
		if p := res3.want(422).problem(); p.Key != "error.idempotency_mismatch" {
			t.Errorf("mismatch: %+v", p)
		}
		// The key is the member's: another member may use the same one.
		e.decide("bob", gift(100000, "k1"), "Idempotency-Key", "key-1")
		// Concurrent duplicates: exactly one decision recorded.
		before := e.countDecisions(e.orgA.ID)
		var wg sync.WaitGroup
		statuses := make(chan int, 16)
		ids := make(chan string, 16)
		for range 16 {
			wg.Go(func() {
				d, res := e.decide("sara", gift(100000, "k2"), "Idempotency-Key", "same")
				statuses <- res.status
				if res.status == 201 {
					ids <- d.ID
				}
			})
		}
		wg.Wait()
		close(statuses)
		close(ids)
		for s := range statuses {
			if s != 201 && s != 409 {
				t.Errorf("concurrent duplicate answered %d", s)
			}
		}
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Errorf("concurrent duplicates got ids %v", seen)
		}
		if n := e.countDecisions(e.orgA.ID); n != before+1 {
			t.Errorf("concurrent duplicates recorded %d decisions", n-before)
		}

		// Non-decision writes: refusal replay, mismatch, concurrent.
		body := `{"wanted":"una botella de vino","reason":"not_allowed","customer_left":"unhappy"}`
		r1 := e.do("POST", "/api/v1/refusals", "ana", body, "Idempotency-Key", "ref-1").want(201)
		r2 := e.do("POST", "/api/v1/refusals", "ana", body, "Idempotency-Key", "ref-1").want(201)
		if !bytes.Equal(r1.body, r2.body) || r2.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("refusal replay: %s vs %s", r1.body, r2.body)
		}
		e.do("POST", "/api/v1/refusals", "ana", strings.Replace(body, "vino", "cava", 1), "Idempotency-Key", "ref-1").want(422)
		// The same key on another route is another request.
		e.do("POST", "/api/v1/decisions", "ana", gift(1, "k"), "Idempotency-Key", "ref-1").want(422)
		var refusals struct{ Items []margen.Refusal }
		e.do("GET", "/api/v1/refusals", "ana", "").want(200).decode(&refusals)
		if len(refusals.Items) != 1 {
			t.Errorf("refusals after replays: %d", len(refusals.Items))
		}
		var wg2 sync.WaitGroup
		var mu sync.Mutex
		got := map[int]int{}
		for range 8 {
			wg2.Go(func() {
				res := e.do("POST", "/api/v1/refusals", "bob", body, "Idempotency-Key", "ref-c")
				mu.Lock()
				got[res.status]++
				mu.Unlock()
			})
		}
		wg2.Wait()
		if got[201] == 0 || got[201]+got[409] != 8 {
			t.Errorf("concurrent refusals: %v", got)
		}
		e.do("GET", "/api/v1/refusals", "bob", "").want(200).decode(&refusals)
		if len(refusals.Items) != 1 {
			t.Errorf("concurrent refusals recorded %d", len(refusals.Items))
		}

		// Policy publish replay names the same version.
		pol := string(restaurantPolicy(t))
		p1 := e.do("POST", "/api/v1/policies", "mario", pol, "Content-Type", "application/yaml", "Idempotency-Key", "pol-1").want(201)
		p2 := e.do("POST", "/api/v1/policies", "mario", pol, "Content-Type", "application/yaml", "Idempotency-Key", "pol-1").want(201)
		if !bytes.Equal(p1.body, p2.body) || !strings.Contains(string(p1.body), `"version":2`) {
			t.Errorf("policy replay: %s vs %s", p1.body, p2.body)
		}
	})
}

func TestTenancyAndRoles(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		allowed, _ := e.decide("ana", gift(100000, "t1"))
		denied, _ := e.decide("ana", `{"action":"refund","amount":1000,"customer":{"ref":"t1"}}`)
		var ref margen.Refusal
		e.do("POST", "/api/v1/refusals", "ana", `{"wanted":"x","reason":"other","customer_left":"lost","customer":{"ref":"t1","name":"Tina"},"action":"refund","amount":5000}`).want(201).decode(&ref)
		if ref.CustomerID != margen.CustomerID(e.orgA.ID, "t1") || ref.Amount != 5000 {
			t.Errorf("refusal: %+v", ref)
		}
		for _, path := range []string{
			"/api/v1/decisions/" + allowed.ID,
			"/api/v1/acts/" + allowed.ActID,
			"/api/v1/refusals/" + ref.ID,
			"/api/v1/refusals/" + denied.RefusalID,
		} {
			// Org B's owner sees org A's ids exactly like random ids.
			other := e.do("GET", path, "omar", "").want(404).problem()
			random := e.do("GET", path[:strings.LastIndex(path, "/")+1]+margen.NewID("xyz"), "omar", "").want(404).problem()
			if other.Key != random.Key || other.Code != random.Code || other.Detail != random.Detail || other.Type != random.Type {
				t.Errorf("%s: other org %+v, random %+v", path, other, random)
			}
			// Another frontline member of the same org does not see ana's.
			e.do("GET", path, "bob", "").want(404)
			e.do("GET", path, "ana", "").want(200)
			e.do("GET", path, "sara", "").want(200)
		}
		e.do("POST", "/api/v1/acts/"+allowed.ActID+"/reaction", "omar", `{"sentiment":"positive"}`).want(404)

		// Role scoping.
		e.do("POST", "/api/v1/policies", "ana", string(restaurantPolicy(t)), "Content-Type", "application/yaml").want(403).problem()
		e.do("POST", "/api/v1/policies", "sara", string(restaurantPolicy(t)), "Content-Type", "application/yaml").want(403)
		e.do("GET", "/api/v1/audit", "ana", "").want(403)
		e.do("GET", "/api/v1/audit", "sara", "").want(403)
		e.do("GET", "/api/v1/ledger/check", "ana", "").want(403)
		e.do("GET", "/api/v1/decisions?member="+e.member["bob"].ID, "ana", "").want(403)
		e.do("GET", "/api/v1/budgets?subject="+e.member["bob"].ID, "ana", "").want(403)
		var ds struct{ Items []margen.Decision }
		e.do("GET", "/api/v1/decisions", "bob", "").want(200).decode(&ds)
		if len(ds.Items) != 0 {
			t.Errorf("bob sees %d decisions of others", len(ds.Items))
		}
		e.do("GET", "/api/v1/decisions", "sara", "").want(200).decode(&ds)
		if len(ds.Items) != 2 {
			t.Errorf("supervisor sees %d decisions, want 2", len(ds.Items))
		}
		var audit struct {
			Items []margen.AuditEntry
			Next  string
		}
		e.do("GET", "/api/v1/audit?limit=2", "mario", "").want(200).decode(&audit)
		if len(audit.Items) != 2 || audit.Next == "" {
			t.Errorf("audit page: %+v", audit)
		}
		check := e.checkNow("olga", "")
		if !check.OK || check.Audit.Checked == 0 {
			t.Errorf("ledger check: %+v", check)
		}

		// Unauthenticated and bad tokens.
		for _, auth := range []string{"", "Bearer", "Bearer mgn_nope", "Basic dXNlcjpwYXNz"} {
			res := e.do("GET", "/api/v1/decisions", "", "", "Authorization", auth)
			res.want(401).problem()
			if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate: %q", res.header.Get("WWW-Authenticate"))
			}
		}
		// Routing problems.
		if p := e.do("GET", "/api/v1/nope", "ana", "").want(404).problem(); p.Key != "error.route_not_found" {
			t.Errorf("404: %+v", p)
		}
		res := e.do("DELETE", "/api/v1/decisions", "ana", "")
		res.want(405).problem()
		if !strings.Contains(res.header.Get("Allow"), "POST") {
			t.Errorf("Allow: %q", res.header.Get("Allow"))
		}
		if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("X-Request-Id") == "" {
			t.Errorf("security headers: %v", res.header)
		}
		var health struct{ Status string }
		e.do("GET", "/healthz", "", "").want(200).decode(&health)
		if health.Status != "ok" {
			t.Errorf("healthz: %+v", health)
		}
	})
}

func TestReactions(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		d, _ := e.decide("ana", gift(100000, "r1"))
		path := "/api/v1/acts/" + d.ActID + "/reaction"
		e.do("POST", path, "ana", `{"sentiment":"delighted"}`).want(400)
		e.do("POST", path, "bob", `{"sentiment":"positive"}`).want(404)
		for _, bad := range []string{`11`, `-1`, `"9"`, `7.5`} {
			if p := e.do("POST", path, "ana", `{"sentiment":"positive","score":`+bad+`}`).want(400).problem(); p.Field != "score" {
				t.Errorf("score %s: %+v", bad, p)
			}
		}
		var rea margen.Reaction
		e.do("POST", path, "ana", `{"sentiment":"positive","note":"sonrió","score":9}`).want(201).decode(&rea)
		if rea.ActID != d.ActID || rea.Source != margen.SourceEmployee || rea.MemberID != e.member["ana"].ID ||
			rea.Score == nil || *rea.Score != 9 {
			t.Errorf("reaction: %+v", rea)
		}
		if p := e.do("POST", path, "ana", `{"sentiment":"neutral"}`).want(409).problem(); p.Key != "error.reaction_exists" {
			t.Errorf("second reaction: %+v", p)
		}
		var act margen.Act
		e.do("GET", "/api/v1/acts/"+d.ActID, "ana", "").want(200).decode(&act)
		if len(act.Reactions) != 1 || act.Reactions[0].Note != "sonrió" || act.Reactions[0].Score == nil || *act.Reactions[0].Score != 9 {
			t.Errorf("act reactions: %+v", act.Reactions)
		}
	})
}

func TestPaginationAndRefusals(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		want := map[string]bool{}
		for i := range 5 {
			d, res := e.decide("ana", gift(10000, fmt.Sprintf("p%d", i)))
			res.want(201)
			want[d.ID] = true
		}
		got := map[string]bool{}
		after, pages := "", 0
		for {
			var pg struct {
				Items []margen.Decision
				Next  string
			}
			e.do("GET", "/api/v1/decisions?limit=2&after="+after, "ana", "").want(200).decode(&pg)
			pages++
			for _, d := range pg.Items {
				if got[d.ID] {
					t.Fatalf("decision %s on two pages", d.ID)
				}
				got[d.ID] = true
			}
			if pg.Next == "" {
				break
			}
			after = pg.Next
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
		}
		if pages != 3 || len(got) != 5 {
			t.Errorf("pages %d, decisions %d", pages, len(got))
		}
		for id := range want {
			if !got[id] {
				t.Errorf("decision %s not listed", id)
			}
		}
		e.do("GET", "/api/v1/decisions?limit=0", "ana", "").want(400)
		e.do("GET", "/api/v1/decisions?since=yesterday", "ana", "").want(400)
		e.do("GET", "/api/v1/decisions?outcome=maybe", "ana", "").want(400)
		var pg struct{ Items []margen.Decision }
		e.do("GET", "/api/v1/decisions?customer=p1", "sara", "").want(200).decode(&pg)
		if len(pg.Items) != 1 {
			t.Errorf("by customer ref: %d", len(pg.Items))
		}

		// Refusals: validation, record, list.
		for _, body := range []string{
			`{"reason":"other","customer_left":"lost"}`,
			`{"wanted":"x","reason":"because","customer_left":"lost"}`,
			`{"wanted":"x","reason":"other","customer_left":"furious"}`,
			`{"wanted":"x","reason":"other","customer_left":"lost","amount":-1}`,
			`{"wanted":"x","reason":"other","customer_left":"lost","action":"free_car"}`,
		} {
			e.do("POST", "/api/v1/refusals", "ana", body).want(400).problem()
		}
		var ref margen.Refusal
		e.do("POST", "/api/v1/refusals", "ana", `{"wanted":"cambiar la mesa","reason":"other_department","customer_left":"escalation","note":"lo gestiona recepción"}`).want(201).decode(&ref)
		var refs struct{ Items []margen.Refusal }
		e.do("GET", "/api/v1/refusals?reason=other_department", "ana", "").want(200).decode(&refs)
		if len(refs.Items) != 1 || refs.Items[0].ID != ref.ID || refs.Items[0].Left != margen.LeftEscalation {
			t.Errorf("refusals: %+v", refs.Items)
		}
	})
}

func TestOpenAPI(t *testing.T) {
	e := setup(t, storetest.OpenSQLite(t))
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	e.do("GET", "/api/v1/openapi.json", "", "").want(200).decode(&doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	routes := map[string]bool{}
	for _, r := range httpapi.Routes() {
		method, path, _ := strings.Cut(r, " ")
		routes[strings.ToLower(method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !routes[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not routed", method, path)
			}
		}
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	e := setupLog(t, storetest.OpenSQLite(t), slog.New(slog.NewJSONHandler(&buf, nil)))
	res := e.do("POST", "/api/v1/decisions", "ana", gift(100, "secret-body-ref"), "X-Request-Id", "req-42")
	res.want(201)
	if res.header.Get("X-Request-Id") != "req-42" {
		t.Errorf("request id not echoed: %q", res.header.Get("X-Request-Id"))
	}
	out := buf.String()
	for _, want := range []string{`"request_id":"req-42"`, `"status":201`, `"path":"/api/v1/decisions"`, `"method":"POST"`, `"duration"`} {
		if !strings.Contains(out, want) {
			t.Errorf("access log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{e.tok["ana"], "secret-body-ref", "Bearer"} {
		if strings.Contains(out, secret) {
			t.Errorf("access log contains %q", secret)
		}
	}
}
