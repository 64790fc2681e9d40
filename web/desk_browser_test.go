package web_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen/store"
)

// setSource replaces the policy editor's text and fires the input event
// htmx listens to, as typing does.
func setSource(src string) chromedp.Action[chromedp.Void] {
	lit, _ := json.Marshal(src)
	var ok bool
	return into(&ok, chromedp.Evaluate[bool](`(() => { const e = document.querySelector("#source"); e.value = `+string(lit)+
		`; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`))
}

// TestBrowserDesk: on a desktop-sized window, the owner's policy editor
// shows a broken policy's error at its line as it is typed (htmx), then
// publishes a good one with a note, which the history shows with its
// diff; an invitation link created on the people page is accepted in a
// second browser, which lands signed in on the counter. axe-core checks
// every desk page; screenshots in Spanish and English.
func TestBrowserDesk(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		ctx := newBrowser(t, desktopW, desktopH)
		signinIn(t, ctx, s, "admin")
		admin := s.Org.Members["admin"]

		broken := strings.Replace(testPolicy, "max_amount: 2500000", "max_amount: lots", 1)
		line := 0
		for i, l := range strings.Split(broken, "\n") {
			if strings.Contains(l, "max_amount: lots") {
				line = i + 1
			}
		}
		for _, lang := range []string{"es", "en"} {
			if err := db.SetMemberLanguage(context.Background(), s.Org.ID, admin.ID, lang, "test"); err != nil {
				t.Fatal(err)
			}
			run(t, ctx, "open the people page", chromedp.Navigate(s.URL+"/desk/people"), chromedp.WaitVisible(chromedp.CSS("#invite-h")))
			axe(t, ctx, "people")
			screenshot(t, ctx, "desk-people-"+lang)
			run(t, ctx, "open the policy editor", chromedp.Navigate(s.URL+"/desk/policy"), chromedp.WaitVisible(chromedp.CSS("#summary-h")))
			axe(t, ctx, "policy editor")
			screenshot(t, ctx, "desk-policy-"+lang)
		}

		// English from here on. A broken policy: its line, as it is typed.
		var problem string
		run(t, ctx, "type a broken policy",
			setSource(broken),
			chromedp.WaitVisible(chromedp.CSS("#results .problem-error")),
			into(&problem, chromedp.Text(chromedp.CSS("#results .problem-error"))))
		if want := "Line " + strconv.Itoa(line) + ", column"; !strings.Contains(problem, want) || !strings.Contains(problem, "max_amount") {
			t.Fatalf("the broken policy's problem = %q, want %q", problem, want)
		}
		axe(t, ctx, "policy editor with an error")
		// Publishing it is refused, at the same line.
		run(t, ctx, "publish the broken policy",
			chromedp.Click(chromedp.CSS(`main form[action="/desk/policy"] button[type=submit]:not([formaction])`)),
			chromedp.WaitVisible(chromedp.CSS("main p.error[role=alert]")),
			into(&problem, chromedp.Text(chromedp.CSS("#results .problem-error"))))
		if !strings.Contains(problem, "Line "+strconv.Itoa(line)) {
			t.Fatalf("publishing the broken policy: %q", problem)
		}
		// A good one publishes and shows in the history with its diff.
		good := strings.Replace(testPolicy, "max_amount: 2500000", "max_amount: 3000000", 1)
		var ok, history string
		run(t, ctx, "type a good policy",
			setSource(good),
			chromedp.WaitVisible(chromedp.CSS("#results p.notice")),
			into(&ok, chromedp.Text(chromedp.CSS("#results p.notice"))))
		if !strings.Contains(ok, "can be published") {
			t.Fatalf("the good policy's check = %q", ok)
		}
		run(t, ctx, "publish the good policy",
			chromedp.SendKeys(chromedp.CSS("#note"), "Courtesies up to 30,000"),
			chromedp.Click(chromedp.CSS(`main form[action="/desk/policy"] button[type=submit]:not([formaction])`)),
			chromedp.WaitVisible(chromedp.CSS("pre.diff")),
			into(&history, chromedp.Text(chromedp.CSS("main"))))
		if !strings.Contains(history, "Version 2 is published") || !strings.Contains(history, "Courtesies up to 30,000") ||
			!strings.Contains(history, "+     max_amount: 3000000") {
			t.Fatalf("history after publishing: %s", history)
		}
		axe(t, ctx, "policy history")
		screenshot(t, ctx, "desk-history-en")

		// An invitation, accepted in another browser.
		var link string
		run(t, ctx, "invite",
			chromedp.Navigate(s.URL+"/desk/people"),
			chromedp.WaitVisible(chromedp.CSS("#inv-name")),
			chromedp.SendKeys(chromedp.CSS("#inv-name"), "Lucía"),
			chromedp.Click(chromedp.CSS(`form[action="/desk/invitations"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS("#invite-link")),
			into(&link, chromedp.Value(chromedp.CSS("#invite-link"))))
		if !strings.Contains(link, "/invite/") {
			t.Fatalf("invitation link %q", link)
		}
		guest := newBrowser(t, phoneW, phoneH)
		run(t, guest, "open the invitation", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#login")))
		axe(t, guest, "invitation")
		var heading string
		run(t, guest, "accept the invitation",
			chromedp.SendKeys(chromedp.CSS("#login"), "lucia"),
			chromedp.SendKeys(chromedp.CSS("#password"), "una contraseña larga"),
			chromedp.SendKeys(chromedp.CSS("#password2"), "una contraseña larga"),
			chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS("#latitude-heading")),
			into(&heading, chromedp.Text(chromedp.CSS("#latitude-heading"))))
		if heading == "" {
			t.Fatal("the invitee is not on the counter")
		}
		run(t, guest, "open the used invitation again", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("main p.error")))
	})
}
