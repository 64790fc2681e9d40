package httpapi_test

import (
	"context"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/internal/testsupport"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// TestSurveyAnswers: the customers' answers are listed with filters and
// on their act; frontline members see only the answers about them, and
// another organisation's act answers 404.
func TestSurveyAnswers(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		d, _ := e.decide("ana", gift(100000, "r1"))
		tokens := margen.NewSurveyTokens([]byte("k"))
		answer := func(login, actID string, score int) {
			t.Helper()
			m := e.member[login]
			_, h := tokens.New()
			l := &margen.SurveyLink{OrgID: m.OrgID, TokenHash: h, ActID: actID, MemberID: m.ID, CreatedBy: m.ID}
			if err := e.db.CreateSurveyLink(ctx, l, m.ID, nil); err != nil {
				t.Fatal(err)
			}
			a, err := margen.NewSurveyAnswer(margen.ScaleCSAT, score, "bien", "es")
			if err != nil {
				t.Fatal(err)
			}
			a.OrgID, a.LinkID, a.ActID, a.MemberID, a.CreatedAt = m.OrgID, l.ID, actID, m.ID, time.Now()
			if _, err := e.db.AnswerSurvey(ctx, &a, margen.SurveyLimits{}); err != nil {
				t.Fatal(err)
			}
		}
		answer("ana", d.ActID, 5)
		answer("bob", "", 1)

		type page struct {
			Items []margen.SurveyAnswer `json:"items"`
			Next  string                `json:"next"`
		}
		var p page
		e.do("GET", "/api/v1/survey-answers", "sara", "").want(200).decode(&p)
		if len(p.Items) != 2 {
			t.Fatalf("supervisor sees %d answers", len(p.Items))
		}
		e.do("GET", "/api/v1/survey-answers?low=true", "sara", "").want(200).decode(&p)
		if len(p.Items) != 1 || p.Items[0].Score != 1 || !p.Items[0].Low {
			t.Fatalf("low answers: %+v", p.Items)
		}
		e.do("GET", "/api/v1/survey-answers?low=maybe", "sara", "").want(400)
		e.do("GET", "/api/v1/survey-answers", "ana", "").want(200).decode(&p)
		if len(p.Items) != 1 || p.Items[0].MemberID != e.member["ana"].ID {
			t.Fatalf("frontline sees %+v", p.Items)
		}
		e.do("GET", "/api/v1/survey-answers?member="+e.member["bob"].ID, "ana", "").want(403)
		e.do("GET", "/api/v1/survey-answers?limit=1", "sara", "").want(200).decode(&p)
		if len(p.Items) != 1 || p.Next == "" {
			t.Fatalf("first page: %+v", p)
		}

		e.do("GET", "/api/v1/acts/"+d.ActID+"/survey-answers", "ana", "").want(200).decode(&p)
		if len(p.Items) != 1 || p.Items[0].ActID != d.ActID || p.Items[0].Comment != "bien" {
			t.Fatalf("answers on the act: %+v", p.Items)
		}
		e.do("GET", "/api/v1/acts/"+d.ActID+"/survey-answers", "bob", "").want(404)
		e.do("GET", "/api/v1/acts/"+d.ActID+"/survey-answers", "omar", "").want(404)
		e.do("GET", "/api/v1/survey-answers", "omar", "").want(200).decode(&p)
		if len(p.Items) != 0 {
			t.Fatalf("another organisation sees %d answers", len(p.Items))
		}
	})
}

// TestCreateSurveyLink: a member makes a survey link for an act they may
// see; the token and URL come once (and again only as the replay of the
// same Idempotency-Key); the link is the act's member's; others' acts and
// another organisation's answer 404, a body with fields 400, and a server
// without a survey key 503.
func TestCreateSurveyLink(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		d, _ := e.decide("ana", gift(100000, "r1"))
		path := "/api/v1/acts/" + d.ActID + "/survey-link"
		type created struct {
			Link  margen.SurveyLink `json:"link"`
			Token string            `json:"token"`
			URL   string            `json:"url"`
		}
		tokens := margen.NewSurveyTokens(testSurveyKey)
		check := func(c created, by string) {
			t.Helper()
			if !tokens.Valid(c.Token) || c.URL != e.srv.URL+"/s/"+c.Token {
				t.Fatalf("token %q, url %q", c.Token, c.URL)
			}
			l, err := e.db.SurveyLinkByHash(ctx, margen.SurveyTokenHash(c.Token))
			if err != nil {
				t.Fatal(err)
			}
			ana := e.member["ana"]
			if l.ID != c.Link.ID || l.ActID != d.ActID || l.MemberID != ana.ID || l.Team != ana.Team ||
				l.CreatedBy != e.member[by].ID || l.OrgID != ana.OrgID || l.CreatedBy != c.Link.CreatedBy || l.AnsweredAt != nil ||
				!l.ExpiresAt.After(l.CreatedAt.Add(13*24*time.Hour)) {
				t.Fatalf("stored link %+v, answer %+v", l, c.Link)
			}
		}

		var c1, c2, c3 created
		res := e.do("POST", path, "ana", "", "Idempotency-Key", "link-1").want(201)
		res.decode(&c1)
		check(c1, "ana")
		replay := e.do("POST", path, "ana", "", "Idempotency-Key", "link-1").want(201)
		if replay.header.Get("Idempotent-Replayed") != "true" || string(replay.body) != string(res.body) {
			t.Fatalf("replay: %s %s", replay.header, replay.body)
		}
		e.do("POST", path, "ana", "{}", "Idempotency-Key", "link-1").want(422) // same key, another body
		e.do("POST", path, "ana", "{}").want(201).decode(&c2)
		check(c2, "ana")
		if c2.Token == c1.Token || c2.Link.ID == c1.Link.ID {
			t.Fatal("a new call made the same link")
		}
		e.do("POST", path, "sara", "").want(201).decode(&c3) // a supervisor, for ana's act
		check(c3, "sara")

		e.do("POST", path, "bob", "").want(404)
		e.do("POST", path, "omar", "").want(404)
		e.do("POST", "/api/v1/acts/act_missing/survey-link", "ana", "").want(404)
		e.do("POST", path, "ana", `{"expires":"never"}`).want(400)
		e.do("POST", path, "", "").want(401)

		// The link is answered on the web's survey page; here, through the
		// store: one answer, tied to the act.
		a, err := margen.NewSurveyAnswer(margen.ScaleCSAT, 5, "", "es")
		if err != nil {
			t.Fatal(err)
		}
		a.OrgID, a.LinkID, a.ActID, a.MemberID = e.member["ana"].OrgID, c1.Link.ID, d.ActID, c1.Link.MemberID
		if _, err := e.db.AnswerSurvey(ctx, &a, margen.SurveyLimits{}); err != nil {
			t.Fatal(err)
		}
		var p struct {
			Items []margen.SurveyAnswer `json:"items"`
		}
		e.do("GET", "/api/v1/acts/"+d.ActID+"/survey-answers", "ana", "").want(200).decode(&p)
		if len(p.Items) != 1 || p.Items[0].LinkID != c1.Link.ID {
			t.Fatalf("answers on the act: %+v", p.Items)
		}

		noKey := testsupport.Server(t, httpapi.Config{Store: e.db, Engine: testsupport.Engine(t, e.db, decision.Options{})})
		e.srv = noKey
		e.do("POST", path, "ana", "").want(503)
	})
}
