package web_test

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen/store/storetest"
)

// TestInboxPagerInBrowser: with more of the team's activity than one
// screen holds, the supervisor pages to the older rows and back, on a
// phone and on a desktop, in Spanish and in English, and axe-core finds
// nothing serious on either screen.
func TestInboxPagerInBrowser(t *testing.T) {
	db := storetest.Engines(t)[0].Open(t)
	s := newSite(t, db, false)
	const acts = 23 // a screen of 20, then 3
	for i := range acts {
		s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 100000, "reason": fmt.Sprintf("pan %d", i),
			"customer": map[string]any{"ref": fmt.Sprintf("mesa-%d", i%5), "name": fmt.Sprintf("Mesa %d", i%5)}})
	}
	rows := `document.querySelectorAll("table.activity tbody tr").length`
	for _, size := range []struct {
		name string
		w, h int64
	}{{"", desktopW, desktopH}, {"-phone", phoneW, phoneH}} {
		browser := newBrowser(t, size.w, size.h)
		sup := s.person(t, browser, "marta")
		for _, lang := range []string{"es", "en"} {
			older := map[string]string{"es": "Ver anteriores", "en": "Older"}[lang]
			newest := map[string]string{"es": "Ver las más recientes", "en": "Newest"}[lang]
			var n int
			var link string
			run(t, sup, "open the inbox", chromedp.Navigate(s.URL+"/inbox"), chromedp.WaitVisible(chromedp.CSS("nav.pager")),
				into(&n, chromedp.Evaluate[int](rows)), into(&link, chromedp.Text(chromedp.CSS(`nav.pager a[rel=next]`))))
			if n != 20 || link != older {
				t.Fatalf("%s%s: the first screen shows %d rows and the link %q", lang, size.name, n, link)
			}
			axe(t, sup, "the inbox's first screen "+lang+size.name)
			run(t, sup, "page to the older rows", chromedp.Click(chromedp.CSS(`nav.pager a[rel=next]`)),
				chromedp.WaitNotPresent(chromedp.CSS(`nav.pager a[rel=next]`)),
				into(&n, chromedp.Evaluate[int](rows)), into(&link, chromedp.Text(chromedp.CSS(`nav.pager a`))))
			if n != acts-20 || link != newest {
				t.Fatalf("%s%s: the older screen shows %d rows and the link %q", lang, size.name, n, link)
			}
			axe(t, sup, "the inbox's older screen "+lang+size.name)
			screenshot(t, sup, "inbox-older-"+lang+size.name)
			run(t, sup, "back to the newest", chromedp.Click(chromedp.CSS(`nav.pager a`)),
				chromedp.WaitVisible(chromedp.CSS(`nav.pager a[rel=next]`)), into(&n, chromedp.Evaluate[int](rows)))
			if n != 20 {
				t.Fatalf("%s%s: back at the newest, %d rows", lang, size.name, n)
			}
			// The language is the member's: switch it, and back at the end
			// for the next window size.
			other := map[string]string{"es": "en", "en": "es"}[lang]
			run(t, sup, "switch the language", chromedp.Click(chromedp.CSS(`nav button[lang=`+other+`]`)),
				chromedp.WaitVisible(chromedp.CSS(`nav button[lang=`+lang+`]`)))
		}
	}
}
