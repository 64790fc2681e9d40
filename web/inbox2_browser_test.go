package web_test

import (
	"net/url"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen/store"
)

// TestBrowserDeskOnAPhone: at phone size no page of the desk (nor the
// inbox) is wider than the viewport: wide tables scroll inside their box
// (.scroll), the page itself does not. axe-core checks the people and
// history pages at that size (a scrolling box must be reachable).
func TestBrowserDeskOnAPhone(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		// Two versions, so the history has rows and a diff link, and an
		// invitation, so the people page has both tables.
		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		_, body := m.do("GET", "/desk/policy", nil)
		key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(body)
		if key == nil {
			t.Fatalf("editor: %s", body)
		}
		if res, body := m.do("POST", "/desk/policy", url.Values{"source": {testPolicy + "\n"}, "note": {"Una nota de versión bastante larga para una pantalla de teléfono"},
			"key": {key[1]}}); res.StatusCode != 303 {
			t.Fatalf("publish: %d %s", res.StatusCode, body)
		}
		if res, body := m.do("POST", "/desk/invitations", url.Values{"name": {"Valentina Hernández de la Torre"}, "access": {"frontline"}, "role": {"mesero"}}); res.StatusCode >= 400 {
			t.Fatalf("invite: %d %s", res.StatusCode, body)
		}
		ctx := newBrowser(t, phoneW, phoneH)
		signinIn(t, ctx, s, "admin")
		for _, path := range []string{"/desk/people", "/desk/policy/history", "/desk/today", "/desk/audit", "/desk/webhooks", "/desk/imports", "/inbox"} {
			var widths []int
			run(t, ctx, "open "+path, chromedp.Navigate(s.URL+path), chromedp.WaitVisible(chromedp.CSS("main h1")),
				into(&widths, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`)))
			if len(widths) != 2 || widths[0] > widths[1] {
				var wide []string
				run(t, ctx, "find what is wide", into(&wide, chromedp.Evaluate[[]string](`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth && !e.closest(".scroll")).slice(0, 5).map(e => e.tagName + "#" + e.id + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`)))
				t.Errorf("%s at phone size: the page is %v px wide, the viewport %v: %v", path, widths[0], widths[1], wide)
			}
			switch path {
			case "/desk/people", "/desk/policy/history":
				var boxes int
				run(t, ctx, "count the scrolling boxes of "+path, into(&boxes, chromedp.Evaluate[int](`document.querySelectorAll("main .scroll table").length`)))
				if boxes == 0 {
					t.Errorf("%s: no table scrolls in its box", path)
				}
				axe(t, ctx, path+" on a phone")
			}
		}
	})
}
