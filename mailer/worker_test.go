package mailer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/mailer"
	"github.com/margenhq/margen/store/storetest"
)

// counts records the results the worker reports for the metric.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) add(r string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[r]++
}

func (c *counts) get(r string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[r]
}

// TestFailingServerRetriedThenFailed: against an SMTP server that is not
// there (a closed port) each attempt fails and is recorded on the send
// (retrying, with the attempts and the last error) and counted; after the
// last attempt the send has failed, its job is dead and its token is gone.
// On SQLite and PostgreSQL, with the real runner on an injected clock.
func TestFailingServerRetriedThenFailed(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			st := e.Open(t)
			org := testsupport.NewOrg(t, st, testsupport.OrgOptions{Name: "Café <Sol>"})
			clk := testsupport.NewClockNow()
			tok, hash := margen.NewSurveyTokens([]byte("k")).New()
			now := clk.Now()
			l := &margen.SurveyLink{OrgID: org.ID, MemberID: org.Owner.ID, TokenHash: hash, CreatedBy: org.Owner.ID,
				CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
			send := &margen.SurveyEmail{Address: "ana@example.com", Token: tok}
			if err := st.CreateSurveyLinkEmail(ctx, l, send, org.Owner.ID, nil); err != nil {
				t.Fatal(err)
			}
			got := &counts{n: map[string]int{}}
			smtp := mailer.NewSMTP(mailer.Config{Host: "127.0.0.1", Port: testsupport.FreePort(t), TLS: mailer.TLSNone,
				From: "x@example.com", Timeout: 5 * time.Second})
			w := mailer.NewWorker(st, smtp, cat, "https://m.example", mailer.Options{Clock: clk, OnResult: got.add, MaxAttempts: 3})
			r := jobs.New(st, jobs.Options{Clock: clk, Rand: func() float64 { return 0 }})
			r.Register(margen.JobSurveyEmail, w.Kind())
			for attempt := 1; attempt <= 3; attempt++ {
				if n, err := r.Once(ctx); err != nil || n != 1 {
					t.Fatalf("attempt %d: ran %d, %v", attempt, n, err)
				}
				list, err := st.ListSurveyEmails(ctx, org.ID, 10)
				if err != nil || len(list) != 1 {
					t.Fatalf("sends: %v %v", list, err)
				}
				s := list[0]
				want := margen.EmailRetrying
				if attempt == 3 {
					want = margen.EmailFailed
				}
				if s.Status != want || s.Attempts != attempt || s.LastError == "" || strings.Contains(s.LastError, "ana@") {
					t.Errorf("after attempt %d: %+v", attempt, s)
				}
				clk.Add(2 * time.Hour) // past any backoff
			}
			if got.get(mailer.ResultRetry) != 2 || got.get(mailer.ResultFailed) != 1 || got.get(mailer.ResultSent) != 0 {
				t.Errorf("results counted: %v", got.n)
			}
			full, err := st.SurveyEmailForSend(ctx, org.ID, send.ID)
			if err != nil || full.Token != "" {
				t.Errorf("a failed send keeps its token: %v", err)
			}
			if n, _ := r.Once(ctx); n != 0 {
				t.Errorf("a dead job ran again")
			}
		})
	}
}

// TestComposeSurvey: the mail is in the language asked for, names the
// business, and escapes it in the HTML part.
func TestComposeSurvey(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ lang, want, text string }{{"es", "Responder la encuesta", "Gracias por visitar"}, {"en", "Answer the survey", "Thank you for visiting"}} {
		m, err := mailer.ComposeSurvey(cat, "a@example.com", mailer.SurveyMail{Language: c.lang, Business: `Café <b>"Sol"</b>`,
			URL: "https://m.example/s/abc", Expires: time.Date(2026, 12, 16, 10, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m.Text, c.text) || !strings.Contains(m.HTML, c.want) || !strings.Contains(m.Text, "https://m.example/s/abc") ||
			!strings.Contains(m.Text, "2026-12-16") {
			t.Errorf("%s: %q", c.lang, m.Text)
		}
		if strings.Contains(m.HTML, "<b>") || !strings.Contains(m.HTML, "Café &lt;b&gt;") || !strings.Contains(m.Subject, `Café <b>"Sol"</b>`) {
			t.Errorf("%s: the business is not escaped in the HTML: %s", c.lang, m.HTML)
		}
	}
}
