package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/web"
)

// TestSurveyEmailAtCounterAndDesk: with email on, the counter's yes offers
// an email field; a bad address is refused, a good one queues the send with
// its link (the link starts with the public URL); a failed attempt shows on
// the manager's survey desk with its status, attempts and last error; a
// waiter cannot open the desk. With email off the field is not offered and
// the desk says so.
func TestSurveyEmailAtCounterAndDesk(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, false, noSurveyLimits, func(c *web.Config) {
			c.Surveys.Email, c.Surveys.PublicURL = true, "https://m.example"
		})
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		res, _ := w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"}, "reason": {"café frío"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("decision: %d", res.StatusCode)
		}
		res, page := w.do("GET", res.Header.Get("Location"), nil)
		if res.StatusCode != 200 || !strings.Contains(page, `name="email"`) {
			t.Fatalf("the yes offers no email field: %d", res.StatusCode)
		}
		act := actOf(t, s, w)
		if res, _ := w.do("POST", "/counter/acts/"+act.ID+"/survey", url.Values{"email": {"x@y.z\r\nBcc: a@b.c"}}); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("a bad address: %d", res.StatusCode)
		}
		res, page = w.do("POST", "/counter/acts/"+act.ID+"/survey", url.Values{"email": {"cliente@example.com"}})
		if res.StatusCode != 200 || !strings.Contains(page, "cliente@example.com") || !strings.Contains(page, "https://m.example/s/") {
			t.Fatalf("survey link by email: %d %s", res.StatusCode, page)
		}
		sends, err := db.ListSurveyEmails(ctx, s.Org.ID, 10)
		if err != nil || len(sends) != 1 || sends[0].Status != margen.EmailQueued || sends[0].Token != "" {
			t.Fatalf("sends: %+v %v", sends, err)
		}
		// One attempt fails: the runner claims the job and the handler
		// records the failure with the job's retry.
		jobs, err := db.ClaimJobs(ctx, margen.JobClaim{Kinds: []string{margen.JobSurveyEmail}, Owner: "test", Now: time.Now(),
			Lease: time.Minute, Limit: 5})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("the send's job: %v %v", jobs, err)
		}
		retry := time.Now().Add(time.Minute)
		e := sends[0]
		if err := db.FinishSurveyEmail(ctx, &e, false, &jobs[0], margen.JobResult{At: time.Now(),
			Error: "dial failed: connection refused", RetryAt: &retry}); err != nil {
			t.Fatal(err)
		}
		if res, _ := w.do("GET", "/desk/survey", nil); res.StatusCode != http.StatusForbidden {
			t.Errorf("a waiter opens the survey desk: %d", res.StatusCode)
		}
		o := s.client(t)
		o.signin("admin", s.Pass["admin"])
		res, page = o.do("GET", "/desk/survey", nil)
		if res.StatusCode != 200 || !strings.Contains(page, `class="email-retrying"`) || !strings.Contains(page, "Reintentando") ||
			!strings.Contains(page, "dial failed: connection refused") || !strings.Contains(page, "cliente@example.com") {
			t.Fatalf("the desk does not show the failed attempt: %d %s", res.StatusCode, page)
		}
	})
}

// TestSurveyEmailOff: without SMTP the counter offers no email field, a
// posted address is ignored (no send), and the desk says email is off.
func TestSurveyEmailOff(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false, noSurveyLimits)
		w := s.client(t)
		w.signin("camila", s.Pass["camila"])
		res, _ := w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"10.000"}, "reason": {"café frío"}})
		res, page := w.do("GET", res.Header.Get("Location"), nil)
		if res.StatusCode != 200 || strings.Contains(page, `name="email"`) || !strings.Contains(page, "/survey") {
			t.Fatalf("email off, the counter: %d, offers email: %v", res.StatusCode, strings.Contains(page, `name="email"`))
		}
		act := actOf(t, s, w)
		if res, _ := w.do("POST", "/counter/acts/"+act.ID+"/survey", url.Values{"email": {"cliente@example.com"}}); res.StatusCode != 200 {
			t.Fatalf("survey link: %d", res.StatusCode)
		}
		if sends, err := db.ListSurveyEmails(context.Background(), s.Org.ID, 10); err != nil || len(sends) != 0 {
			t.Fatalf("email off sent: %v %v", sends, err)
		}
		o := s.client(t)
		o.signin("admin", s.Pass["admin"])
		if res, page := o.do("GET", "/desk/survey", nil); res.StatusCode != 200 || !strings.Contains(page, "El correo no está configurado") {
			t.Fatalf("the desk: %d", res.StatusCode)
		}
	})
}
