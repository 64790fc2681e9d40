package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store/storetest"
)

// TestBrowserInboxCasesLive: with the supervisor's inbox open in Chromium,
// a customer answers low on the public survey page in another browser
// context; the follow-up case appears in the inbox's section of open cases
// without a reload (SSE), and leaves it, still without a reload, when the
// owner closes it through the API. The inbox with a case has no serious
// or critical axe-core finding. (SQLite: the HTTP tests cover both
// engines.)
func TestBrowserInboxCasesLive(t *testing.T) {
	browser := newBrowser(t, desktopW, desktopH)
	db := storetest.Engines(t)[0].Open(t)
	s := newSite(t, db, false, noSurveyLimits)
	ctx := context.Background()
	// Cases go to the default approval route's approver: the supervisor.
	pol := testPolicy + "approval: {approver: supervisor, sla: 10m, on_timeout: deny}\n"
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: s.Org.ID, Source: pol, CreatedBy: "test",
		CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	w := s.client(t)
	w.signin("camila", s.Pass["camila"])
	act := actOf(t, s, w)
	path, _ := newLink(t, w, act.ID)

	sup := s.person(t, browser, "marta")
	var marked bool
	var before string
	run(t, sup, "open the inbox",
		chromedp.Navigate(s.URL+"/inbox"),
		chromedp.WaitVisible(chromedp.ID("case-list")),
		into(&marked, chromedp.Evaluate[bool](`window.notReloaded = true`)),
		into(&before, chromedp.Text(chromedp.ID("case-list"))))
	if !strings.Contains(before, "No hay casos de seguimiento") {
		t.Fatalf("a case before the answer: %q", before)
	}

	cus := tab(t, browser)
	run(t, cus, "the customer answers low",
		chromedp.Navigate(s.URL+path),
		chromedp.WaitVisible(chromedp.CSS(`.scores button[value="1"]`)),
		chromedp.Click(chromedp.CSS(`.scores button[value="1"]`)),
		chromedp.WaitVisible(chromedp.CSS("#survey-thanks")))
	cs, err := db.ListCases(ctx, s.Org.ID, margen.CaseFilter{ActID: act.ID})
	if err != nil || len(cs) != 1 {
		t.Fatalf("cases = %+v, %v", cs, err)
	}
	id := cs[0].ID

	var text string
	var same bool
	run(t, sup, "the case arrives without a reload",
		chromedp.WaitVisible(chromedp.ID("case-"+id)),
		into(&text, chromedp.Text(chromedp.ID("case-"+id))),
		into(&same, chromedp.Evaluate[bool](`window.notReloaded === true`)))
	if !same || !strings.Contains(text, "Satisfacción 1 de 5") || !strings.Contains(strings.ToLower(text), "camila") {
		t.Fatalf("live case: reloaded %v, %q", !same, text)
	}
	axe(t, sup, "the inbox with a live case")
	screenshot(t, sup, "inbox-case-live-es")

	// The owner closes it through the API: it leaves the open inbox.
	b, _ := json.Marshal(map[string]string{"action": "Llamé y le invitamos a otra cena", "outcome": "resolved", "reaction": "positive"})
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/cases/"+url.PathEscape(id)+"/close", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.Token["admin"])
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("close: %d", res.StatusCode)
	}
	run(t, sup, "the closed case leaves without a reload",
		chromedp.WaitNotPresent(chromedp.ID("case-"+id)),
		into(&same, chromedp.Evaluate[bool](`window.notReloaded === true`)))
	if !same {
		t.Fatal("the inbox reloaded")
	}
}
