package web_test

// The desk's import and backup pages in a real browser (chromium,
// headless): a CSV uploaded through the file input is checked by a job
// while the page polls, its bad lines are listed, the good ones imported
// after confirming, with the progress polled until the import is done;
// "back up now" queues a backup that then appears in the list. axe-core
// finds no serious or critical problem on them, in Spanish and English.
// Skips without chromium except in CI, like the other browser tests.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

func TestBrowserDeskOps(t *testing.T) {
	exe := desk2Chromium(t)
	path := storetest.SQLitePath(t)
	db := storetest.OpenDSN(t, path)
	sched := backup.NewScheduler(backup.Options{DSN: path, Dir: filepath.Join(t.TempDir(), "backups"), Every: 6 * time.Hour,
		Keep: 5, AuditKey: storetest.TestAuditKey, Log: testsupport.Discard()})
	s, runner := opsSite(t, db, sched)
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(rctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
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
		// A file of new customers each time, line 3 without a reference.
		file := filepath.Join(t.TempDir(), "clientes-"+lang+".csv")
		if err := os.WriteFile(file, []byte("referencia;nombre\n"+lang+"-1;Ana\n;Sin referencia\n"+lang+"-3;Luis\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		desk2Do(t, ctx, "imports page", chromedp.Navigate(s.URL+"/desk/imports"),
			chromedp.WaitReady(chromedp.CSS(`html[lang=`+lang+`]`)), chromedp.WaitVisible(chromedp.CSS("#file")))
		desk2Check(t, ctx, "desk-imports."+lang)
		// Upload: the check runs as a job while the page polls; the
		// report lists line 3 (no reference) and offers the good lines.
		desk2Do(t, ctx, "upload",
			chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
			chromedp.Click(chromedp.CSS(`form[action="/desk/imports"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action$="/confirm"] button`)))
		var bad string
		desk2Do(t, ctx, "bad lines", desk2Into(&bad, chromedp.Text(chromedp.CSS(`#upload-status .scroll tbody th`))))
		if bad != "3" {
			t.Errorf("the bad line shown is %q, want 3", bad)
		}
		desk2Check(t, ctx, "desk-import-check."+lang)
		desk2Do(t, ctx, "confirm", chromedp.Click(chromedp.CSS(`form[action$="/confirm"] button`)))
		// The page polls the import until it is done (and stops polling).
		opsWait(t, ctx, "the import done", `document.querySelector("#upload-status") !== null && !document.querySelector("#upload-status[hx-trigger]") && document.querySelector("#upload-status p[role=status]") !== null`)
		desk2Check(t, ctx, "desk-import-done."+lang)

		desk2Do(t, ctx, "backups", chromedp.Navigate(s.URL+"/desk/backups"), chromedp.WaitVisible(chromedp.CSS("#files-heading")))
		if lang == "es" {
			desk2Do(t, ctx, "back up now", chromedp.Click(chromedp.CSS(`form[action="/desk/backups"] button`)),
				chromedp.WaitVisible(chromedp.CSS("p.notice")))
		}
		// The job runs within the runner's poll; reload until it is listed.
		for n, deadline := 0, time.Now().Add(30*time.Second); n == 0; {
			if time.Now().After(deadline) {
				t.Fatal("the backup asked for is not listed after 30s")
			}
			time.Sleep(200 * time.Millisecond)
			desk2Do(t, ctx, "reload backups", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#files-heading")),
				desk2Into(&n, chromedp.Evaluate[int](`document.querySelectorAll("#files-heading + div table code").length`)))
		}
		desk2Check(t, ctx, "desk-backups."+lang)
	}
}

// opsWait evaluates a JavaScript condition until it holds, through page
// loads (an evaluation during a navigation fails and is tried again).
func opsWait(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		var ok bool
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := chromedp.Do(tctx, desk2Into(&ok, chromedp.Evaluate[bool](cond)))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
