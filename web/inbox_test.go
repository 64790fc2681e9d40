package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/web"
)

// addMember adds a member with a password to the site's organisation and
// returns it.
func (s *site) addMember(t *testing.T, login, access, role, team string) *margen.Member {
	t.Helper()
	ctx := context.Background()
	m := &margen.Member{ID: margen.NewID("mem"), OrgID: s.Org.ID, Login: login, Name: login, Access: access, Role: role,
		Team: team, Active: true, CreatedAt: time.Now()}
	if err := s.DB.CreateMember(ctx, m, "test"); err != nil {
		t.Fatal(err)
	}
	pw := auth.NewPassword()
	hash, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB.SetMemberPassword(ctx, s.Org.ID, m.ID, hash, "test"); err != nil {
		t.Fatal(err)
	}
	s.Pass[login] = pw
	return m
}

// apiDecision asks POST /api/v1/decisions with login's token and returns
// the decision.
func (s *site) apiDecision(t *testing.T, login string, body map[string]any) *margen.Decision {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/decisions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.Token[login])
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d margen.Decision
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil || res.StatusCode/100 != 2 {
		t.Fatalf("POST /api/v1/decisions: %d %v", res.StatusCode, err)
	}
	return &d
}

// askAbove has camila ask for amount (above her latitude) through the JSON
// API and returns the approval request's id.
func (s *site) askAbove(t *testing.T, amount int64, reason string, extra ...any) string {
	t.Helper()
	body := map[string]any{"action": "cortesia", "amount": amount, "customer": map[string]any{"ref": "mesa-7", "name": "Mesa 7"}, "reason": reason}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	d := s.apiDecision(t, "camila", body)
	if d.ApprovalID == "" {
		t.Fatalf("decision %s (%s) has no approval request", d.ID, d.Outcome)
	}
	return d.ApprovalID
}

// TestInboxForbiddenToFrontline: a waiter gets the 403 page on the inbox,
// its stream and its answer, and no link to it.
func TestInboxForbiddenToFrontline(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		id := s.askAbove(t, 4000000, "mesa grande")
		c := s.client(t)
		c.signin("camila", s.Pass["camila"])
		for _, r := range []struct{ method, path string }{
			{"GET", "/inbox"}, {"GET", "/inbox/events"}, {"POST", "/inbox/approvals/" + id + "/answer"},
		} {
			var form url.Values
			if r.method == "POST" {
				form = url.Values{"answer": {"approve"}}
			}
			res, body := c.do(r.method, r.path, form, "Accept-Language", "en")
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "<html") {
				t.Errorf("%s %s as a waiter: %d, want the 403 page", r.method, r.path, res.StatusCode)
			}
		}
		if _, body := c.do("GET", "/counter", nil); strings.Contains(body, `href="/inbox"`) {
			t.Error("the waiter's counter links to the inbox")
		}
		a, err := db.GetApproval(context.Background(), s.Org.ID, id)
		if err != nil || a.Status != margen.ApprovalPending {
			t.Fatalf("the request after the waiter's answer: %v %v", a, err)
		}
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		if _, body := m.do("GET", "/counter", nil); !strings.Contains(body, `href="/inbox"`) {
			t.Error("the supervisor's counter does not link to the inbox")
		}
	})
}

// TestInboxAnswer: the inbox shows only what the member may decide (a
// supervisor of another team does not get a request of team salon), with
// the context to decide it, hostile text escaped; an answer by someone it
// is not routed to is refused; the supervisor's approval with a comment
// goes through the approval service; a second answer says who answered; an
// approval above the supervisor's own latitude moves the request up, where
// it is marked escalated; an act reported after the fact is marked a
// ratification.
func TestInboxAnswer(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := inboxSite(t, db)
		ctx := context.Background()
		s.addMember(t, "lucia", margen.AccessSupervisor, "supervisor", "cocina")
		hostile := `<script>alert("x")</script>`
		id := s.askAbove(t, 4000000, hostile)

		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		res, body := m.do("GET", "/inbox", nil, "Accept-Language", "en")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="request-`+id+`"`) {
			t.Fatalf("marta's inbox: %d, want request %s in it:\n%s", res.StatusCode, id, body)
		}
		for _, want := range []string{"camila asks for", "40,000", "Mesa 7", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
			"min left", "Daily budget per member: ", "Courtesy gift"} {
			if !strings.Contains(body, want) {
				t.Errorf("marta's inbox lacks %q", want)
			}
		}
		if strings.Contains(body, "<script>alert") {
			t.Error("the inbox shows hostile markup unescaped")
		}

		l := s.client(t)
		l.signin("lucia", s.Pass["lucia"])
		if _, body := l.do("GET", "/inbox", nil); strings.Contains(body, id) {
			t.Error("a supervisor of another team has the request of team salon in her inbox")
		}
		res, body = l.do("POST", "/inbox/approvals/"+id+"/answer", url.Values{"answer": {"approve"}}, "Accept-Language", "en")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "your role cannot decide it") {
			t.Fatalf("lucia's answer: %d %s", res.StatusCode, body)
		}
		if a, _ := db.GetApproval(ctx, s.Org.ID, id); a.Status != margen.ApprovalPending {
			t.Fatalf("after a refused answer the request is %s", a.Status)
		}

		res, _ = m.do("POST", "/inbox/approvals/"+id+"/answer", url.Values{"answer": {"approve"}, "comment": {"Dale, <b>cliente</b> fiel"}}, "Accept-Language", "en")
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/inbox" {
			t.Fatalf("marta's approval: %d", res.StatusCode)
		}
		a, err := db.GetApproval(ctx, s.Org.ID, id)
		if err != nil || a.Status != margen.ApprovalApproved || a.Comment != "Dale, <b>cliente</b> fiel" || a.DecidedBy != s.Org.Members["marta"].ID {
			t.Fatalf("the request after marta's approval: %+v %v", a, err)
		}
		_, body = m.do("GET", "/inbox", nil, "Accept-Language", "en")
		if strings.Count(body, "You approved camila") != 1 || strings.Contains(body, `id="request-`+id+`"`) {
			t.Errorf("the inbox after approving: no confirmation, or the request is still listed:\n%s", body)
		}
		res, body = m.do("POST", "/inbox/approvals/"+id+"/answer", url.Values{"answer": {"reject"}}, "Accept-Language", "en", "HX-Request", "true")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "marta already approved it") {
			t.Fatalf("a second answer: %d %s", res.StatusCode, body)
		}
		res, body = m.do("POST", "/inbox/approvals/"+id+"/answer", url.Values{"answer": {"approve"}, "comment": {strings.Repeat("x", 1001)}}, "Accept-Language", "en")
		if res.StatusCode == http.StatusSeeOther || !strings.Contains(body, "too long") {
			t.Fatalf("an oversized comment: %d %s", res.StatusCode, body)
		}

		// Above marta's own latitude (500.000): the request moves up to the
		// owner, whose inbox marks it escalated.
		big := s.askAbove(t, 60000000, "boda")
		res, body = m.do("POST", "/inbox/approvals/"+big+"/answer", url.Values{"answer": {"approve"}}, "Accept-Language", "en")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "beyond your own latitude") {
			t.Fatalf("an approval beyond marta's latitude: %d %s", res.StatusCode, body)
		}
		// An exception (no grant covers it) goes to the owner, marked.
		b, _ := json.Marshal(map[string]any{"description": "Cambiar el postre por vino", "reason": "aniversario"})
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/exceptions", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+s.Token["camila"])
		req.Header.Set("Content-Type", "application/json")
		xres, err := http.DefaultClient.Do(req)
		if err != nil || xres.StatusCode != http.StatusCreated {
			t.Fatalf("POST /api/v1/exceptions: %v %v", xres, err)
		}
		xres.Body.Close()
		o := s.client(t)
		o.signin("admin", s.Pass["admin"])
		_, body = o.do("GET", "/inbox", nil, "Accept-Language", "en")
		i := strings.Index(body, `id="request-`+big+`"`)
		if i < 0 || !strings.Contains(body[i:], "Escalated to you") {
			t.Fatalf("the owner's inbox does not show the escalated request marked:\n%s", body)
		}
		if !strings.Contains(body, "Cambiar el postre por vino") || !strings.Contains(body, `<mark class="exception">Exception</mark>`) {
			t.Errorf("the owner's inbox does not show the exception request marked")
		}

		// An act already done, above the waiter's latitude: a ratification.
		rat := s.askAbove(t, 3000000, "ya servido", "after_the_fact", true)
		_, body = m.do("GET", "/inbox", nil, "Accept-Language", "en")
		i = strings.Index(body, `id="request-`+rat+`"`)
		if i < 0 || !strings.Contains(body[i:], "Ratification: already done") {
			t.Fatalf("the ratification request is not marked:\n%s", body)
		}
	})
}

// TestInboxActivityFilters: the team's acts, reactions and refusals,
// narrowed by member, action, outcome and dates; a bad filter value is
// refused beside its field.
func TestInboxActivityFilters(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := inboxSite(t, db)
		c := s.client(t)
		c.signin("camila", s.Pass["camila"])
		res, _ := c.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"}, "reason": {"cafe frio"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("camila's act: %d", res.StatusCode)
		}
		d, err := db.GetDecision(context.Background(), s.Org.ID, strings.TrimPrefix(res.Header.Get("Location"), "/counter/decisions/"))
		if err != nil || d.ActID == "" {
			t.Fatalf("camila's decision: %v %v", d, err)
		}
		if res, _ := c.do("POST", "/counter/acts/"+d.ActID+"/reaction", url.Values{"sentiment": {"negative"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("reaction: %d", res.StatusCode)
		}
		if res, _ := c.do("POST", "/counter/refusals", url.Values{"action": {"cortesia"}, "reason": {"postre gratis"}, "left": {"lost"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("refusal: %d", res.StatusCode)
		}
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		if res, _ := m.do("POST", "/counter/decisions", url.Values{"action": {"reembolso"}, "amount": {"5.000"}, "reason": {"acto de marta"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("marta's act: %d", res.StatusCode)
		}
		loc, _ := time.LoadLocation("America/Bogota")
		today := time.Now().In(loc)
		camila := s.Org.Members["camila"].ID
		for _, tc := range []struct {
			query     string
			want, not []string
		}{
			{"", []string{"cafe frio", "postre gratis", "acto de marta", "Badly", "Will not come back"}, nil},
			{"outcome=refusal", []string{"postre gratis"}, []string{"cafe frio", "acto de marta"}},
			{"outcome=act&member=" + camila, []string{"cafe frio"}, []string{"postre gratis", "acto de marta"}},
			{"action=reembolso", []string{"acto de marta"}, []string{"cafe frio", "postre gratis"}},
			{"since=" + today.AddDate(0, 0, 1).Format("2006-01-02"), []string{"Nothing to show"}, []string{"cafe frio", "postre gratis", "acto de marta"}},
			{"since=" + today.Format("2006-01-02") + "&until=" + today.Format("2006-01-02"), []string{"cafe frio", "postre gratis", "acto de marta"}, nil},
		} {
			res, body := m.do("GET", "/inbox?"+tc.query, nil, "Accept-Language", "en")
			if res.StatusCode != http.StatusOK {
				t.Errorf("?%s: %d", tc.query, res.StatusCode)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("?%s: %q missing", tc.query, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("?%s: %q shown", tc.query, n)
				}
			}
		}
		for q, want := range map[string]string{
			"since=ayer":                          "Type a date like",
			"member=" + strings.Repeat("m", 5000): "Pick a person",
			"outcome=everything":                  "Pick an outcome",
			"action=%3Cscript%3E":                 "Pick an action",
			"since=2026-03-02&until=2026-03-01":   "cannot be before",
		} {
			res, body := m.do("GET", "/inbox?"+q, nil, "Accept-Language", "en")
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, want) || !strings.Contains(body, `aria-invalid="true"`) {
				t.Errorf("?%.40s: %d, want 400 with %q beside the field", q, res.StatusCode, want)
			}
		}
	})
}

// sseReader reads a member's open inbox stream.
type sseReader struct {
	t      *testing.T
	events chan [2]string // event, data
}

func (c *client) stream(t *testing.T, ctx context.Context, path string) *sseReader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	req.Header.Set("Accept-Language", "en")
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	r := &sseReader{t: t, events: make(chan [2]string, 64)}
	go func() {
		defer res.Body.Close()
		defer close(r.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != "" {
					r.events <- [2]string{ev, strings.Join(data, "\n")}
				}
				ev, data = "", nil
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return r
}

// next returns the data of the next event of that name (the test's
// deadline bounds the wait).
func (r *sseReader) next(name string) string {
	r.t.Helper()
	for ev := range r.events {
		if ev[0] == name {
			return ev[1]
		}
	}
	r.t.Fatalf("the stream ended before a %q event", name)
	return ""
}

// TestInboxLive: a request made through the JSON API reaches the open
// inbox of the supervisor it is routed to, over the stream, and not the
// inbox of a supervisor of another team; its time left is rewritten on the
// open page; the answer empties it again.
func TestInboxLive(t *testing.T) {
	web.SetInboxSLATick(t.Cleanup, 200*time.Millisecond)
	engines(t, func(t *testing.T, db *store.DB) {
		s := inboxSite(t, db)
		s.addMember(t, "lucia", margen.AccessSupervisor, "supervisor", "cocina")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		l := s.client(t)
		l.signin("lucia", s.Pass["lucia"])
		ms := m.stream(t, ctx, "/inbox/events")
		ls := l.stream(t, ctx, "/inbox/events")
		if first := ms.next("pending"); !strings.Contains(first, "No requests are waiting") {
			t.Fatalf("the first list: %s", first)
		}
		ls.next("pending")
		id := s.askAbove(t, 4000000, "cumpleaños")
		got := ms.next("pending")
		if !strings.Contains(got, `id="request-`+id+`"`) || !strings.Contains(got, "cumpleaños") {
			t.Fatalf("marta's stream after the request: %s", got)
		}
		if other := ls.next("pending"); strings.Contains(other, id) {
			t.Fatal("lucia's stream carries a request routed to team salon")
		}
		// The time left is rewritten on the open page.
		if left := ms.next("sla-" + id); !strings.Contains(left, "min left") {
			t.Fatalf("the time left: %q", left)
		}
		res, body := m.do("POST", "/inbox/approvals/"+id+"/answer", url.Values{"answer": {"reject"}, "comment": {"hoy no"}}, "HX-Request", "true", "Accept-Language", "en")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "You rejected camila") {
			t.Fatalf("rejecting with htmx: %d %s", res.StatusCode, body)
		}
		if got := ms.next("pending"); strings.Contains(got, id) {
			t.Fatalf("marta's stream after rejecting still lists it: %s", got)
		}
	})
}

// inboxSite is the test site with its members' language unset, so the
// pages follow each request's Accept-Language as these tests ask them to.
func inboxSite(t *testing.T, db *store.DB) *site {
	t.Helper()
	s := newSite(t, db, false)
	ms, err := db.ListMembers(context.Background(), s.Org.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if err := db.SetMemberLanguage(context.Background(), s.Org.ID, m.ID, "", "test"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestWebStreamsShareTheLimit: the pages' live streams count against the
// same per-member limit as GET /api/v1/events; beyond it the stream answers
// the 429 page with Retry-After, and a freed place lets it open.
func TestWebStreamsShareTheLimit(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := inboxSite(t, db)
		marta := s.Org.Members["marta"]
		var ends []func()
		for range events.DefaultStreamsPerMember {
			end, err := s.Streams.Open(s.Org.ID, marta.ID)
			if err != nil {
				t.Fatal(err)
			}
			ends = append(ends, end)
		}
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		// open answers the stream's status, headers and first bytes; a
		// stream is cut after a few seconds instead of hanging the test.
		open := func() (int, http.Header, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/inbox/events", nil)
			req.Header.Set("Accept-Language", "en")
			resp, err := m.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b := make([]byte, 4096)
			n, _ := io.ReadAtLeast(resp.Body, b, 1)
			return resp.StatusCode, resp.Header, string(b[:n])
		}
		code, h, body := open()
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "Too many live pages") {
			t.Fatalf("a stream over the limit: %d %q\n%s", code, h.Get("Retry-After"), body)
		}
		ends[0]()
		if code, _, _ := open(); code != http.StatusOK {
			t.Fatalf("a stream with a place free: %d", code)
		}
	})
}
