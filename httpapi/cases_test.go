package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// TestCasesHTTP: a low answer about ana opens one case; who may see it and
// who may close it over the API is the approval rule (fede, a frontline
// member holding the supervisor role the default route names, may close
// it; ana sees her own case but may not close it; bob and another
// organisation get 404); the close flow validates its input and closes once.
func TestCasesHTTP(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		ctx := context.Background()
		ana := e.member["ana"]
		tokens := margen.NewSurveyTokens([]byte("k"))
		for _, score := range []int{5, 1} {
			_, h := tokens.New()
			l := &margen.SurveyLink{OrgID: ana.OrgID, TokenHash: h, MemberID: ana.ID, CreatedBy: ana.ID}
			if err := e.db.CreateSurveyLink(ctx, l, ana.ID, nil); err != nil {
				t.Fatal(err)
			}
			a, _ := margen.NewSurveyAnswer(margen.ScaleCSAT, score, "", "es")
			a.OrgID, a.LinkID, a.MemberID, a.CreatedAt = ana.OrgID, l.ID, ana.ID, time.Now()
			if _, err := e.db.AnswerSurvey(ctx, &a, margen.SurveyLimits{}); err != nil {
				t.Fatal(err)
			}
		}
		type page struct {
			Items []margen.FollowUpCase `json:"items"`
			Next  string                `json:"next"`
		}
		var p page
		e.do("GET", "/api/v1/cases?inbox=true", "fede", "").want(200).decode(&p)
		if len(p.Items) != 1 || p.Items[0].MemberID != ana.ID || p.Items[0].Status != margen.CaseOpen {
			t.Fatalf("fede's inbox: %+v", p.Items)
		}
		id := p.Items[0].ID
		e.do("GET", "/api/v1/cases?inbox=true", "ana", "").want(200).decode(&p)
		if len(p.Items) != 0 {
			t.Fatalf("ana may close her own case: %+v", p.Items)
		}
		e.do("GET", "/api/v1/cases", "ana", "").want(200).decode(&p)
		if len(p.Items) != 1 {
			t.Fatalf("ana sees %d cases", len(p.Items))
		}
		e.do("GET", "/api/v1/cases", "bob", "").want(200).decode(&p)
		if len(p.Items) != 0 {
			t.Fatalf("bob sees %+v", p.Items)
		}
		e.do("GET", "/api/v1/cases?status=maybe", "sara", "").want(400)
		var c margen.FollowUpCase
		e.do("GET", "/api/v1/cases/"+id, "sara", "").want(200).decode(&c)
		if c.ID != id || c.Score != 1 {
			t.Fatalf("case = %+v", c)
		}
		e.do("GET", "/api/v1/cases/"+id, "bob", "").want(404)
		e.do("GET", "/api/v1/cases/"+id, "omar", "").want(404)

		body := `{"action":"Llamé al cliente y le devolvimos el postre","outcome":"resolved","reaction":"positive"}`
		e.do("POST", "/api/v1/cases/"+id+"/close", "ana", body).want(403)
		e.do("POST", "/api/v1/cases/"+id+"/close", "bob", body).want(404)
		e.do("POST", "/api/v1/cases/"+id+"/close", "fede", `{"action":"x","outcome":"great","reaction":"positive"}`).want(400)
		e.do("POST", "/api/v1/cases/"+id+"/close", "fede", `{"action":"","outcome":"resolved","reaction":"positive"}`).want(400)
		e.do("POST", "/api/v1/cases/"+id+"/close", "fede", `{"action":"x","outcome":"resolved","reaction":"positive","extra":1}`).want(400)
		e.do("POST", "/api/v1/cases/"+id+"/close", "fede", body).want(200).decode(&c)
		if c.Status != margen.CaseClosed || c.ClosedBy != e.member["fede"].ID || c.Outcome != margen.CaseResolved {
			t.Fatalf("closed = %+v", c)
		}
		e.do("POST", "/api/v1/cases/"+id+"/close", "sara", body).want(409)
		e.do("GET", "/api/v1/cases?status=open", "olga", "").want(200).decode(&p)
		if len(p.Items) != 0 {
			t.Fatalf("open cases after closing: %+v", p.Items)
		}
	})
}
