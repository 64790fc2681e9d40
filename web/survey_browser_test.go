package web_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen/store"
)

// pdfPages counts the pages of a PDF written by Chromium (its page
// objects: "/Type /Page", not "/Type /Pages").
var pdfPage = regexp.MustCompile(`/Type\s*/Page[^s]`)

// printPDF prints the page as Chromium would, with the page size the
// print CSS asks for.
func printPDF(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	var pdf []byte
	yes := true
	run(t, ctx, "print to PDF", into(&pdf, chromedp.Action[[]byte](func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, tg, page.PrintToPDF, page.PrintToPDFParams{PreferCSSPageSize: &yes})
		return r.Data, err
	})))
	return pdf
}

// tab opens a tab of its own (its own cookies) in the browser. Its first
// run has no deadline: a deadline on it would close the tab when it ends.
func tab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// TestBrowserSurvey: after a yes at the counter the waiter shows the
// survey's QR code; the customer opens the link on a phone (a browser of
// their own, no account), answers with one tap and is thanked; the
// supervisor sees the customer's answer beside the employee's reaction on
// the act; the manager's sheet of standing QR codes prints on one A4 page.
// axe-core checks every page (English and Spanish on the survey).
func TestBrowserSurvey(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false, noSurveyLimits)
		browser := newBrowser(t, phoneW, phoneH)
		ctx := browser

		signinIn(t, ctx, s, "camila")
		ask(t, ctx, s, "cortesia", "8.000", "Sopa fría")
		var link string
		run(t, ctx, "the yes, the reaction, then the survey's QR code",
			chromedp.WaitVisible(chromedp.CSS("#verdict-yes")),
			chromedp.Click(chromedp.CSS(`#verdict-yes form.reaction button[value=positive]`)),
			chromedp.WaitVisible(chromedp.CSS("#verdict-yes p.notice")),
			chromedp.Click(chromedp.CSS(`#verdict-yes form.survey-offer button`)),
			chromedp.WaitVisible(chromedp.CSS("#survey-qr")),
			into(&link, chromedp.Text(chromedp.CSS("#survey-url"))))
		axe(t, ctx, "survey link")
		screenshot(t, ctx, "survey-link-es")
		u, err := url.Parse(link)
		if err != nil || !strings.HasPrefix(u.Path, "/s/") {
			t.Fatalf("survey link %q", link)
		}
		var attr chromedp.AttributeResult
		run(t, ctx, "the act's page link", into(&attr, chromedp.AttributeValue(chromedp.CSS(`a[href^="/acts/"]`), "href")))
		actHref := attr.Value

		// The customer's phone: no account, English from the browser
		// (Accept-Language), switched to Spanish.
		cus := tab(t, browser)
		run(t, cus, "open the survey", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] .scores button`)))
		axe(t, cus, "survey (en)")
		screenshot(t, cus, "survey-page-en")
		var heading string
		run(t, cus, "switch to Spanish",
			chromedp.Click(chromedp.CSS(`form[action="/language"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`html[lang="es"] .scores button`)),
			into(&heading, chromedp.Text(chromedp.CSS("main h1"))))
		if heading != "¿Cómo te atendimos hoy?" {
			t.Fatalf("Spanish heading %q", heading)
		}
		axe(t, cus, "survey (es)")
		screenshot(t, cus, "survey-page-es")
		var thanks string
		run(t, cus, "answer with one tap",
			chromedp.SendKeys(chromedp.CSS("#comment"), "La sopa llegó fría"),
			chromedp.Click(chromedp.CSS(`.scores button[value="2"]`)),
			chromedp.WaitVisible(chromedp.CSS("#survey-thanks")),
			into(&thanks, chromedp.Text(chromedp.CSS("main"))))
		if !strings.Contains(thanks, "¡Gracias!") || !strings.Contains(thanks, "Grupo La Brasa") {
			t.Fatalf("thank-you page: %q", thanks)
		}
		axe(t, cus, "survey thanks")

		// The supervisor's view of the act.
		sup := tab(t, browser)
		signinIn(t, sup, s, "marta")
		var employee, customer string
		run(t, sup, "the act with both reactions",
			chromedp.Navigate(s.URL+actHref),
			chromedp.WaitVisible(chromedp.CSS("#customer-answer")),
			into(&employee, chromedp.Text(chromedp.CSS("#employee-reaction"))),
			into(&customer, chromedp.Text(chromedp.CSS("#customer-answer"))))
		if !strings.Contains(customer, "Satisfacción 2 de 5") || !strings.Contains(customer, "La sopa llegó fría") ||
			!strings.Contains(customer, "respuesta baja") || employee == "" || strings.Contains(employee, "no registró") {
			t.Fatalf("act: employee %q, customer %q", employee, customer)
		}
		axe(t, sup, "act")

		// The low answer's follow-up case in the inbox of whoever may close
		// it (the owner, under this policy), with its closing form.
		own := tab(t, browser)
		signinIn(t, own, s, "admin")
		var cases string
		run(t, own, "the case in the inbox",
			chromedp.Navigate(s.URL+"/inbox"),
			chromedp.WaitVisible(chromedp.CSS(`#cases form textarea[name="action"]`)),
			into(&cases, chromedp.Text(chromedp.CSS("#cases"))))
		if !strings.Contains(cases, "Satisfacción 2 de 5") {
			t.Fatalf("inbox cases: %q", cases)
		}
		axe(t, own, "inbox with a case")
		screenshot(t, own, "inbox-case-es")

		// The manager's desk and the sheet of standing codes.
		w := s.client(t)
		w.signin("admin", s.Pass["admin"])
		for _, name := range []string{"Mesa 1", "Mesa 2", "Mesa 3", "Mesa 4", "Barra", "Terraza"} {
			if res, _ := w.do("POST", "/desk/survey/points", url.Values{"name": {name}, "kind": {"table"}, "ask_server": {"on"}}); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("new point %s: %d", name, res.StatusCode)
			}
		}
		man := tab(t, browser)
		signinIn(t, man, s, "admin")
		run(t, man, "desk", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.URL+"/desk/survey"), chromedp.WaitVisible(chromedp.CSS("#sheet-a4")))
		axe(t, man, "survey desk")
		screenshot(t, man, "survey-desk-es")
		run(t, man, "sheet", chromedp.Click(chromedp.CSS("#sheet-a4")), chromedp.WaitVisible(chromedp.CSS(".sheet.a4 img")))
		axe(t, man, "survey sheet")
		screenshot(t, man, "survey-sheet-es")
		pdf := printPDF(t, man)
		if !bytes.HasPrefix(pdf, []byte("%PDF")) {
			t.Fatal("not a PDF")
		}
		if n := len(pdfPage.FindAll(pdf, -1)); n != 1 {
			t.Fatalf("the A4 sheet of 6 codes prints on %d pages, want 1", n)
		}
		// The receipt sheet: one code after another at 80 mm, so more
		// than one page (the count above can tell pages apart).
		run(t, man, "receipt sheet", chromedp.Navigate(s.URL+"/desk/survey/sheet?size=receipt"), chromedp.WaitVisible(chromedp.CSS(".sheet.receipt img")))
		if n := len(pdfPage.FindAll(printPDF(t, man), -1)); n < 2 {
			t.Fatalf("the receipt sheet of 6 codes prints on %d pages", n)
		}
	})
}
