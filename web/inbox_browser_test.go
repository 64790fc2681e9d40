package web_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store/storetest"
)

// inboxBrowser starts headless Chromium (Debian's chromium package) at a
// desktop size; without it the test is skipped, unless
// MARGEN_REQUIRE_BROWSER is set (CI), when it fails.
func inboxBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if path, err = exec.LookPath("chromium-browser"); err != nil {
			if os.Getenv("MARGEN_REQUIRE_BROWSER") != "" {
				t.Fatal("MARGEN_REQUIRE_BROWSER is set and chromium is not installed")
			}
			t.Skip("chromium is not installed")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	// The first call starts the browser for as long as its context lives:
	// no timeout on it; the steps below get one.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// person is one browser context (its own cookies) signed in as login.
func (s *site) person(t *testing.T, browser context.Context, login string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/signin"),
		chromedp.SendKeys(chromedp.ID("org"), "demo"),
		chromedp.SendKeys(chromedp.ID("login"), login),
		chromedp.SendKeys(chromedp.ID("password"), s.Pass[login]),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("latitude-heading")),
	)
	if err != nil {
		t.Fatalf("sign in as %s: %v", login, err)
	}
	return ctx
}

// axeClean runs the vendored axe-core on the page and fails the test on a
// serious or critical finding.
func axeClean(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	src, err := os.ReadFile("testdata/vendor/axe.min.js")
	if err != nil {
		t.Fatal(err)
	}
	run := `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", "))))`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](string(src)+";0")); err != nil {
		t.Fatalf("axe on %s: %v", what, err)
	}
	found, err := chromedp.Run(ctx, chromedp.Evaluate[string](run, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe on %s: %v", what, err)
	}
	var problems []string
	if err := json.Unmarshal([]byte(found), &problems); err != nil {
		t.Fatalf("axe on %s: %v (%s)", what, err, found)
	}
	if len(problems) > 0 {
		t.Errorf("axe on %s: %s", what, strings.Join(problems, "; "))
	}
}

// shot saves a full-page screenshot under docs/screenshots when
// MARGEN_SCREENSHOTS=1.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("MARGEN_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInboxInBrowser: in Chromium, a waiter's request made at the counter
// appears in the supervisor's open inbox without a reload; the supervisor
// approves it with a comment and the waiter's counter turns into the
// answer without a reload. The inbox has no serious or critical axe-core
// finding, in Spanish and in English. (SQLite: the pages are the same on
// both engines, which the HTTP tests cover.)
func TestInboxInBrowser(t *testing.T) {
	browser := inboxBrowser(t)
	db := storetest.Engines(t)[0].Open(t)
	s := newSite(t, db, false)
	bg := context.Background()
	marta := s.Org.Members["marta"]

	// Something in the team's activity: an act and its reaction.
	act := s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 1200000, "reason": "café frío",
		"customer": map[string]any{"ref": "mesa-2", "name": "Mesa 2"}})
	if err := db.RecordReaction(bg, &margen.Reaction{ID: margen.NewID("rea"), OrgID: s.Org.ID, ActID: act.ActID,
		Source: margen.SourceEmployee, Sentiment: margen.SentimentPositive, MemberID: act.MemberID, CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}

	sup := s.person(t, browser, "marta")
	if err := chromedp.Do(sup, chromedp.Navigate(s.URL+"/inbox"), chromedp.WaitVisible(chromedp.ID("pending"))); err != nil {
		t.Fatal(err)
	}

	waiter := s.person(t, browser, "camila")
	err := chromedp.Do(waiter,
		chromedp.SendKeys(chromedp.ID("amount"), "40000"),
		chromedp.SendKeys(chromedp.ID("reason"), "cumpleaños de la mesa 4"),
		chromedp.Click(chromedp.CSS("button.ask")),
	)
	if err == nil {
		err = chromedp.Do(waiter, chromedp.WaitVisible(chromedp.ID("verdict-wait")))
	}
	if err != nil {
		t.Fatalf("the waiter's request: %v", err)
	}
	pending, err := db.ListApprovals(bg, s.Org.ID, margen.ApprovalFilter{Status: margen.ApprovalPending})
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending requests: %v %v", pending, err)
	}
	id := pending[0].ID
	// The supervisor's open page, not reloaded.
	if err := chromedp.Do(sup, chromedp.WaitVisible(chromedp.ID("request-"+id))); err != nil {
		t.Fatalf("the request in the open inbox: %v", err)
	}
	reason, err := chromedp.Run(sup, chromedp.Text(chromedp.CSS("#request-"+id+" dl")))
	if err != nil || !strings.Contains(reason, "cumpleaños de la mesa 4") {
		t.Fatalf("the request in the open inbox: %q %v", reason, err)
	}

	// Both languages: axe-core, and the screenshots.
	for _, lang := range []string{"es", "en"} {
		if err := db.SetMemberLanguage(bg, s.Org.ID, marta.ID, lang, marta.ID); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(sup, chromedp.Navigate(s.URL+"/inbox"), chromedp.WaitVisible(chromedp.ID("request-"+id))); err != nil {
			t.Fatal(err)
		}
		axeClean(t, sup, "the inbox ("+lang+")")
		shot(t, sup, "inbox-desktop-"+lang)
	}

	err = chromedp.Do(sup,
		chromedp.SendKeys(chromedp.ID("comment-"+id), "Dale, es cliente fiel"),
		chromedp.Click(chromedp.CSS(`#request-`+id+` button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS("#inbox-status p.notice")),
	)
	if err != nil {
		t.Fatalf("approving in the inbox: %v", err)
	}
	notice, err := chromedp.Run(sup, chromedp.Text(chromedp.CSS("#inbox-status p.notice")))
	if err != nil || !strings.Contains(notice, "You approved camila") {
		t.Fatalf("approving in the inbox: %q %v", notice, err)
	}
	if err := chromedp.Do(waiter, chromedp.WaitVisible(chromedp.ID("verdict-approved"))); err != nil {
		t.Fatalf("the waiter's counter after the approval: %v", err)
	}
	answer, err := chromedp.Run(waiter, chromedp.Text(chromedp.ID("verdict")))
	if err != nil || !strings.Contains(answer, "Dale, es cliente fiel") {
		t.Fatalf("the waiter's counter after the approval: %q %v", answer, err)
	}
	a, err := db.GetApproval(bg, s.Org.ID, id)
	if err != nil || a.Status != margen.ApprovalApproved || a.Comment != "Dale, es cliente fiel" {
		t.Fatalf("the request: %+v %v", a, err)
	}
}
