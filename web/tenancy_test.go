package web_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/web"
)

// tenant is one organisation of the tenancy test, with what it holds: the
// logins of its owner, waiter and supervisor, texts only it has (names,
// reasons, addresses) and the id of every row it has.
type tenant struct {
	slug, owner, waiter, supervisor string
	org                             *margen.Org
	markers                         []string
	ids                             []string
}

// addTenant creates a second organisation on the site, with an owner, a
// waiter and a supervisor who have passwords.
func (s *site) addTenant(t *testing.T, slug, owner, waiter, supervisor string) *tenant {
	t.Helper()
	o := testsupport.NewOrg(t, s.DB, testsupport.OrgOptions{Slug: slug, Name: "Casa " + slug, Currency: "COP",
		Timezone: "America/Bogota", Language: "es", Owner: testsupport.Member{Login: owner, Language: "es"},
		Members: []testsupport.Member{
			{Login: waiter, Role: "mesero", Team: "salon", Language: "es"},
			{Login: supervisor, Access: margen.AccessSupervisor, Role: "supervisor", Team: "salon", Language: "es"},
		}, Policy: testPolicy})
	for login, m := range o.Members {
		hash, pw := "", auth.NewPassword()
		var err error
		if hash, err = auth.HashPassword(pw); err != nil {
			t.Fatal(err)
		}
		if err := s.DB.SetMemberPassword(context.Background(), o.ID, m.ID, hash, "test"); err != nil {
			t.Fatal(err)
		}
		s.Pass[login] = pw
	}
	return &tenant{slug: slug, owner: owner, waiter: waiter, supervisor: supervisor, org: o.Org}
}

// signinTo signs in to the organisation slug.
func (c *client) signinTo(slug, login, password string) {
	c.t.Helper()
	res, body := c.do("POST", "/signin", url.Values{"org": {slug}, "login": {login}, "password": {password}})
	if res.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign in as %s/%s: %d %s", slug, login, res.StatusCode, body)
	}
}

// seed fills the tenant through its own pages: decisions (a yes with a
// reaction, a request waiting for approval, a no with an exception), a
// refusal, a team, an invitation and a webhook with a delivery; then it
// collects the id of every row the organisation's audit trail seals, and
// of its webhooks and deliveries.
func (s *site) seed(t *testing.T, tn *tenant) {
	t.Helper()
	ctx := context.Background()
	mark := "zz" + tn.slug + "secret"
	tn.markers = []string{mark, tn.org.Name, mark + " cliente", mark + " motivo", mark + " equipo", mark + " invitada", mark + " no pude"}
	w := s.client(t)
	w.signinTo(tn.slug, tn.waiter, s.Pass[tn.waiter])
	decide := func(action, amount string) string {
		t.Helper()
		res, body := w.do("POST", "/counter/decisions", url.Values{"action": {action}, "amount": {amount},
			"customer": {"new"}, "customer_name": {mark + " cliente " + amount}, "reason": {mark + " motivo"}})
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/counter/decisions/") {
			t.Fatalf("%s: decide %s %s: %d %s", tn.slug, action, amount, res.StatusCode, body)
		}
		return strings.TrimPrefix(loc, "/counter/decisions/")
	}
	yes := decide("cortesia", "10.000")
	decide("cortesia", "40.000")
	no := decide("reembolso", "5.000")
	if res, body := w.do("POST", "/counter/decisions/"+no+"/exception", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: exception: %d %s", tn.slug, res.StatusCode, body)
	}
	if res, body := w.do("POST", "/counter/refusals", url.Values{"left": {margen.LeftUnhappy}, "customer_name": {mark + " refusal"},
		"reason": {mark + " no pude"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: refusal: %d %s", tn.slug, res.StatusCode, body)
	}
	d, err := s.DB.GetDecision(ctx, tn.org.ID, yes)
	if err != nil || d.ActID == "" {
		t.Fatalf("%s: the yes has no act: %v", tn.slug, err)
	}
	if res, body := w.do("POST", "/counter/acts/"+d.ActID+"/reaction", url.Values{"sentiment": {margen.SentimentPositive}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: reaction: %d %s", tn.slug, res.StatusCode, body)
	}

	o := s.client(t)
	o.signinTo(tn.slug, tn.owner, s.Pass[tn.owner])
	if res, body := o.do("POST", "/desk/teams", url.Values{"slug": {mark + "team"}, "name": {mark + " equipo"}}); res.StatusCode/100 == 5 || res.StatusCode == 422 {
		t.Fatalf("%s: team: %d %s", tn.slug, res.StatusCode, body)
	}
	res, body := o.do("POST", "/desk/invitations", url.Values{"name": {mark + " invitada"}, "access": {margen.AccessFrontline}, "role": {"mesero"}})
	if link := regexp.MustCompile(`/invite/[A-Za-z0-9_-]+`).FindString(body); res.StatusCode/100 != 2 || link == "" {
		t.Fatalf("%s: invitation: %d %s", tn.slug, res.StatusCode, body)
	}
	if res, body := o.do("POST", "/desk/webhooks", url.Values{"url": {"http://127.0.0.1:9/" + mark}, "events": {"*"}}); res.StatusCode != http.StatusCreated {
		t.Fatalf("%s: webhook: %d %s", tn.slug, res.StatusCode, body)
	}
	decide("cortesia", "1.000") // an event for the webhook
	if _, err := s.DB.DispatchWebhooks(ctx, tn.org.ID, time.Now(), 100); err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	add := func(id string) {
		// Keys that are not ids (policy version numbers) name rows of
		// every organisation alike.
		if strings.Contains(id, "_") && len(id) >= 8 && !seen[id] {
			seen[id] = true
			tn.ids = append(tn.ids, id)
		}
	}
	entries, err := s.DB.ListAudit(ctx, tn.org.ID, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		for _, line := range strings.Split(e.Rows, "\n") {
			if f := strings.Fields(line); len(f) == 3 {
				add(f[1])
			}
		}
	}
	hooks, err := s.DB.ListWebhooks(ctx, tn.org.ID)
	if err != nil || len(hooks) == 0 {
		t.Fatalf("%s: webhooks: %v", tn.slug, err)
	}
	for _, h := range hooks {
		add(h.ID)
		ds, err := s.DB.ListDeliveries(ctx, tn.org.ID, margen.DeliveryFilter{WebhookID: h.ID, Page: margen.Page{Limit: 100}})
		if err != nil || len(ds) == 0 {
			t.Fatalf("%s: deliveries: %v %d", tn.slug, err, len(ds))
		}
		for _, x := range ds {
			add(x.ID)
		}
	}
	for _, prefix := range []string{"dec_", "act_", "apr_", "mem_", "whk_", "ref_"} {
		if !hasPrefix(tn.ids, prefix) {
			t.Fatalf("%s: no %s id collected from %d ids", tn.slug, prefix, len(tn.ids))
		}
	}
}

func hasPrefix(ids []string, prefix string) bool {
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			return true
		}
	}
	return false
}

// wildcard matches a path wildcard of a route pattern.
var wildcard = regexp.MustCompile(`\{[^}]+\}`)

// probe is one request of the tenancy test.
type probe struct {
	method, path string
	byID         bool // the path names another organisation's row: 404 or 403
}

// probes are the requests that put the ids of other into every route of
// the page table: each wildcard replaced by an id of each kind (decision,
// act, approval, member, webhook, delivery, ...), and every GET route
// without a wildcard called with those ids (and other's texts) in its
// query; a form without a wildcard is sent once. Public routes without a
// wildcard show no organisation's data; a public link's token (an
// invitation, a survey) is a credential of its own, not an id.
func probes(other *tenant) []probe {
	var ids []string
	kinds := map[string]bool{}
	for _, id := range other.ids {
		kind, _, _ := strings.Cut(id, "_")
		if !kinds[kind] {
			kinds[kind] = true
			ids = append(ids, id)
		}
	}
	var out []probe
	for _, rt := range web.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = strings.TrimSuffix(path, "{$}")
		switch {
		case rt.Access == "" && wildcard.MatchString(path) && !strings.HasPrefix(path, "/static/"):
			// A public link's token (an invitation, a survey link or
			// code) is a credential of its own, not an id.
		case wildcard.MatchString(path):
			for _, id := range ids {
				out = append(out, probe{method, wildcard.ReplaceAllString(path, id), true})
			}
		case rt.Access == "":
		case method == "POST":
			out = append(out, probe{method, path, false})
		default:
			for _, id := range ids {
				q := url.Values{}
				for _, k := range []string{"member", "action", "outcome", "customer", "customer_name", "a", "b", "before", "id", "approval", "decision"} {
					q.Set(k, id)
				}
				out = append(out, probe{method, path + "?" + q.Encode(), false})
			}
			out = append(out, probe{method, path + "?customer_name=" + url.QueryEscape(other.markers[0]), false})
		}
	}
	return out
}

// probe sends one request, reading at most a moment of a stream.
func (c *client) probe(p probe, form url.Values) (int, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var body io.Reader
	if p.method == "POST" {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, p.method, c.base+p.path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if p.method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", p.method, p.path, err)
	}
	defer res.Body.Close()
	stream := strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream")
	if stream {
		time.AfterFunc(300*time.Millisecond, cancel) // what it sends at once is enough
	}
	b, err := io.ReadAll(res.Body)
	if err != nil && !stream {
		c.t.Fatalf("%s %s: reading: %v", p.method, p.path, err)
	}
	return res.StatusCode, string(b)
}

// tenancyForm fills every field a page form reads, with valid values, so a
// form is refused for the id in its path, not for a missing field.
func tenancyForm() url.Values {
	return url.Values{"answer": {"approve"}, "comment": {"x"}, "sentiment": {margen.SentimentPositive}, "left": {margen.LeftUnhappy},
		"action": {"cortesia"}, "amount": {"1.000"}, "customer": {"none"}, "reason": {"x"},
		"access": {margen.AccessFrontline}, "role": {"mesero"}, "team": {""}, "name": {"x"}, "active": {"false"},
		"password": {"una-clave-larga-de-prueba"}, "password2": {"una-clave-larga-de-prueba"}}
}

// TestNoPageShowsAnotherOrganisation: two organisations with data; an
// open inbox gets its own organisation's new request and not the other's;
// each one's owner, supervisor and waiter call every route of the page
// table with the other's ids in the path (the 404 or 403 page) and in the
// query (nothing of the other shown); no page shows the other's ids or
// texts, and the other's audit trail does not move.
func TestNoPageShowsAnotherOrganisation(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, false)
		a := &tenant{slug: "demo", owner: "admin", waiter: "camila", supervisor: "marta", org: s.Org.Org}
		b := s.addTenant(t, "otra", "duenab", "pedrob", "sofiab")
		s.seed(t, a)
		s.seed(t, b)

		// Live: a's open inbox gets a's new request and nothing of b's,
		// which came first.
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		sup := s.client(t)
		sup.signinTo(a.slug, a.supervisor, s.Pass[a.supervisor])
		live := sup.stream(t, sctx, "/inbox/events")
		live.next("pending")
		for _, tn := range []*tenant{b, a} {
			w := s.client(t)
			w.signinTo(tn.slug, tn.waiter, s.Pass[tn.waiter])
			w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"40.000"}, "reason": {tn.markers[0] + " en vivo"}})
		}
		got := false
		for ev := range live.events {
			if strings.Contains(ev[1], b.markers[0]) {
				t.Fatalf("a's open inbox got b's request: %s", ev[1])
			}
			if got = strings.Contains(ev[1], a.markers[0]+" en vivo"); got {
				break
			}
		}
		if !got {
			t.Fatal("a's open inbox did not get a's request")
		}
		cancel()
		for _, pair := range [][2]*tenant{{a, b}, {b, a}} {
			me, other := pair[0], pair[1]
			before, err := db.LastAuditSeq(ctx, other.org.ID)
			if err != nil {
				t.Fatal(err)
			}
			ps := probes(other)
			form := tenancyForm()
			for _, login := range []string{me.owner, me.supervisor, me.waiter} {
				c := s.client(t)
				c.signinTo(me.slug, login, s.Pass[login])
				for _, p := range ps {
					status, body := c.probe(p, form)
					// The language switch sends the visitor back to the
					// path they asked for: their own words, not data.
					path, _, _ := strings.Cut(p.path, "?")
					body = strings.ReplaceAll(body, `name="back" value="`+path+`"`, "")
					if p.byID {
						if status != http.StatusNotFound && status != http.StatusForbidden {
							t.Errorf("%s/%s: %s %s = %d, want 404 or 403", me.slug, login, p.method, p.path, status)
						}
					} else if status >= 500 {
						t.Errorf("%s/%s: %s %s = %d", me.slug, login, p.method, p.path, status)
					}
					asked, _ := url.QueryUnescape(p.path)
					for _, x := range append(other.markers, other.ids...) {
						// What the visitor typed may be echoed (a search,
						// a filter): it is not the other's data.
						if strings.Contains(body, x) && !strings.Contains(asked, x) {
							t.Errorf("%s/%s: %s %s shows %q of %s", me.slug, login, p.method, p.path, x, other.slug)
							break
						}
					}
				}
			}
			// The probe can fail: each sees their own organisation's data.
			c := s.client(t)
			c.signinTo(me.slug, me.supervisor, s.Pass[me.supervisor])
			if _, body := c.do("GET", "/inbox", nil); !strings.Contains(body, me.markers[3]) {
				t.Errorf("%s's inbox does not show its own request", me.slug)
			}
			if after, err := db.LastAuditSeq(ctx, other.org.ID); err != nil || after != before {
				t.Errorf("%s's audit trail moved from %d to %d (%v) while %s probed it", other.slug, before, after, err, me.slug)
			}
		}
	})
}
