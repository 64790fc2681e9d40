package web_test

// The manager's desk (desk2) in a real browser: the today and audit pages
// (and the webhooks page) load in Debian's chromium, headless, and axe-core
// finds no serious or critical problem on them, in Spanish and in English.
// With MARGEN_SCREENSHOTS=1 they are saved (desktop size) under
// docs/screenshots/. Like the other browser tests, this skips without
// chromium except in CI (CI=true or MARGEN_REQUIRE_BROWSER=1).

import (
	"context"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store/storetest"
)

func TestBrowserDesk2(t *testing.T) {
	// SQLite: what a browser shows does not depend on the engine (the
	// HTTP tests run both).
	s := newSite(t, storetest.OpenSQLite(t), false)
	// Something to show: two decisions of the waiter, one sent for approval.
	w := s.client(t)
	w.signin("camila", s.Pass["camila"])
	for _, amount := range []string{"12.000", "40.000"} {
		w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {amount}, "reason": {"mesa 4"}})
	}

	ctx := newBrowser(t, desktopW, desktopH)
	signinIn(t, ctx, s, "admin")
	for _, lang := range []string{"es", "en"} {
		if err := s.DB.SetMemberLanguage(context.Background(), s.Org.ID, s.Org.Owner.ID, lang, "test"); err != nil {
			t.Fatal(err)
		}
		run(t, ctx, "today", chromedp.Navigate(s.URL+"/desk/today"), chromedp.WaitReady(chromedp.CSS(`html[lang=`+lang+`]`)),
			chromedp.WaitVisible(chromedp.CSS("#budgets")))
		axe(t, ctx, "desk-today-"+lang)
		screenshot(t, ctx, "desk-today-"+lang)
		// The check is queued as a job and shown running; when the job has
		// run, the page shows its report without a reload (htmx).
		run(t, ctx, "audit and its check", chromedp.Navigate(s.URL+"/desk/audit"),
			chromedp.Click(chromedp.CSS(`form[action="/desk/audit/check"] button`)),
			chromedp.WaitVisible(chromedp.CSS("#check [aria-busy]")))
		r := jobs.New(s.DB, jobs.Options{Lease: jobs.LedgerCheckLease, Concurrency: 1})
		r.Register(margen.JobLedgerCheck, jobs.LedgerCheck(s.DB, storetest.TestAuditKey, nil))
		if n, err := r.Once(context.Background()); n != 1 || err != nil {
			t.Fatalf("%d checks ran (%v)", n, err)
		}
		run(t, ctx, "the check's report, live", chromedp.WaitNotPresent(chromedp.CSS("#check [aria-busy]")),
			chromedp.WaitVisible(chromedp.CSS("#check p.notice")))
		axe(t, ctx, "desk-audit-"+lang)
		screenshot(t, ctx, "desk-audit-"+lang)
		run(t, ctx, "webhooks", chromedp.Navigate(s.URL+"/desk/webhooks"), chromedp.WaitVisible(chromedp.CSS("#url")))
		axe(t, ctx, "desk-webhooks-"+lang)
		screenshot(t, ctx, "desk-webhooks-"+lang)
	}
}
