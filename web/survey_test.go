package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qr "github.com/piglig/go-qr"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/ratelimit"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
	"github.com/margenhq/margen/web"
)

var surveyURL = regexp.MustCompile(`https?://[^"<\s]+/(s|q)/([A-Za-z0-9_-]{32})`)

// noSurveyLimits turns the survey pages' rate limits off.
func noSurveyLimits(c *web.Config) {
	c.Surveys.PerAddress = ratelimit.Options{PerSecond: -1}
	c.Surveys.PerToken = ratelimit.Options{PerSecond: -1}
}

// actOf has camila take a small courtesy at the counter and returns its act.
func actOf(t *testing.T, s *site, w *client) *margen.Act {
	t.Helper()
	if res, body := w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"}, "reason": {"café frío"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("decision: %d %s", res.StatusCode, body)
	}
	acts, err := s.DB.ListActs(context.Background(), s.Org.ID, margen.ActFilter{MemberID: s.Org.Members["camila"].ID})
	if err != nil || len(acts) == 0 {
		t.Fatalf("acts: %v, %v", acts, err)
	}
	return &acts[0]
}

// newLink makes a survey link for the act at the counter and returns its
// URL's path (/s/TOKEN) and token.
func newLink(t *testing.T, w *client, actID string) (path, token string) {
	t.Helper()
	res, body := w.do("POST", "/counter/acts/"+actID+"/survey", url.Values{})
	m := surveyURL.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("survey link: %d %s", res.StatusCode, body)
	}
	return "/s/" + m[2], m[2]
}

// TestSurveyLinkFlow: a link made after an act is shown as a QR code (SVG,
// and PNG that decodes to the link), answered once by a visitor without an
// account (a second answer is told kindly that the first was kept), and
// the act then shows the employee's reaction and the customer's answer.
func TestSurveyLinkFlow(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false, noSurveyLimits)
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		act := actOf(t, s, w)
		if res, _ := w.do("POST", "/counter/acts/"+act.ID+"/reaction", url.Values{"sentiment": {"positive"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("reaction: %d", res.StatusCode)
		}
		path, tok := newLink(t, w, act.ID)

		res, svg := w.do("GET", "/counter/survey/qr.svg?t="+tok, nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(svg, "<svg") {
			t.Fatalf("QR svg: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		res, pngBody := w.do("GET", "/counter/survey/qr.png?t="+tok, nil)
		img, err := png.Decode(bytes.NewReader([]byte(pngBody)))
		if res.StatusCode != 200 || err != nil {
			t.Fatalf("QR png: %d %v", res.StatusCode, err)
		}
		if text, err := qr.Decode(img); err != nil || !strings.HasSuffix(text, path) {
			t.Fatalf("the PNG decodes to %q, %v; want the link %s", text, err, path)
		}
		// Another member's link is not theirs to draw.
		o := s.client(t)
		o.signin("admin", s.Pass["admin"])
		if res, _ := o.do("GET", "/counter/survey/qr.svg?t="+tok, nil); res.StatusCode != 200 {
			t.Fatalf("an owner sees every link: %d", res.StatusCode)
		}

		// The customer, on a phone, without an account.
		c := s.client(t)
		res, page := c.do("GET", path, nil, "Accept-Language", "en-US,en;q=0.9")
		if res.StatusCode != 200 || !strings.Contains(page, "Grupo La Brasa") || !strings.Contains(page, "How did we serve you today?") {
			t.Fatalf("survey page: %d %s", res.StatusCode, page)
		}
		for _, m := range s.Org.Members {
			if strings.Contains(page, m.Name) || strings.Contains(page, m.Login) {
				t.Fatalf("the survey page names a member (%s)", m.Login)
			}
		}
		if res.Header.Get("Content-Security-Policy") == "" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Fatal("the survey page lost its CSP")
		}
		// A form from another site is refused.
		if res, _ := c.do("POST", path, url.Values{"score": {"1"}}, "Sec-Fetch-Site", "cross-site"); res.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin answer: %d", res.StatusCode)
		}
		// A comment over the limit is told, with the form.
		res, page = c.do("POST", path, url.Values{"score": {"5"}, "comment": {strings.Repeat("é", margen.MaxSurveyComment)}}, "Accept-Language", "en")
		if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(page, "The comment is too long") {
			t.Fatalf("long comment: %d %s", res.StatusCode, page)
		}
		res, page = c.do("POST", path, url.Values{"score": {"9"}}, "Accept-Language", "en")
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Choose an answer from 1 to 5") {
			t.Fatalf("score out of range: %d %s", res.StatusCode, page)
		}
		res, page = c.do("POST", path, url.Values{"score": {"2"}, "comment": {"La sopa llegó fría"}})
		if res.StatusCode != 200 || !strings.Contains(page, `id="survey-thanks"`) {
			t.Fatalf("answer: %d %s", res.StatusCode, page)
		}
		res, page = c.do("POST", path, url.Values{"score": {"5"}})
		if res.StatusCode != 200 || !strings.Contains(page, `id="survey-answered"`) {
			t.Fatalf("second answer: %d %s", res.StatusCode, page)
		}
		if res, page = c.do("GET", path, nil); !strings.Contains(page, `id="survey-answered"`) {
			t.Fatalf("the link after its answer: %d %s", res.StatusCode, page)
		}

		// The supervisor sees both reactions on the act.
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		res, page = m.do("GET", "/acts/"+act.ID, nil)
		if res.StatusCode != 200 || !strings.Contains(page, "Satisfacción 2 de 5") || !strings.Contains(page, "La sopa llegó fría") ||
			!strings.Contains(page, "respuesta baja") || !strings.Contains(page, "Reacción observada por el empleado") {
			t.Fatalf("act page: %d %s", res.StatusCode, page)
		}
		// The low answer opened one follow-up case: on the act page for the
		// supervisor (who sees it without a route to close it: the policy
		// has no default approval route, so it goes to the owners), in the
		// owner's inbox with the form that closes it.
		if !strings.Contains(page, `id="cases"`) || !strings.Contains(page, "abierto") || strings.Contains(page, `/close"`) {
			t.Fatalf("act page's cases: %s", page)
		}
		cases, err := db.ListCases(context.Background(), s.Org.ID, margen.CaseFilter{})
		if err != nil || len(cases) != 1 || cases[0].ActID != act.ID {
			t.Fatalf("cases = %+v, %v", cases, err)
		}
		own := o
		if res, page = own.do("GET", "/inbox", nil); res.StatusCode != 200 || !strings.Contains(page, "/cases/"+cases[0].ID+"/close") {
			t.Fatalf("owner's inbox: %d %s", res.StatusCode, page)
		}
		if res, page = m.do("POST", "/cases/"+cases[0].ID+"/close", url.Values{"action": {"x"}, "outcome": {"resolved"},
			"reaction": {"positive"}}); res.StatusCode != http.StatusForbidden {
			t.Fatalf("marta closes a case routed to the owners: %d", res.StatusCode)
		}
		if res, page = own.do("POST", "/cases/"+cases[0].ID+"/close", url.Values{"action": {""}, "outcome": {"resolved"},
			"reaction": {"positive"}}); res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Diga qué se hizo") {
			t.Fatalf("empty action: %d %s", res.StatusCode, page)
		}
		res, page = own.do("POST", "/cases/"+cases[0].ID+"/close", url.Values{"action": {"Le invitamos la sopa"},
			"outcome": {"resolved"}, "reaction": {"positive"}, "back": {"act"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/acts/"+act.ID {
			t.Fatalf("close: %d %q", res.StatusCode, res.Header.Get("Location"))
		}
		res, page = own.do("GET", "/acts/"+act.ID, nil)
		if res.StatusCode != 200 || !strings.Contains(page, "Le invitamos la sopa") || !strings.Contains(page, "Resuelto") {
			t.Fatalf("closed, back on the act: %d %s", res.StatusCode, page)
		}
		answers, err := db.ListSurveyAnswers(context.Background(), s.Org.ID, margen.SurveyAnswerFilter{ActID: act.ID})
		if err != nil || len(answers) != 1 || answers[0].Score != 2 || !answers[0].Low || answers[0].MemberID != act.MemberID ||
			answers[0].Team != "salon" {
			t.Fatalf("stored answers = %+v, %v", answers, err)
		}
		// The low answer is announced: survey.answered and survey.low.
		entries, err := db.ListAudit(context.Background(), s.Org.ID, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for i := range entries {
			if entries[i].Action == margen.ActionSurveyAnswer {
				evs, err := margen.EventsOf(&entries[i])
				if err != nil {
					t.Fatal(err)
				}
				types = nil
				for _, ev := range evs {
					types = append(types, string(ev.EventType()))
				}
				if strings.Contains(string(entries[i].Data), "sopa") {
					t.Fatal("the audit entry carries the customer's comment")
				}
			}
		}
		if strings.Join(types, ",") != string(margen.EventSurveyAnswered)+","+string(margen.EventSurveyLow) {
			t.Fatalf("events of the answer = %v", types)
		}
		if rep, err := db.CheckAudit(context.Background(), s.Org.ID); err != nil || !rep.OK() {
			t.Fatalf("audit: %+v, %v", rep, err)
		}
	})
}

// TestSurveyGoneIndistinguishable: an expired link and a token that never
// existed answer the same status and the same body.
func TestSurveyGoneIndistinguishable(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false, noSurveyLimits)
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		_, tok := newLink(t, w, actOf(t, s, w).ID)
		s.Clock.Add(margen.DefaultSurveyExpiry + time.Minute)
		unknown, _ := margen.NewSurveyTokens([]byte("another key")).New()
		c := s.client(t)
		// The same path length, so the bodies can be compared byte for
		// byte once the token (echoed by the language switch) is masked.
		for _, method := range []string{"GET", "POST"} {
			r1, b1 := c.do(method, "/s/"+tok, url.Values{"score": {"5"}}, "Accept-Language", "es")
			r2, b2 := c.do(method, "/s/"+unknown, url.Values{"score": {"5"}}, "Accept-Language", "es")
			b1, b2 = strings.ReplaceAll(b1, tok, "T"), strings.ReplaceAll(b2, unknown, "T")
			if r1.StatusCode != http.StatusNotFound || r2.StatusCode != r1.StatusCode || b1 != b2 {
				t.Fatalf("%s expired %d vs unknown %d; bodies equal: %v\n%s", method, r1.StatusCode, r2.StatusCode, b1 == b2, b1)
			}
			if strings.Contains(b1, "Grupo La Brasa") {
				t.Fatal("an expired link names the business")
			}
		}
	})
}

// TestSurveyGuesses: a million random tokens, through the handler in
// process, find no survey; over HTTP the per-address limit answers 429
// after a few dozen.
func TestSurveyGuesses(t *testing.T) {
	db := storetest.OpenSQLite(t)
	s := newSite(t, db, false, noSurveyLimits)
	w := s.client(t)
	w.signin("camila", s.Pass["camila"])
	newLink(t, w, actOf(t, s, w).ID)

	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	start := time.Now()
	var found, done atomic.Int64
	var wg sync.WaitGroup
	workers := 4
	for range workers {
		wg.Go(func() {
			b := make([]byte, 24)
			for done.Add(1) <= int64(n) {
				rand.Read(b)
				path := "/s/" + base64.RawURLEncoding.EncodeToString(b)
				if done.Load()%2 == 0 {
					path = "/q/" + path[3:]
				}
				req := httptest.NewRequest("GET", path, nil)
				rec := httptest.NewRecorder()
				s.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusNotFound {
					found.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if found.Load() != 0 {
		t.Fatalf("%d of %d random tokens were not 404", found.Load(), n)
	}
	t.Logf("%d guesses in %v", n, time.Since(start))

	// Over HTTP, with the default limits.
	l := newSite(t, storetest.OpenSQLite(t), false)
	c := l.client(t)
	for i := 1; i <= 1000; i++ {
		tok, _ := margen.NewSurveyTokens([]byte("guess")).New()
		res, _ := c.do("GET", "/s/"+tok, nil)
		if res.StatusCode == http.StatusTooManyRequests {
			if i > 100 {
				t.Fatalf("first 429 after %d guesses", i)
			}
			return
		}
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("guess %d: %d", i, res.StatusCode)
		}
	}
	t.Fatal("1000 guesses over HTTP were never limited")
}

// TestSurveyPoint: the manager makes a standing QR code that asks who
// served; the sheet lists it; a visitor answers naming camila by her first
// name; the same device is refused (and counted) until its interval passes.
func TestSurveyPoint(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		var refused atomic.Int64
		s := newSite(t, db, false, noSurveyLimits, func(c *web.Config) {
			c.Surveys.Refused = func(string) { refused.Add(1) }
			c.Surveys.Limits = margen.SurveyLimits{PointPerHour: 5, DeviceEvery: time.Hour}
		})
		ctx := context.Background()
		if err := db.CreateTeam(ctx, &margen.Team{ID: margen.NewID("team"), OrgID: s.Org.ID, Slug: "salon", Name: "Salón"}, "test"); err != nil {
			t.Fatal(err)
		}
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		if res, body := m.do("POST", "/desk/survey/points", url.Values{"name": {""}, "kind": {"table"}}); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Ponle un nombre") {
			t.Fatalf("a point without a name: %d %s", res.StatusCode, body)
		}
		if res, _ := m.do("POST", "/desk/survey/points", url.Values{"name": {"Mesa 4"}, "kind": {"table"}, "team": {"salon"}, "ask_server": {"on"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("new point: %d", res.StatusCode)
		}
		if res, _ := m.do("POST", "/desk/survey/scale", url.Values{"scale": {"nps"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("scale: %d", res.StatusCode)
		}
		pts, err := db.ListSurveyPoints(ctx, s.Org.ID)
		if err != nil || len(pts) != 1 {
			t.Fatalf("points = %v, %v", pts, err)
		}
		res, sheet := m.do("GET", "/desk/survey/sheet", nil)
		if res.StatusCode != 200 || !strings.Contains(sheet, "/desk/survey/points/"+pts[0].ID+"/qr.svg") || !strings.Contains(sheet, "Mesa 4") {
			t.Fatalf("sheet: %d %s", res.StatusCode, sheet)
		}
		if res, svg := m.do("GET", "/desk/survey/points/"+pts[0].ID+"/qr.svg", nil); res.StatusCode != 200 || !strings.Contains(svg, "<svg") {
			t.Fatalf("point QR: %d", res.StatusCode)
		}
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		if res, _ := w.do("GET", "/desk/survey", nil); res.StatusCode != http.StatusForbidden {
			t.Fatalf("frontline on the survey desk: %d", res.StatusCode)
		}

		c := s.client(t)
		path := "/q/" + pts[0].Token
		res, page := c.do("GET", path, nil)
		camila := s.Org.Members["camila"]
		if res.StatusCode != 200 || !strings.Contains(page, margen.FirstName(camila.Name)) || !strings.Contains(page, "No sé") ||
			strings.Contains(page, s.Org.Members["admin"].ID) {
			t.Fatalf("point page: %d %s", res.StatusCode, page)
		}
		if !strings.Contains(res.Header.Get("Set-Cookie"), "margen_device=") {
			t.Fatal("no device cookie")
		}
		if res, _ := c.do("POST", path, url.Values{"score": {"10"}, "served": {s.Org.Members["admin"].ID}}); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("a served member not offered: %d", res.StatusCode)
		}
		res, page = c.do("POST", path, url.Values{"score": {"10"}, "served": {camila.ID}})
		if res.StatusCode != 200 || !strings.Contains(page, `id="survey-thanks"`) {
			t.Fatalf("answer: %d %s", res.StatusCode, page)
		}
		res, page = c.do("POST", path, url.Values{"score": {"0"}})
		if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, `id="survey-limited"`) {
			t.Fatalf("same device again: %d %s", res.StatusCode, page)
		}
		if refused.Load() != 1 {
			t.Fatalf("refused metric = %d", refused.Load())
		}
		counts, err := db.SurveyRefused(ctx, s.Org.ID, time.Now().Add(-2*time.Hour))
		if err != nil || len(counts) != 1 || counts[0].Reason != margen.RefusedDevice || counts[0].N != 1 {
			t.Fatalf("refused counts = %+v, %v", counts, err)
		}
		answers, err := db.ListSurveyAnswers(ctx, s.Org.ID, margen.SurveyAnswerFilter{PointID: pts[0].ID})
		if err != nil || len(answers) != 1 || answers[0].MemberID != camila.ID || answers[0].Scale != margen.ScaleNPS ||
			answers[0].Score != 10 || answers[0].Team != "salon" {
			t.Fatalf("answers = %+v, %v", answers, err)
		}
		res, desk := m.do("GET", "/desk/survey", nil)
		if res.StatusCode != 200 || !strings.Contains(desk, "Recomendación 10 de 10") || !strings.Contains(desk, "El mismo dispositivo respondió hace poco") {
			t.Fatalf("desk: %d %s", res.StatusCode, desk)
		}
	})
}

// TestSurveyPointDeactivate: a manager takes a standing QR code out of
// service from the survey desk; its printed code then answers 404 (GET and
// POST), it leaves the sheet, its answers stay; a frontline member may not
// deactivate, and another organisation's or a missing point is 404.
func TestSurveyPointDeactivate(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false, noSurveyLimits)
		ctx := context.Background()
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		for _, name := range []string{"Mesa 4", "Caja"} {
			if res, _ := m.do("POST", "/desk/survey/points", url.Values{"name": {name}, "kind": {"table"}}); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("new point: %d", res.StatusCode)
			}
		}
		pts, err := db.ListSurveyPoints(ctx, s.Org.ID)
		if err != nil || len(pts) != 2 {
			t.Fatalf("points = %v, %v", pts, err)
		}
		mesa, caja := pts[0], pts[1]
		c := s.client(t)
		if res, page := c.do("POST", "/q/"+mesa.Token, url.Values{"score": {"4"}}); res.StatusCode != 200 || !strings.Contains(page, `id="survey-thanks"`) {
			t.Fatalf("answer before: %d", res.StatusCode)
		}
		deactivate := "/desk/survey/points/" + mesa.ID + "/deactivate"
		res, desk := m.do("GET", "/desk/survey", nil)
		if res.StatusCode != 200 || !strings.Contains(desk, `action="`+deactivate+`"`) {
			t.Fatalf("desk offers no deactivation: %d %s", res.StatusCode, desk)
		}

		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		if res, _ := w.do("POST", deactivate, nil); res.StatusCode != http.StatusForbidden {
			t.Fatalf("frontline deactivates: %d", res.StatusCode)
		}
		if res, _ := m.do("POST", "/desk/survey/points/svp_missing/deactivate", nil); res.StatusCode != http.StatusNotFound {
			t.Fatalf("missing point: %d", res.StatusCode)
		}
		if res, _ := m.do("POST", deactivate, nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("deactivate: %d", res.StatusCode)
		}
		res, desk = m.do("GET", "/desk/survey", nil)
		if res.StatusCode != 200 || !strings.Contains(desk, "Código desactivado") || !strings.Contains(desk, "Desactivado") ||
			strings.Contains(desk, `action="`+deactivate+`"`) || !strings.Contains(desk, `action="/desk/survey/points/`+caja.ID+`/deactivate"`) {
			t.Fatalf("desk after: %d %s", res.StatusCode, desk)
		}
		if res, _ := m.do("POST", deactivate, nil); res.StatusCode != http.StatusSeeOther { // again: nothing changes
			t.Fatalf("deactivate again: %d", res.StatusCode)
		}
		for _, method := range []string{"GET", "POST"} {
			if res, _ := s.client(t).do(method, "/q/"+mesa.Token, url.Values{"score": {"5"}}); res.StatusCode != http.StatusNotFound {
				t.Fatalf("%s an inactive code: %d", method, res.StatusCode)
			}
		}
		if res, _ := s.client(t).do("GET", "/q/"+caja.Token, nil); res.StatusCode != 200 {
			t.Fatalf("the other code: %d", res.StatusCode)
		}
		if res, sheet := m.do("GET", "/desk/survey/sheet", nil); res.StatusCode != 200 || strings.Contains(sheet, mesa.ID) || !strings.Contains(sheet, caja.ID) {
			t.Fatalf("sheet: %d", res.StatusCode)
		}
		answers, err := db.ListSurveyAnswers(ctx, s.Org.ID, margen.SurveyAnswerFilter{PointID: mesa.ID})
		if err != nil || len(answers) != 1 {
			t.Fatalf("answers of the inactive code: %v, %v", answers, err)
		}
		if err := db.DeactivateSurveyPoint(ctx, "org_other", mesa.ID, "test"); !margen.IsCode(err, margen.ENOTFOUND) {
			t.Fatalf("another organisation: %v", err)
		}
		broken, _, err := db.VerifyAudit(ctx, s.Org.ID)
		if err != nil || broken != 0 {
			t.Fatalf("audit: broken at %d, %v", broken, err)
		}
	})
}
