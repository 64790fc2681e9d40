package httpapi_test

import (
	"context"
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
			if err := e.db.CreateSurveyLink(ctx, l, m.ID); err != nil {
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
