package web_test

// End-to-end tests in a real browser: Debian's chromium, headless, driven
// with chromedp. They skip when chromium is missing, except in CI (CI=true
// or MARGEN_REQUIRE_BROWSER=1), where they fail. axe-core (vendored,
// web/testdata/vendor, never served) checks every page for serious or
// critical accessibility problems. With MARGEN_SCREENSHOTS=1 the counter's
// screenshots (phone size: yes, waiting, no; es and en) are written to
// docs/screenshots/.

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

//go:embed testdata/vendor/axe.min.js
var axeSource string

// chromiumPath finds the browser, or skips (fails in CI).
func chromiumPath(t *testing.T) string {
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

// Window sizes of the browser tests: a phone where staff stand, a desktop
// where managers sit.
const (
	phoneW, phoneH     = 390, 844
	desktopW, desktopH = 1280, 900
)

// newBrowser starts a headless browser of its own (its own cookies) with
// a window of the given size, closed when the test ends. The first action
// starts the browser: with the test's context, not a deadline's, which
// would end the browser with it.
func newBrowser(t *testing.T, width, height int64) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // containers run as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(int(width), int(height)),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// person is another browser context of browser (its own cookies, the same
// window size) signed in as login, closed when the test ends.
func (s *site) person(t *testing.T, browser context.Context, login string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Its first action opens its tab, for as long as the context it is
	// given lives: ctx, not the deadline of a step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context for %s: %v", login, err)
	}
	signinIn(t, ctx, s, login)
	return ctx
}

// run runs browser actions with a deadline, failing the test with what
// the page shows on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		var body string
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		chromedp.Do(dctx, into(&body, chromedp.OuterHTML(chromedp.CSS("main"))))
		t.Fatalf("%s: %v\npage: %s", what, err, body)
	}
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any `json:"target"`
	} `json:"nodes"`
}

// into runs a and stores its value in dst, so several actions with values
// run in one chromedp.Do.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		*dst = v
		return chromedp.Void{}, nil
	}
}

// axe runs axe-core in the page and fails the test on any serious or
// critical violation.
func axe(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	var res []axeViolation
	var loaded bool
	run(t, ctx, "load axe-core", into(&loaded, chromedp.Evaluate[bool](axeSource+";true")))
	run(t, ctx, "run axe-core on "+page, into(&res, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`,
		chromedp.EvalAwaitPromise)))
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			b, _ := json.Marshal(v.Nodes)
			t.Errorf("axe-core on %s: %s (%s): %s at %s", page, v.ID, v.Impact, v.Help, b)
		}
	}
}

// screenshot saves the page under docs/screenshots when MARGEN_SCREENSHOTS
// is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if ok, _ := strconv.ParseBool(os.Getenv("MARGEN_SCREENSHOTS")); !ok {
		return
	}
	var png []byte
	run(t, ctx, "screenshot "+name, into(&png, chromedp.FullScreenshot(100)))
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signinIn signs in as login in the browser context ctx, which lands on
// the counter.
func signinIn(t *testing.T, ctx context.Context, s *site, login string) {
	t.Helper()
	run(t, ctx, "sign in as "+login,
		chromedp.Navigate(s.URL+"/signin"),
		chromedp.SendKeys(chromedp.CSS("#org"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#login"), login),
		chromedp.SendKeys(chromedp.CSS("#password"), s.Pass[login]),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#latitude-heading")),
	)
}

// ask fills the counter and taps "¿Puedo?".
func ask(t *testing.T, ctx context.Context, s *site, action, amount, reason string) {
	t.Helper()
	run(t, ctx, "ask "+action+" "+amount,
		chromedp.Navigate(s.URL+"/counter"),
		chromedp.WaitVisible(chromedp.CSS("#amount")),
		chromedp.Click(chromedp.CSS(`input[name=action][value=`+action+`]`)),
		chromedp.SendKeys(chromedp.CSS("#amount"), amount),
		chromedp.SendKeys(chromedp.CSS("#reason"), reason),
		chromedp.Click(chromedp.CSS("button.ask")),
	)
}

// approve answers a request as marta through the JSON API.
func approve(t *testing.T, s *site, id string) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/approvals/"+id+"/approve", strings.NewReader(`{"comment":"Adelante"}`))
	req.Header.Set("Authorization", "Bearer "+s.Token["marta"])
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("approve %s through the API: %d", id, res.StatusCode)
	}
}

// TestBrowserCounter: a waiter signs in and, in Spanish then in English,
// gets a yes and records the customer's reaction, asks above her latitude
// and sees the supervisor's answer arrive without reloading, gets a no and
// asks for an exception, records a refusal in two taps; then signs out. A
// second session, deactivated while its page is open, is refused on its
// next request. axe-core checks every page.
func TestBrowserCounter(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		ctx := newBrowser(t, phoneW, phoneH)

		run(t, ctx, "open the sign-in page", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#org")))
		axe(t, ctx, "sign-in")
		signinIn(t, ctx, s, "camila")
		axe(t, ctx, "counter")

		for _, lang := range []string{"es", "en"} {
			words := map[string][3]string{"es": {"Sí, puedes", "Anotado", "Presupuesto diario por miembro"},
				"en": {"Yes, you can", "Noted", "Daily budget per member"}}[lang]
			// A yes, with what remains, then the customer's reaction.
			ask(t, ctx, s, "cortesia", map[string]string{"es": "8.000", "en": "8,000"}[lang], "Segunda canasta de pan")
			var yes string
			run(t, ctx, "the yes", chromedp.WaitVisible(chromedp.CSS("#verdict-yes")), into(&yes, chromedp.Text(chromedp.CSS("#verdict-yes"))))
			if !strings.Contains(yes, words[0]) || !strings.Contains(yes, words[2]) || strings.Contains(yes, "mesero_dia") {
				t.Fatalf("%s: the yes says %q", lang, yes)
			}
			axe(t, ctx, "counter (yes)")
			screenshot(t, ctx, "counter-yes-"+lang)
			var noted string
			run(t, ctx, "the reaction",
				chromedp.Click(chromedp.CSS(`button[name=sentiment][value=positive]`)),
				chromedp.WaitVisible(chromedp.CSS("#verdict .notice")),
				into(&noted, chromedp.Text(chromedp.CSS("#verdict .notice"))))
			if !strings.Contains(noted, words[1]) {
				t.Fatalf("%s: after the reaction: %q", lang, noted)
			}

			// Above latitude: waiting, then the answer arrives live.
			ask(t, ctx, s, "cortesia", map[string]string{"es": "40.000", "en": "40,000"}[lang], "Cumpleaños, plato tarde")
			var connect chromedp.AttributeResult
			var marked bool
			run(t, ctx, "waiting",
				chromedp.WaitVisible(chromedp.CSS("#verdict-wait")),
				into(&connect, chromedp.AttributeValue(chromedp.CSS("[sse-connect]"), "sse-connect")),
				into(&marked, chromedp.Evaluate[bool](`window.stillTheSamePage = true`)))
			axe(t, ctx, "counter (waiting)")
			screenshot(t, ctx, "counter-wait-"+lang)
			id := strings.TrimSuffix(strings.TrimPrefix(connect.Value, "/counter/approvals/"), "/events")
			time.Sleep(300 * time.Millisecond) // let the stream connect; a late one replays the answer anyway
			approve(t, s, id)
			var same bool
			var approved string
			run(t, ctx, "the live answer",
				chromedp.WaitVisible(chromedp.CSS("#verdict-approved")),
				into(&approved, chromedp.Text(chromedp.CSS("#verdict-approved"))),
				into(&same, chromedp.Evaluate[bool](`window.stillTheSamePage === true`)))
			if !same {
				t.Fatalf("%s: the page reloaded to show the answer", lang)
			}
			if !strings.Contains(approved, map[string]string{"es": "Supervisora de turno lo aprobó", "en": "Shift supervisor approved it"}[lang]) {
				t.Fatalf("%s: the answer says %q", lang, approved)
			}

			// A no, then an exception request.
			ask(t, ctx, s, "reembolso", "100", "Cobro doble")
			var no string
			run(t, ctx, "the no", chromedp.WaitVisible(chromedp.CSS("#verdict-no")), into(&no, chromedp.Text(chromedp.CSS("#verdict-no"))))
			axe(t, ctx, "counter (no)")
			screenshot(t, ctx, "counter-no-"+lang)
			run(t, ctx, "ask for an exception",
				chromedp.Click(chromedp.CSS("#verdict-no button")),
				chromedp.WaitVisible(chromedp.CSS("#verdict-wait")))

			// "Tuve que decir que no" in two taps.
			run(t, ctx, "a refusal",
				chromedp.Navigate(s.URL+"/counter"),
				chromedp.Click(chromedp.CSS("details.refusal summary")),
				chromedp.Click(chromedp.CSS(`button[name=left][value=unhappy]`)),
				chromedp.WaitVisible(chromedp.CSS("#verdict .notice")))

			if lang == "es" {
				// Switch the language with the control in the header.
				var h1 string
				run(t, ctx, "switch to English",
					chromedp.Click(chromedp.CSS(`nav button[lang=en]`)),
					chromedp.WaitVisible(chromedp.CSS(`nav button[lang=es]`)),
					into(&h1, chromedp.Text(chromedp.CSS("#latitude-heading"))))
				if h1 != "Your latitude" {
					t.Fatalf("after the switch the heading is %q", h1)
				}
			}
		}
		refusals, err := db.ListRefusals(context.Background(), s.Org.ID, margen.RefusalFilter{Page: margen.Page{Limit: 10},
			MemberID: s.Org.Members["camila"].ID, ReasonKind: margen.RefusalOther})
		if err != nil || len(refusals) != 2 {
			t.Fatalf("refusals recorded: %d, %v; want 2", len(refusals), err)
		}

		run(t, ctx, "the account page", chromedp.Navigate(s.URL+"/account"), chromedp.WaitVisible(chromedp.CSS("#current")))
		axe(t, ctx, "account")
		run(t, ctx, "a missing page", chromedp.Navigate(s.URL+"/nope"), chromedp.WaitVisible(chromedp.CSS(".error")))
		axe(t, ctx, "404")
		run(t, ctx, "sign out",
			chromedp.Navigate(s.URL+"/counter"),
			chromedp.Click(chromedp.CSS(`nav form[action="/signout"] button`)),
			chromedp.WaitVisible(chromedp.CSS("#org")))

		// Deactivated while the page is open: the next request is refused.
		signinIn(t, ctx, s, "camila")
		if err := db.SetMemberActive(context.Background(), s.Org.ID, s.Org.Members["camila"].ID, false, "test"); err != nil {
			t.Fatal(err)
		}
		var notice string
		run(t, ctx, "the next request of a deactivated member",
			chromedp.SendKeys(chromedp.CSS("#amount"), "1000"),
			chromedp.Click(chromedp.CSS("button.ask")),
			chromedp.WaitVisible(chromedp.CSS("#org")),
			into(&notice, chromedp.Text(chromedp.CSS("main .notice"))))
		if !strings.Contains(notice, "Your session ended") {
			t.Fatalf("after deactivation the sign-in page says %q", notice)
		}
	})
}

// TestBrowserFirstRun: on an empty database the first page is the setup,
// which signs the new owner in.
func TestBrowserFirstRun(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, true)
		ctx := newBrowser(t, phoneW, phoneH)
		run(t, ctx, "open margen", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#slug")))
		axe(t, ctx, "setup")
		var heading string
		run(t, ctx, "set up",
			chromedp.SendKeys(chromedp.CSS("#name"), "Café Luna"),
			chromedp.SendKeys(chromedp.CSS("#slug"), "luna"),
			chromedp.SendKeys(chromedp.CSS("#login"), "lucia"),
			chromedp.SendKeys(chromedp.CSS("#password"), "una contraseña larga"),
			chromedp.SendKeys(chromedp.CSS("#password2"), "una contraseña larga"),
			chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS("#latitude-heading")),
			into(&heading, chromedp.Text(chromedp.CSS("#latitude-heading"))))
		if heading == "" {
			t.Fatal("no counter after setup")
		}
		axe(t, ctx, "counter without a policy")
	})
}
