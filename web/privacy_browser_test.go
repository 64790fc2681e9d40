package web_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store/storetest"
)

// TestBrowserCustomersAndCases: the pages of the customers' files, the
// chain check, the case settings and the open cases, at phone and desktop
// size, in Spanish and English: no serious or critical axe-core finding,
// nothing wider than a phone's screen; with MARGEN_SCREENSHOTS=1 saved as
// docs/screenshots/<page>-<lang>[-phone].png. (SQLite: what a browser shows
// does not depend on the engine.)
func TestBrowserCustomersAndCases(t *testing.T) {
	db := storetest.OpenSQLite(t)
	s := newSite(t, db, false, noSurveyLimits)
	ctx := context.Background()
	pol := testPolicy + "approval: {approver: supervisor, sla: 10m, on_timeout: deny}\n"
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: s.Org.ID, Source: pol, CreatedBy: "test",
		CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	// Customers: one with a file, one erased.
	kept := s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 5000,
		"customer": map[string]any{"ref": "leocadia-f", "name": "Leocadia Fuentesal de la Torre", "contact": "leocadia.fuentesal@example.org"},
		"reason":   "postre para Leocadia, el flan llegó frío"}).CustomerID
	gone := s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 3000,
		"customer": map[string]any{"ref": "leon-b", "name": "León Borrado", "contact": "leon@example.org"},
		"reason":   "café para León"}).CustomerID
	o := s.client(t)
	o.signin("admin", s.Pass["admin"])
	if res, body := o.do("POST", "/desk/customers/"+gone+"/erase", url.Values{"confirm": {"yes"}}); res.StatusCode >= 400 {
		t.Fatalf("erase: %d %s", res.StatusCode, body)
	}
	// Two open cases, one escalated to the owners.
	w := s.client(t)
	w.signin("camila", s.Pass["camila"])
	var acts []string
	for i := 0; i < 2; i++ {
		act := actOf(t, s, w)
		path, _ := newLink(t, w, act.ID)
		c := s.client(t)
		if res, body := c.do("POST", path, url.Values{"score": {"1"}, "comment": {"La sopa llegó fría y nadie vino a la mesa"}}); res.StatusCode >= 400 {
			t.Fatalf("answer: %d %s", res.StatusCode, body)
		}
		acts = append(acts, act.ID)
	}
	cs, err := db.ListCases(ctx, s.Org.ID, margen.CaseFilter{ActID: acts[0]})
	if err != nil || len(cs) != 1 {
		t.Fatalf("cases = %+v, %v", cs, err)
	}
	c := cs[0]
	if _, err := db.EscalateCase(ctx, s.Org.ID, c.ID, approval.CaseEscalator(c.Level, c.Role, margen.CaseRoleOwner, time.Now().Add(48*time.Hour))); err != nil {
		t.Fatalf("escalate: %v", err)
	}

	for _, size := range []struct {
		name string
		w, h int64
	}{{"-phone", phoneW, phoneH}, {"", desktopW, desktopH}} {
		b := newBrowser(t, size.w, size.h)
		own := s.person(t, b, "admin")
		sup := s.person(t, b, "marta")
		// A browser context's new tab has the window's size, not the
		// emulated viewport of the first.
		run(t, own, "viewport", chromedp.EmulateViewport(size.w, size.h))
		run(t, sup, "viewport", chromedp.EmulateViewport(size.w, size.h))
		for _, lang := range []string{"es", "en"} {
			for _, m := range []string{"admin", "marta"} {
				if err := db.SetMemberLanguage(ctx, s.Org.ID, s.Org.Members[m].ID, lang, "test"); err != nil {
					t.Fatal(err)
				}
			}
			look := func(ctx context.Context, name string) {
				t.Helper()
				run(t, ctx, name, chromedp.WaitReady(chromedp.CSS(`html[lang=`+lang+`]`)))
				axe(t, ctx, name+"-"+lang+size.name)
				if size.w == phoneW {
					var wide int64
					run(t, ctx, "width of "+name, into(&wide, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`)))
					if wide > phoneW {
						t.Errorf("%s-%s is %d px wide on a %d px phone", name, lang, wide, phoneW)
					}
				}
				screenshot(t, ctx, name+"-"+lang+size.name)
			}
			run(t, own, "search", chromedp.Navigate(s.URL+"/desk/customers?q=leo"))
			look(own, "customers-search")
			run(t, own, "file", chromedp.Navigate(s.URL+"/desk/customers/"+kept))
			look(own, "customers-file")
			run(t, own, "erase", chromedp.Navigate(s.URL+"/desk/customers/"+kept+"/erase"))
			look(own, "customers-erase")
			run(t, own, "erased", chromedp.Navigate(s.URL+"/desk/customers/"+gone))
			look(own, "customers-erased")
			run(t, own, "audit", chromedp.Navigate(s.URL+"/desk/audit"))
			// Never run (the first time), then running, then its report.
			look(own, "audit-check")
			run(t, own, "the check runs", chromedp.Click(chromedp.CSS(`form[action="/desk/audit/check"] button`)),
				chromedp.WaitVisible(chromedp.CSS("#check [aria-busy]")))
			look(own, "audit-check-running")
			r := jobs.New(db, jobs.Options{Lease: jobs.LedgerCheckLease, Concurrency: 1})
			r.Register(margen.JobLedgerCheck, jobs.LedgerCheck(db, storetest.TestAuditKey, nil))
			if n, err := r.Once(ctx); n != 1 || err != nil {
				t.Fatalf("%d checks ran (%v)", n, err)
			}
			run(t, own, "the check's report", chromedp.WaitNotPresent(chromedp.CSS("#check [aria-busy]")),
				chromedp.WaitVisible(chromedp.CSS("#check p.notice")))
			look(own, "audit-check-report")
			run(t, own, "survey desk, a wrong SLA", chromedp.Navigate(s.URL+"/desk/survey"),
				chromedp.WaitVisible(chromedp.CSS("#case-sla")),
				chromedp.SetValue(chromedp.CSS("#case-sla"), "9999"),
				chromedp.Submit(chromedp.CSS("#case-sla")),
				chromedp.WaitVisible(chromedp.CSS("#case-sla[aria-invalid]")))
			look(own, "survey-cases")
			run(t, sup, "inbox", chromedp.Navigate(s.URL+"/inbox"), chromedp.WaitVisible(chromedp.ID("case-list")))
			look(sup, "inbox-cases")
			run(t, own, "inbox", chromedp.Navigate(s.URL+"/inbox"), chromedp.WaitVisible(chromedp.ID("case-list")))
			look(own, "inbox-cases-owner")
			run(t, own, "act", chromedp.Navigate(s.URL+"/acts/"+acts[0]))
			look(own, "act-case")
		}
	}
}
