package web_test

// The manager's desk (desk2) in a real browser: the today and audit pages
// (and the webhooks page) load in Debian's chromium, headless, and axe-core
// finds no serious or critical problem on them, in Spanish and in English.
// With MARGEN_SCREENSHOTS=1 they are saved (desktop size) under
// docs/screenshots/. Like the other browser tests, this skips without
// chromium except in CI (CI=true or MARGEN_REQUIRE_BROWSER=1).

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen/store/storetest"
)

//go:embed testdata/vendor/axe.min.js
var desk2Axe string

func desk2Chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	required, _ := strconv.ParseBool(os.Getenv("MARGEN_REQUIRE_BROWSER"))
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci || required {
		t.Fatal("chromium is not installed and CI or MARGEN_REQUIRE_BROWSER is set: apt-get install -y chromium")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium to run the browser tests")
	return ""
}

// desk2Do runs browser actions with a deadline.
func desk2Do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func desk2Into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		*dst = v
		return chromedp.Void{}, nil
	}
}

// desk2Check runs axe-core on the page and saves its screenshot.
func desk2Check(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var res []struct {
		ID, Impact, Help string
		Nodes            []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	}
	var loaded bool
	desk2Do(t, ctx, "load axe-core", desk2Into(&loaded, chromedp.Evaluate[bool](desk2Axe+";true")))
	desk2Do(t, ctx, "axe-core on "+name, desk2Into(&res, chromedp.Evaluate[[]struct {
		ID, Impact, Help string
		Nodes            []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	}](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`, chromedp.EvalAwaitPromise)))
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			b, _ := json.Marshal(v.Nodes)
			t.Errorf("axe-core on %s: %s (%s): %s at %s", name, v.ID, v.Impact, v.Help, b)
		}
	}
	if ok, _ := strconv.ParseBool(os.Getenv("MARGEN_SCREENSHOTS")); !ok {
		return
	}
	var png []byte
	desk2Do(t, ctx, "screenshot "+name, desk2Into(&png, chromedp.FullScreenshot(100)))
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserDesk2(t *testing.T) {
	path := desk2Chromium(t)
	// SQLite: what a browser shows does not depend on the engine (the
	// HTTP tests run both).
	s := newSite(t, storetest.OpenSQLite(t), false)
	// Something to show: two decisions of the waiter, one sent for approval.
	w := s.client(t)
	w.signin("camila", s.Pass["camila"])
	for _, amount := range []string{"12.000", "40.000"} {
		w.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {amount}, "reason": {"mesa 4"}})
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser: with the test's context, not a
	// deadline's, which would end the browser with it.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	desk2Do(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/signin"),
		chromedp.SendKeys(chromedp.CSS("#org"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#login"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), s.Pass["admin"]),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#latitude-heading")),
	)
	for _, lang := range []string{"es", "en"} {
		if err := s.DB.SetMemberLanguage(context.Background(), s.Org.ID, s.Org.Owner.ID, lang, "test"); err != nil {
			t.Fatal(err)
		}
		desk2Do(t, ctx, "today", chromedp.Navigate(s.URL+"/desk/today"), chromedp.WaitReady(chromedp.CSS(`html[lang=`+lang+`]`)),
			chromedp.WaitVisible(chromedp.CSS("#budgets")))
		desk2Check(t, ctx, "desk-today."+lang)
		desk2Do(t, ctx, "audit and its check", chromedp.Navigate(s.URL+"/desk/audit"),
			chromedp.Click(chromedp.CSS(`form[action="/desk/audit/check"] button`)),
			chromedp.WaitVisible(chromedp.CSS("#check p.notice")))
		desk2Check(t, ctx, "desk-audit."+lang)
		desk2Do(t, ctx, "webhooks", chromedp.Navigate(s.URL+"/desk/webhooks"), chromedp.WaitVisible(chromedp.CSS("#url")))
		desk2Check(t, ctx, "desk-webhooks."+lang)
	}
}
