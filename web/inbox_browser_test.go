package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store/storetest"
)

// TestInboxInBrowser: in Chromium, a waiter's request made at the counter
// appears in the supervisor's open inbox without a reload; the supervisor
// approves it with a comment and the waiter's counter turns into the
// answer without a reload. The inbox has no serious or critical axe-core
// finding, in Spanish and in English. (SQLite: the pages are the same on
// both engines, which the HTTP tests cover.)
func TestInboxInBrowser(t *testing.T) {
	browser := newBrowser(t, desktopW, desktopH)
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
	run(t, sup, "open the inbox", chromedp.Navigate(s.URL+"/inbox"), chromedp.WaitVisible(chromedp.ID("pending")))

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
		axe(t, sup, "the inbox ("+lang+")")
		screenshot(t, sup, "inbox-desktop-"+lang)
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
