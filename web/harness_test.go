package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
	"github.com/margenhq/margen/web"
)

// testPolicy is a small restaurant: a waiter may give a courtesy of up to
// 25.000 COP alone (80.000 a day); above that a supervisor decides in 10
// minutes; refunds are not theirs.
const testPolicy = `
currency: COP
actions:
  - id: cortesia
    label: {es: "Cortesía de la casa", en: "Courtesy gift"}
  - id: reembolso
    label: {es: "Reembolso", en: "Refund"}
roles:
  - id: mesero
    label: {es: "Mesero", en: "Waiter"}
  - id: supervisor
    label: {es: "Supervisora de turno", en: "Shift supervisor"}
    inherits: [mesero]
budgets:
  - id: mesero_dia
    scope: member
    period: day
    limit: 8000000
grants:
  - id: cortesia_mesa
    label: {es: "Cortesía en mesa", en: "Table courtesy"}
    role: mesero
    actions: [cortesia]
    max_amount: 2500000
    budgets: [mesero_dia]
    above: {approver: supervisor, sla: 10m, on_timeout: deny}
  - id: supervisor_todo
    role: supervisor
    actions: ["*"]
    max_amount: 50000000
`

// site is margen served on a local port: the web pages and the JSON API,
// as serve mounts them.
type site struct {
	URL   string
	DB    *store.DB
	Org   *testsupport.Org
	Pass  map[string]string        // login -> password
	Token map[string]string        // login -> API token
	Clock *testsupport.OffsetClock // the web's clock: move it past the session timeouts
	// Streams counts the live streams of both doors (the API's and the pages').
	Streams *events.StreamLimits
	srv     *httptest.Server
	h       http.Handler // what srv serves, for benchmarks without the network
}

// newSite serves an organisation (slug "demo") with an owner (admin), a
// waiter (camila, team salon) and a supervisor (marta), each with a
// password and an API token. With empty set, the database is left empty
// (first run).
// opts adjust the web's configuration (survey limits in the survey tests).
func newSite(t testing.TB, db *store.DB, empty bool, opts ...func(*web.Config)) *site {
	t.Helper()
	ctx := context.Background()
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	log := testsupport.Discard()
	clock := &testsupport.OffsetClock{}
	broker := events.NewBroker(db, events.Options{Clock: clock, Logger: log})
	engine := testsupport.Engine(t, db, decision.Options{Logger: log, Committed: broker.Notify})
	approvals := approval.New(db, engine, approval.Options{Clock: clock, Logger: log, Notify: broker.Notify})
	bctx, stop := context.WithCancel(context.Background())
	go broker.Run(bctx)
	shutdown := make(chan struct{})
	t.Cleanup(func() { close(shutdown); stop() })
	streams := events.NewStreamLimits(0, 0)
	api, err := httpapi.New(httpapi.Config{Store: db, Engine: engine, Catalog: cat, Logger: log, Clock: clock,
		Approvals: approvals, Broker: broker, Shutdown: shutdown, AuthCacheTTL: -1, Streams: streams})
	if err != nil {
		t.Fatal(err)
	}
	wcfg := web.Config{Store: db, Sessions: db.Sessions(), Engine: engine, Approvals: approvals,
		Broker: broker, Catalog: cat, Logger: log, Clock: clock, InsecureCookies: true, Shutdown: shutdown,
		SessionIdle: time.Hour, Streams: streams}
	for _, o := range opts {
		o(&wcfg)
	}
	pages, err := web.New(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/", pages)
	s := &site{DB: db, Pass: map[string]string{}, Token: map[string]string{}, Clock: clock, Streams: streams}
	s.h = mux
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	if empty {
		return s
	}
	s.Org = testsupport.NewOrg(t, db, testsupport.OrgOptions{Slug: "demo", Name: "Grupo La Brasa", Currency: "COP",
		Timezone: "America/Bogota", Language: "es", Owner: testsupport.Member{Login: "admin", Language: "es"},
		Members: []testsupport.Member{
			{Login: "camila", Role: "mesero", Team: "salon", Language: "es"},
			{Login: "marta", Access: margen.AccessSupervisor, Role: "supervisor", Team: "salon", Language: "es"},
		}, Policy: testPolicy})
	for login, m := range s.Org.Members {
		pw := auth.NewPassword()
		hash, err := auth.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetMemberPassword(ctx, s.Org.ID, m.ID, hash, "test"); err != nil {
			t.Fatal(err)
		}
		s.Pass[login] = pw
		plain, th := auth.NewToken()
		if err := db.CreateToken(ctx, &margen.Token{ID: margen.NewID("tok"), OrgID: s.Org.ID, MemberID: m.ID, Hash: th,
			Name: "test", CreatedAt: time.Now()}, "test"); err != nil {
			t.Fatal(err)
		}
		s.Token[login] = plain
	}
	return s
}

// engines runs fn on SQLite and on PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, e.Open(t))
		})
	}
}

// client is a browser without JavaScript: cookies, no redirects followed
// unless asked.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func (s *site) client(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: s.URL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends a request and returns the response with its body read.
func (c *client) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	c.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res, b.String()
}

// signin signs in and fails the test unless it leads to the counter.
func (c *client) signin(login, password string) {
	c.t.Helper()
	res, body := c.do("POST", "/signin", url.Values{"org": {"demo"}, "login": {login}, "password": {password}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/counter" {
		c.t.Fatalf("sign in as %s: %d %s", login, res.StatusCode, body)
	}
}

func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}
